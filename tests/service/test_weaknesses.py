"""CWE ids of findings from the advisories in a real database (GitHub's records of tests/fixtures/rust)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.model.errors import AcrguardError
from scanner.model.types import Finding, Package
from scanner.service.weaknesses import cwe_ids, cwe_reader
from scanner.vulndb.interface import VulnDatabase
from scanner.vulndb.location import open_scan_database
from scanner.vulndb.osv_import import import_sources

ADVISORIES = Path(__file__).resolve().parents[1] / "fixtures" / "rust" / "advisories"
REGEX = Package("regex", "1.5.4", "crates.io", "pkg:cargo/regex@1.5.4", "", "", "", (), "rust", "rust@1", None)


def finding(vuln_id: str, *aliases: str) -> Finding:
    return Finding(vuln_id, aliases, REGEX, "1.5.4", "1.5.5", "fixed", "High", "ghsa", None, "language")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> VulnDatabase:
    path = tmp_path_factory.mktemp("db") / "rust.sqlite"
    import_sources(path, [str(ADVISORIES)])
    return open_scan_database(str(path))


def test_by_the_advisory_or_its_cve(db: VulnDatabase) -> None:
    # GHSA-m5pq-gvj9-9vr8 (regex, CVE-2022-24713) lists CWE-400 in database_specific.cwe_ids.
    found = cwe_ids(db, [finding("GHSA-m5pq-gvj9-9vr8", "CVE-2022-24713"), finding("CVE-2022-24713")])
    assert found == {"GHSA-m5pq-gvj9-9vr8": ("CWE-400",), "CVE-2022-24713": ("CWE-400",)}
    assert cwe_ids(db, [finding("RUSTSEC-0000-0000")]) == {"RUSTSEC-0000-0000": ()}


def test_an_unreadable_database_gives_none(tmp_path: Path) -> None:
    def broken() -> VulnDatabase:
        raise AcrguardError("no database at /nowhere")

    assert cwe_reader(broken)([finding("GHSA-m5pq-gvj9-9vr8")]) == {}
