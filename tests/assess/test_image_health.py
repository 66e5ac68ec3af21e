"""Image health: an Incomplete inventory is never Healthy or NotApplicable, and its findings count; nothing found
is Healthy only where the database holds the advisories of the image's distribution and release."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from scanner.assess.assessment import assess
from scanner.assess.image_health import assessed, health_of, not_assessed
from scanner.model.types import Coverage, Finding, ImageInfo, Inventory, Package
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

IMAGE = ImageInfo("oci:x", "sha256:1", "sha256:2", "linux/amd64", None)
PACKAGE = Package("musl", "1.1.22-r2", "Alpine:v3.10", "pkg:apk/alpine/musl@1.1.22-r2", "musl", "1.1.22-r2",
                  "x86_64", ("/lib/apk/db/installed",), "apk", "apk@1", None)  # fmt: skip
FINDING = Finding(
    "ALPINE-CVE-2019-14697", (), PACKAGE, "1.1.22-r2", "1.1.22-r3", "fixed", "Unknown", "none", None, "os"
)
ALPINE = (Coverage("Alpine:v3.10", "os", 38, "2020-01-31T00:00:00Z"),)
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
    assert health_of(inventory, findings, ALPINE) == expected


def test_an_incomplete_inventory_is_matched(tmp_path: Path) -> None:
    """What an Incomplete inventory holds is real: it is matched like a whole one."""
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    path = tmp_path / "db.sqlite"
    import_sources(path, [str(fixtures / "osv/alpine-secdb/v3.10")])
    with SqliteVulnDatabase.open(path) as db:
        result = assess(incomplete((PACKAGE,)), db)
    assert result.health == "Incomplete"
    assert [f.id for f in result.findings] == ["ALPINE-CVE-2019-14697"]


SCANNED = Inventory(IMAGE, "Scanned", "", (PACKAGE,))
NONE_DEBIAN = Coverage("Debian:12", "os", 0)
SNAPSHOT_DEBIAN = Coverage("Debian:12", "os", 12, "2024-05-01T00:00:00Z", selection=True)
PYPI = Coverage("PyPI", "language", 5000, "2024-06-01T00:00:00Z")
NONE_PYPI = Coverage("PyPI", "language", 0)
NONE_NPM = Coverage("npm", "language", 0)
UPDATE = "run `acrguard db update`"


@pytest.mark.parametrize(
    ("coverage", "findings", "expected"),
    [
        # The distribution's release without advisories: nothing found proves nothing.
        ((NONE_DEBIAN, PYPI), [], ("NotAssessed", f"the database holds no Debian:12 advisories: {UPDATE}")),
        # Only a selection of them (the bundled snapshot): still nothing proved.
        (
            (SNAPSHOT_DEBIAN,),
            [],
            (
                "NotAssessed",
                f"the database holds only a selection of Debian:12 advisories (12, the bundled snapshot): {UPDATE}",
            ),
        ),
        # Findings are real whatever the coverage: Unhealthy, the reason naming what was not assessed.
        (
            (NONE_DEBIAN, NONE_PYPI),
            [FINDING],
            (
                "Unhealthy",
                f"1 active finding(s); the database holds no Debian:12 advisories: {UPDATE};"
                f" the database holds no PyPI advisories: {UPDATE}",
            ),
        ),
        (
            (NONE_DEBIAN,),
            [replace(FINDING, disabled=True)],
            ("NotAssessed", f"the database holds no Debian:12 advisories: {UPDATE}"),
        ),
        # A language ecosystem without advisories does not change the status (it is warned about).
        ((ALPINE[0], NONE_PYPI), [], ("Healthy", "")),
        (
            (ALPINE[0], NONE_PYPI),
            [FINDING],
            ("Unhealthy", f"1 active finding(s); the database holds no PyPI advisories: {UPDATE}"),
        ),
        # No OS ecosystem, and no ecosystem with any advisory.
        (
            (NONE_NPM, NONE_PYPI),
            [],
            (
                "NotAssessed",
                f"the database holds no npm advisories: {UPDATE}; the database holds no PyPI advisories: {UPDATE}",
            ),
        ),
        ((PYPI,), [], ("Healthy", "")),
        # Packages no ecosystem could be asked about.
        ((), [], ("NotAssessed", f"no package names an ecosystem the database could be asked about: {UPDATE}")),
    ],
)
def test_coverage_decides_whether_nothing_found_is_healthy(
    coverage: tuple[Coverage, ...], findings: list[Finding], expected: tuple[str, str]
) -> None:
    assert health_of(SCANNED, findings, coverage) == expected


def test_unsupported_incomplete_and_empty_keep_their_precedence() -> None:
    assert health_of(incomplete((PACKAGE,)), [], (NONE_DEBIAN,)) == ("Incomplete", REASON)
    assert health_of(Inventory(IMAGE, "Unsupported", "windows", ()), [], (NONE_DEBIAN,)) == ("Unsupported", "windows")
    assert health_of(Inventory(IMAGE, "Scanned", "", ()), [], ())[0] == "NotApplicable"


def test_assessed_and_the_warnings() -> None:
    assert [assessed(c) for c in (NONE_DEBIAN, SNAPSHOT_DEBIAN, PYPI, ALPINE[0])] == [False, False, True, True]
    assert not_assessed((ALPINE[0], NONE_PYPI, PYPI)) == [f"the database holds no PyPI advisories: {UPDATE}"]


def test_the_assessment_asks_the_database_once_per_ecosystem_os_first(tmp_path: Path) -> None:
    """A real database (Alpine 3.10's secdb): the image's ecosystems in order, OS ones first; a language package
    the OS installed is not looked up, so its ecosystem is not asked about; packages of a distribution acrguard
    has no record for (their ecosystem is the os-release ID) count as the OS's."""
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    path = tmp_path / "db.sqlite"
    import_sources(path, [str(fixtures / "osv/alpine-secdb/v3.10")])
    pypi = replace(PACKAGE, name="urllib3", version="1.26.0", ecosystem="PyPI", purl="pkg:pypi/urllib3@1.26.0",
                   kind="pypi")  # fmt: skip
    owned = replace(pypi, name="six", ecosystem="npm", kind="npm", os_owned=True)
    unknown = replace(PACKAGE, ecosystem="secureos")
    inventory = Inventory(IMAGE, "Scanned", "", (pypi, owned, unknown, PACKAGE, replace(PACKAGE, name="musl-utils")))
    with SqliteVulnDatabase.open(path) as db:
        result = assess(inventory, db)
    assert [(c.ecosystem, c.kind, c.advisories > 0) for c in result.coverage] == [
        ("Alpine:v3.10", "os", True),
        ("secureos", "os", False),
        ("PyPI", "language", False),
    ]
    assert result.health == "Unhealthy"  # the findings are real, and the reason says what was not assessed
    assert result.reason == (
        f"2 active finding(s); the database holds no secureos advisories: {UPDATE};"
        f" the database holds no PyPI advisories: {UPDATE}"
    )
