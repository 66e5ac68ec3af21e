"""Image health: an Incomplete inventory is never Healthy or NotApplicable, and its findings count."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from scanner.assess.assessment import assess
from scanner.assess.image_health import health_of
from scanner.model.types import Finding, ImageInfo, Inventory, Package
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

IMAGE = ImageInfo("oci:x", "sha256:1", "sha256:2", "linux/amd64", None)
PACKAGE = Package("musl", "1.1.22-r2", "Alpine:v3.10", "pkg:apk/alpine/musl@1.1.22-r2", "musl", "1.1.22-r2",
                  "x86_64", ("/lib/apk/db/installed",), "apk", "apk@1", None)  # fmt: skip
FINDING = Finding(
    "ALPINE-CVE-2019-14697", (), PACKAGE, "1.1.22-r2", "1.1.22-r3", "fixed", "Unknown", "none", None, "os"
)
REASON = "inventory incomplete: /lib/apk/db/installed: 114294784 bytes, over the limit of 67108864"


def incomplete(packages: tuple[Package, ...] = ()) -> Inventory:
    return Inventory(IMAGE, "Incomplete", REASON, packages)


@pytest.mark.parametrize(
    ("inventory", "findings", "expected"),
    [
        (incomplete(), [], ("Incomplete", REASON)),  # nothing found: not NotApplicable
        (incomplete((PACKAGE,)), [], ("Incomplete", REASON)),  # nothing vulnerable found: not Healthy
        (incomplete((PACKAGE,)), [FINDING], ("Incomplete", f"{REASON}; 1 active finding(s)")),
        (incomplete((PACKAGE,)), [replace(FINDING, disabled=True)], ("Incomplete", REASON)),
        (Inventory(IMAGE, "Scanned", "", ()), [], ("NotApplicable", "no package inventory: nothing to assess")),
        (Inventory(IMAGE, "Scanned", "", (PACKAGE,)), [], ("Healthy", "")),
    ],
)
def test_health(inventory: Inventory, findings: list[Finding], expected: tuple[str, str]) -> None:
    assert health_of(inventory, findings) == expected


def test_an_incomplete_inventory_is_matched(tmp_path: Path) -> None:
    """What an Incomplete inventory holds is real: it is matched like a whole one."""
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    path = tmp_path / "db.sqlite"
    import_sources(path, [str(fixtures / "osv/alpine-secdb/v3.10")])
    with SqliteVulnDatabase.open(path) as db:
        result = assess(incomplete((PACKAGE,)), db)
    assert result.health == "Incomplete"
    assert [f.id for f in result.findings] == ["ALPINE-CVE-2019-14697"]
