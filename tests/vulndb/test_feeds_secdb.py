"""Alpine secdb parsing and conversion, on lines as they occur in the real secdb files."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.vulndb.schema import osv_validator
from scanner.vulndb.secdb import ReleaseRow, SecfixRow, build_record, cve_ids, is_secdb, parse_secdb
from tests.vulndb.feedtools import SECDB, secdb_json


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("CVE-2019-1551", ["CVE-2019-1551"]),
        # xen in v3.10/main.yaml: several ids and an XSA on one line
        ("CVE-2017-5753 CVE-2017-5715 CVE-2017-5754 XSA-254 XPTI", ["CVE-2017-5753", "CVE-2017-5715", "CVE-2017-5754"]),
        ("CVE-2018-19961  XSA-275", ["CVE-2018-19961"]),
        # tcpdump: comments after the id
        ("CVE-2018-10103 (SMB - partially fixed, but SMB printing disabled)", ["CVE-2018-10103"]),
        # hand-written variants
        ("CVE_2019-2426", ["CVE-2019-2426"]),
        ("CVE 2018-16859", ["CVE-2018-16859"]),
        ("CVE-2017-8073.patch", ["CVE-2017-8073"]),
        ("CVE-2017-17434-1", ["CVE-2017-17434"]),
        ("CVE-2018-3620 CVE-2018-3646 XSA-273 CVE-2018-3620", ["CVE-2018-3620", "CVE-2018-3646"]),
        # no CVE id at all
        ("XSA-207", []),
        ("CVE-????-?????  XSA-295", []),
        ("wnpa-sec-2017-18", []),
        ("ZBX-11023", []),
        ("NOTCVE-2019-1234", []),
    ],
)
def test_cve_ids(line: str, expected: list[str]) -> None:
    assert cve_ids(line) == expected


def test_parse_counts_lines_without_cve_as_skipped() -> None:
    doc = parse_secdb(
        {
            "distroversion": "v3.11",
            "reponame": "main",
            "packages": [
                {"pkg": {"name": "xen", "secfixes": {"4.7.1-r5": ["XSA-207", "CVE-2016-9932 XSA-200"]}}},
                {"pkg": {"name": "heimdal", "secfixes": {"7.4.0-r0": None}}},  # as in v3.6/main.yaml
                {"pkg": {"name": "zlib"}},
                {"pkg": {"secfixes": {"1-r0": ["CVE-2000-0001"]}}},
            ],
        },
        origin="t",
        parent_name="",
        stem="main",
    )
    assert (doc.release, doc.repo) == ("v3.11", "main")
    assert doc.rows == [SecfixRow("xen", "4.7.1-r5", "CVE-2016-9932")]
    assert doc.skipped == 2  # the XSA-only line, and the package without a name
    assert len(doc.warnings) == 2


@pytest.mark.parametrize(
    ("distroversion", "parent", "release"),
    [("v3.11", "", "v3.11"), ("3.11", "", "v3.11"), ("", "v3.19", "v3.19"), ("edge", "", "edge")],
)
def test_release_from_document_or_directory(distroversion: str, parent: str, release: str) -> None:
    doc = parse_secdb({"distroversion": distroversion, "packages": []}, origin="t", parent_name=parent, stem="main")
    assert doc.release == release


def test_no_release_anywhere_is_refused() -> None:
    with pytest.raises(ValueError, match="without a release"):
        parse_secdb({"packages": []}, origin="t", parent_name="data", stem="main")


def test_is_secdb() -> None:
    assert is_secdb(secdb_json(SECDB / "v3.11" / "main.yaml"))
    assert is_secdb({"packages": None, "distroversion": "v3.4"})
    assert not is_secdb({"id": "GO-1", "modified": "x"})
    assert not is_secdb([{"packages": []}])


def test_real_document_rows() -> None:
    doc = parse_secdb(secdb_json(SECDB / "v3.11" / "main.yaml"), origin="t", parent_name="v3.11", stem="main")
    assert SecfixRow("openssl", "1.1.1d-r3", "CVE-2019-1551") in doc.rows
    assert doc.skipped == 14


def test_build_record_merges_releases_and_drops_zero_fixes() -> None:
    rows = [
        ReleaseRow("v3.11", "openssl", "1.1.1d-r1"),
        ReleaseRow("v3.10", "openssl", "1.1.1d-r0"),
        ReleaseRow("v3.8", "openssl", "1.0.2t-r0"),
        ReleaseRow("v3.11", "libressl", "0"),
        ReleaseRow("v3.11", "openssl", "1.1.1d-r1"),  # the same row from main and a copy: once
    ]
    record = build_record("CVE-2019-1547", rows, "2020-06-08T00:00:00Z")
    assert record is not None
    assert record["id"] == "ALPINE-CVE-2019-1547"
    assert record["aliases"] == ["CVE-2019-1547"]
    packages = [(a["package"]["ecosystem"], a["package"]["name"]) for a in record["affected"]]
    assert packages == [("Alpine:v3.10", "openssl"), ("Alpine:v3.11", "openssl"), ("Alpine:v3.8", "openssl")]
    assert osv_validator().error(record) is None


def test_only_zero_fixes_make_no_record() -> None:
    assert build_record("CVE-2016-0682", [ReleaseRow("v3.8", "db", "0")], "2020-06-08T00:00:00Z") is None


def test_every_record_of_the_fixture_files_is_schema_valid() -> None:
    rows: dict[str, list[ReleaseRow]] = {}
    for path in sorted(SECDB.rglob("*.yaml")):
        data: Any = secdb_json(path)
        doc = parse_secdb(data, origin=path.name, parent_name=path.parent.name, stem=path.stem)
        for row in doc.rows:
            rows.setdefault(row.cve, []).append(ReleaseRow(doc.release, row.package, row.fixed))
    records = [build_record(cve, cve_rows, "2020-06-08T00:00:00Z") for cve, cve_rows in rows.items()]
    built = [r for r in records if r is not None]
    assert len(built) == 2029
    assert [r["id"] for r in built if osv_validator().error(r) is not None] == []
