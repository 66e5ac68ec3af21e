"""Findings from real feed data: won't-fix spellings, `related` CVEs, binNMU installed versions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from scanner.assess.findings import find_vulnerabilities
from scanner.inventory.detectors.base import DetectContext, MemoryFileSet
from scanner.inventory.detectors.dpkg import DpkgDetector
from scanner.model.types import OSInfo, Package
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.snapshot import snapshot_dir
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ALMA = FIXTURES / "osv" / "almalinux-osv"
WRITTEN = FIXTURES / "osv-written"
BINNMU_STATUS = FIXTURES / "dpkg-binnmu" / "var" / "lib" / "dpkg" / "status"


def database(tmp_path: Path, *sources: Path) -> SqliteVulnDatabase:
    path = tmp_path / "vulns.db"
    import_sources(path, [str(s) for s in sources])
    return SqliteVulnDatabase.open(path)


def rpm(name: str, version: str, source: str) -> Package:
    return Package(name, version, "AlmaLinux:9", f"pkg:rpm/almalinux/{name}@{version}", source, version, "x86_64",
                   ("/var/lib/rpm/rpmdb.sqlite",), "rpm", "test@1", None)  # fmt: skip


def test_related_cves_name_almalinux_errata_without_merging_them(tmp_path: Path) -> None:
    with database(tmp_path, ALMA) as db:
        # curl 7.76.1-14.el9 predates ALSA-2022:6157 (fixed in -14.el9_0.5), which lists its CVEs only
        # under `related`; the erratum's record keeps `related` as published.
        [record] = db.by_id("ALSA-2022:6157")
        assert "aliases" not in record and record["related"]
        curl = {f.id: f for f in find_vulnerabilities([rpm("curl", "7.76.1-14.el9", "curl")], db)}
        assert curl["ALSA-2022:6157"].aliases == ("CVE-2022-32206", "CVE-2022-32207", "CVE-2022-32208")
        # Each openssl erratum stays its own finding, with its own fix and only its own CVEs.
        openssl = {f.id: f for f in find_vulnerabilities([rpm("openssl", "1:3.0.1-1.el9", "openssl")], db)}
        assert {"ALSA-2022:6224", "ALSA-2022:7288"} <= set(openssl)
        assert openssl["ALSA-2022:7288"].aliases == ("CVE-2022-3602", "CVE-2022-3786")
        assert openssl["ALSA-2022:7288"].fixed_version != openssl["ALSA-2022:6224"].fixed_version
        assert "CVE-2022-3602" not in openssl["ALSA-2022:6224"].aliases


def test_related_cves_of_language_records_are_not_aliases(tmp_path: Path) -> None:
    # GO-2023-2102 is CVE-2023-39325 and relates CVE-2023-44487, the protocol's CVE: another vulnerability.
    xnet = Package("golang.org/x/net", "v0.16.0", "Go", "pkg:golang/golang.org/x/net@v0.16.0", "", "", "",
                   ("/app",), "golang", "test@1", None)  # fmt: skip
    with database(tmp_path, snapshot_dir() / "golang-vulndb") as db:
        [record] = db.by_id("GO-2023-2102")
        assert record["related"] == ["CVE-2023-44487"]
        found = {f.id: f for f in find_vulnerabilities([xnet], db)}
    assert found["GO-2023-2102"].aliases == ("CVE-2023-39325", "GHSA-4374-p667-p6c8")


def test_binnmu_shows_the_binary_version_and_matches_by_the_source_version(tmp_path: Path) -> None:
    files = MemoryFileSet({"/var/lib/dpkg/status": BINNMU_STATUS.read_bytes()})
    extraction = DpkgDetector().extract(files, DetectContext(os=OSInfo(id="debian", version="12")))
    [raw] = extraction.packages
    assert (raw.version, raw.source_name, raw.source_version) == ("1:2.66-4+b1", "libcap2", "1:2.66-4")
    package = Package(raw.name, raw.version, raw.ecosystem, raw.purl, raw.source_name, raw.source_version,
                      raw.arch, raw.locations, raw.kind, "dpkg@test", None)  # fmt: skip
    with database(tmp_path, WRITTEN) as db:
        [finding] = find_vulnerabilities([package], db)
        assert (finding.id, finding.installed_version, finding.fixed_version) == (
            "DEBIAN-CVE-2025-1390",
            "1:2.66-4+b1",
            "1:2.66-4+deb12u1",
        )
        # The source version decides: the same binNMU of the fixed source is not affected.
        rebuilt = replace(package, version="1:2.66-4+deb12u1+b1", source_version="1:2.66-4+deb12u1")
        assert find_vulnerabilities([rebuilt], db) == []


# Spellings of won't-fix states as feeds write them (see `_WONT_FIX_WORDS`), and states that are not.
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("end_of_life", "wont_fix"),
        ("end-of-life", "wont_fix"),
        ("<end-of-life>", "wont_fix"),
        ("will_not_fix", "wont_fix"),
        ("Will not fix", "wont_fix"),
        ("wont-fix", "wont_fix"),
        ("<ignored>", "wont_fix"),
        ("fix_deferred", "not_fixed"),
        ("<postponed>", "not_fixed"),
        ("affected", "not_fixed"),
    ],
)
def test_wont_fix_spellings(tmp_path: Path, state: str, expected: str) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    record = {
        "schema_version": "1.6.0",
        "id": "DEBIAN-CVE-2016-2781",
        "modified": "2026-11-01T00:00:00Z",
        "upstream": ["CVE-2016-2781"],
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "coreutils"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                "ecosystem_specific": {"fix_status": state},
            }
        ],
    }
    (feed / "DEBIAN-CVE-2016-2781.json").write_text(json.dumps(record))
    package = Package("coreutils", "9.1-1", "Debian:12", "pkg:deb/debian/coreutils@9.1-1", "coreutils", "9.1-1",
                      "amd64", ("/var/lib/dpkg/status",), "deb", "test@1", None)  # fmt: skip
    with database(tmp_path, feed) as db:
        [finding] = find_vulnerabilities([package], db)
    assert finding.fix_status == expected
