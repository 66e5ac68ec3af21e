"""`acrguard scan` of the real Debian bookworm image from the real registry, under OSV records written
from real Debian advisories (tests/fixtures/osv-written). The expected findings are computed with
dpkg itself (`dpkg --compare-versions`) from the image's dpkg database, so the test holds whatever
point release the mirror served when the image was built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.integration import realparts

pytestmark = pytest.mark.integration
WRITTEN = Path(__file__).resolve().parents[1] / "fixtures" / "osv-written"


def dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


def expected_findings(expected_dpkg: set[tuple[str, str, str, str]]) -> set[tuple[str, str, str, str]]:
    """(binary package, record id, fixed version, fix status) for every Debian:12 record whose source
    package is installed at a version dpkg orders below the fix (or with no fix at all)."""
    out = set()
    for path in sorted(WRITTEN.glob("DEBIAN-*.json")):
        record = json.loads(path.read_text())
        for entry in record["affected"]:
            if entry["package"]["ecosystem"] != "Debian:12":
                continue
            fixed = next((e["fixed"] for r in entry["ranges"] for e in r["events"] if "fixed" in e), "")
            for name, _version, source, source_version in expected_dpkg:
                if source != entry["package"]["name"]:
                    continue
                if not fixed:
                    out.add((name, record["id"], "", "not_fixed"))
                elif dpkg_lt(source_version, fixed):
                    out.add((name, record["id"], fixed, "fixed"))
    return out


@pytest.fixture(scope="module")
def debian_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "debian.sqlite"
    import_sources(path, [str(WRITTEN)])
    return path


def scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", "scan", *args, "--insecure", "--progress", "never"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_real_debian_image_findings_equal_dpkg_oracle(
    images: realparts.ImageSet, expected_dpkg: set[tuple[str, str, str, str]], debian_db: Path
) -> None:
    result = scan(images.bookworm.reference, "--db", str(debian_db), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    got = {(f["package"]["name"], f["id"], f["fixed_version"], f["fix_status"]) for f in doc["findings"]}
    expected = expected_findings(expected_dpkg)
    assert got == expected
    # The image carries packages from at least these open (unfixed, "unimportant") Debian issues.
    assert {"DEBIAN-CVE-2016-2781", "DEBIAN-CVE-2005-2541", "DEBIAN-CVE-2010-4756"} <= {f[1] for f in got}
    # Fixed-in-the-past advisories (openssl 3.0.11-1~deb12u2, libcap2 1:2.66-4+deb12u1, zlib with epoch…)
    # must not match the newer versions the image has: no false positives from version semantics.
    assert not any(f[1] in ("DEBIAN-CVE-2023-5363", "DEBIAN-CVE-2025-1390", "DEBIAN-CVE-2022-37434") for f in got)
    assert doc["status"] == "Unhealthy"
    assert all(f["severity"] == "Low" for f in doc["findings"] if f["fix_status"] == "not_fixed")


def test_real_debian_image_gate_and_sarif(images: realparts.ImageSet, debian_db: Path) -> None:
    assert scan(images.bookworm.reference, "--db", str(debian_db), "--fail-on", "low").returncode == 1
    assert scan(images.bookworm.reference, "--db", str(debian_db), "--fail-on", "high").returncode == 0
    sarif = scan(images.bookworm.reference, "--db", str(debian_db), "--format", "sarif")
    assert sarif.returncode == 0, sarif.stderr
    assert json.loads(sarif.stdout)["version"] == "2.1.0"
