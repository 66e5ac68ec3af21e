"""End to end: `acrguard scan` rates findings from NVD's records, and `--severity-source` (or
`ACRGUARD_SEVERITY_SOURCES`) chooses whose word comes first, on real advisories and real NVD data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.snapshot import default_db_path, snapshot_dir
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = f"docker-archive:{ROOT / 'samples' / 'alpine-3.10-app.tar'}"
SECDB_310 = ROOT / "tests" / "fixtures" / "osv" / "alpine-secdb" / "v3.10"
NVD = ROOT / "tests" / "fixtures" / "nvd"
NVD_MUSL = NVD / "CVE-2019" / "CVE-2019-146xx" / "CVE-2019-14697.json"
NVD_LIBGCRYPT = NVD / "CVE-2024" / "CVE-2024-22xx" / "CVE-2024-2236.json"
UBUNTU_LIBGCRYPT = snapshot_dir() / "ubuntu-osv" / "UBUNTU-CVE-2024-2236.json"


@pytest.fixture(autouse=True)
def _no_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACRGUARD_SEVERITY_SOURCES", raising=False)


def findings(acrguard: Any, ref: str, *options: str) -> list[dict[str, Any]]:
    run = acrguard("scan", ref, "--format", "json", *options)
    assert run.code in (0, 1), run.err
    found: list[dict[str, Any]] = json.loads(run.out)["findings"]
    return found


def rated(found: list[dict[str, Any]], package: str) -> tuple[str, str, float | None]:
    (finding,) = [f for f in found if f["package"]["name"] == package]
    return finding["severity"], finding["severity_source"], (finding["cvss"] or {}).get("score")


def test_nvds_record_makes_musl_critical_and_fails_the_gate(acrguard: Any, tmp_path: Path) -> None:
    without, with_nvd = tmp_path / "secdb.sqlite", tmp_path / "nvd.sqlite"
    import_sources(without, [str(SECDB_310)])
    import_sources(with_nvd, [str(SECDB_310), str(NVD_MUSL)])
    # Alpine's secdb rates nothing: without NVD's record the finding is Unknown and a Critical gate passes.
    assert rated(findings(acrguard, SAMPLE, "--db", str(without)), "musl") == ("Unknown", "none", None)
    assert acrguard("scan", SAMPLE, "--db", str(without), "--fail-on", "critical").code == 0
    found = findings(acrguard, SAMPLE, "--db", str(with_nvd))
    assert rated(found, "musl") == ("Critical", "cve:nvd:cvss:3.1", 9.8)
    (musl,) = [f for f in found if f["package"]["name"] == "musl"]
    assert (musl["id"], musl["cvss"]["vector"]) == (
        "ALPINE-CVE-2019-14697",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    )
    assert acrguard("scan", SAMPLE, "--db", str(with_nvd), "--fail-on", "critical").code == 1


@pytest.fixture
def _snapshot_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ACRGUARD_DB", raising=False)
    default_db_path.cache_clear()
    yield
    default_db_path.cache_clear()


@pytest.mark.usefixtures("_snapshot_only")
def test_the_bundled_snapshot_rates_the_samples_findings_from_nvd(acrguard: Any) -> None:
    found = findings(acrguard, SAMPLE)
    by_id = {(f["package"]["name"], f["id"]): (f["severity"], f["severity_source"]) for f in found}
    assert by_id == {
        ("musl", "ALPINE-CVE-2019-14697"): ("Critical", "cve:nvd:cvss:3.1"),
        ("musl-utils", "ALPINE-CVE-2019-14697"): ("Critical", "cve:nvd:cvss:3.1"),
        ("libcrypto1.1", "ALPINE-CVE-2019-1547"): ("Medium", "cve:nvd:cvss:3.1"),
        ("libssl1.1", "ALPINE-CVE-2019-1547"): ("Medium", "cve:nvd:cvss:3.1"),
        ("libcrypto1.1", "ALPINE-CVE-2019-1549"): ("Medium", "cve:nvd:cvss:3.1"),
        ("libssl1.1", "ALPINE-CVE-2019-1549"): ("Medium", "cve:nvd:cvss:3.1"),
        ("libcrypto1.1", "ALPINE-CVE-2019-1563"): ("Low", "cve:nvd:cvss:3.1"),
        ("libssl1.1", "ALPINE-CVE-2019-1563"): ("Low", "cve:nvd:cvss:3.1"),
    }
    assert acrguard("scan", SAMPLE, "--fail-on", "critical").code == 1


def ubuntu_image(root: Path) -> str:
    """Ubuntu 22.04 with libgcrypt20 1.9.4-3ubuntu3, a version Canonical's UBUNTU-CVE-2024-2236 lists as affected
    (no fix yet)."""
    status = b"Package: libgcrypt20\nStatus: install ok installed\nVersion: 1.9.4-3ubuntu3\nArchitecture: amd64\n"
    os_release = b'ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'
    base = layer_tar([Entry("etc/os-release", os_release), Entry("var/lib/dpkg/status", status)])
    write_layout(root, [Image([Layer(base, created_by="FROM ubuntu:22.04")])])
    return f"oci:{root}"


def test_the_chosen_order_puts_nvds_score_before_ubuntus_priority(
    acrguard: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "v.sqlite"
    import_sources(db, [str(UBUNTU_LIBGCRYPT), str(NVD_LIBGCRYPT)])
    image = ubuntu_image(tmp_path / "jammy")
    # Default: the distribution's own word. Canonical rates CVE-2024-2236 low; its record's CVSS is 5.9.
    assert rated(findings(acrguard, image, "--db", str(db)), "libgcrypt20") == ("Low", "ubuntu", 5.9)
    # NVD first: Red Hat's score as NVD republishes it (Secondary), a Medium.
    nvd_first = findings(acrguard, image, "--db", str(db), "--severity-source", "nvd,vendor")
    assert rated(nvd_first, "libgcrypt20") == ("Medium", "cve:nvd:cvss:3.1", 5.9)
    # The setting chooses the same; the command line wins over it.
    monkeypatch.setenv("ACRGUARD_SEVERITY_SOURCES", "nvd,vendor")
    assert rated(findings(acrguard, image, "--db", str(db)), "libgcrypt20")[:2] == ("Medium", "cve:nvd:cvss:3.1")
    by_option = findings(acrguard, image, "--db", str(db), "--severity-source", "vendor")
    assert rated(by_option, "libgcrypt20")[:2] == ("Low", "ubuntu")
    # Neither the vendor's word nor NVD chosen, and no other source rates it: Unknown.
    assert rated(findings(acrguard, image, "--db", str(db), "--severity-source", "cna"), "libgcrypt20")[:2] == (
        "Unknown",
        "none",
    )


def test_an_unknown_source_is_one_line_naming_it(
    acrguard: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        acrguard("scan", SAMPLE, "--severity-source", "vendor,epss")
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "acrguard: argument --severity-source: unknown severity source 'epss' (known: vendor, cvss, cna, cisa-adp,"
        " nvd)\n"
    )
    monkeypatch.setenv("ACRGUARD_SEVERITY_SOURCES", "nvd,cvss3")
    run = acrguard("scan", SAMPLE)
    assert run.code == 2
    assert run.err.strip() == (
        "acrguard: ACRGUARD_SEVERITY_SOURCES: unknown severity source 'cvss3' (known: vendor, cvss, cna, cisa-adp, nvd)"
    )
