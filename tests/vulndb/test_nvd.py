"""NVD's CVE records (`vulndb.nvd`): conversion of real API 2.0 CVE objects to CVSS-only records, `db import` of
the repository's tree, of API pages and yearly feeds (plain, gzip, zipped, streamed when large), and the bounds a
hostile feed meets (one line naming the file and what)."""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb import nvd, readers
from scanner.vulndb.osv_import import ImportResult, import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from scanner.vulndb.xmlstream import BoundedStream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvd"
MUSL = FIXTURES / "CVE-2019" / "CVE-2019-146xx" / "CVE-2019-14697.json"
SECONDARY_ONLY = FIXTURES / "CVE-2025" / "CVE-2025-00xx" / "CVE-2025-0001.json"
WITH_V40 = FIXTURES / "CVE-2025" / "CVE-2025-01xx" / "CVE-2025-0168.json"
ALL = sorted(FIXTURES.rglob("CVE-*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def feed(paths: list[Path]) -> dict[str, Any]:
    """The API's response shape (and the yearly feeds'), around real CVE objects."""
    return {
        "resultsPerPage": len(paths),
        "startIndex": 0,
        "totalResults": len(paths),
        "format": "NVD_CVE",
        "version": "2.0",
        "timestamp": "2026-06-17T10:00:00.000",
        "vulnerabilities": [{"cve": load(p)} for p in paths],
    }


def ids_in(db_path: Path) -> set[str]:
    with SqliteVulnDatabase.open(db_path) as db:
        return {str(r["id"]) for cve in [load(p)["id"] for p in ALL] for r in db.by_id(cve)}


def only(results: list[ImportResult]) -> ImportResult:
    (result,) = results
    return result


def test_the_copies_have_the_stored_files_lengths() -> None:
    rows = re.findall(r"^\| `([^`]+\.json)` \|.*\| (\d+) \|[^|]*\|$", (FIXTURES / "SOURCES.md").read_text(), re.M)
    assert {name: int(chars) for name, chars in rows} == {
        p.relative_to(FIXTURES).as_posix(): len(p.read_text(encoding="utf-8")) for p in ALL
    }


def test_the_real_musl_record_converts_to_nvds_primary_vectors() -> None:
    assert nvd.is_cve(load(MUSL)) and not nvd.is_feed(load(MUSL))
    (record,) = nvd.convert_document(load(MUSL), "CVE-2019-14697.json").records
    assert record["id"] == "NVD:CVE-2019-14697"
    assert record["aliases"] == ["CVE-2019-14697"]
    assert (record["modified"], record["published"]) == ("2026-06-17T02:18:50Z", "2019-08-06T16:15:11Z")
    assert record["summary"].startswith("musl libc through 1.1.23")
    assert "affected" not in record
    assert record["database_specific"]["cve_metrics"] == [
        {
            "source": "nvd",
            "type": "CVSS_V3",
            "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "nvd_type": "Primary",
            "scorer": "nvd@nist.gov",
        },
        {
            "source": "nvd",
            "type": "CVSS_V2",
            "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P",
            "nvd_type": "Primary",
            "scorer": "nvd@nist.gov",
        },
    ]


def test_secondary_and_v4_metrics_keep_their_type_and_scorer() -> None:
    (record,) = nvd.convert_document(load(WITH_V40), "x").records
    kept = [(m["type"], m["nvd_type"], m["scorer"]) for m in record["database_specific"]["cve_metrics"]]
    assert kept == [
        ("CVSS_V3", "Secondary", "cna@vuldb.com"),
        ("CVSS_V3", "Primary", "nvd@nist.gov"),
        ("CVSS_V4", "Secondary", "cna@vuldb.com"),
        ("CVSS_V2", "Secondary", "cna@vuldb.com"),
    ]
    (record,) = nvd.convert_document(load(SECONDARY_ONLY), "x").records
    assert [m["nvd_type"] for m in record["database_specific"]["cve_metrics"]] == ["Secondary"]


def test_rejected_and_unusable_cves_are_skipped_with_a_reason() -> None:
    rejected = {**load(MUSL), "vulnStatus": "Rejected"}
    undated = {**load(MUSL), "lastModified": "yesterday", "published": ""}
    converted = nvd.convert_document(feed([]) | {"vulnerabilities": [{"cve": rejected}, {"cve": undated}, 7]}, "f")
    assert converted.records == []
    assert converted.warnings == [
        "CVE-2019-14697 (f[0]): a rejected CVE",
        "CVE-2019-14697 (f[1]): no lastModified or published time",
        "f[2]: not an NVD CVE object ({'cve': {'id': 'CVE-…', 'lastModified': …}})",
    ]


def test_a_tree_like_the_repositorys_imports_records_found_only_by_their_cve(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    result = only(import_sources(db_path, [str(FIXTURES)]))
    assert (result.records, result.skipped, result.warnings) == (len(ALL), 0, [])
    assert ids_in(db_path) == {f"NVD:{p.stem}" for p in ALL}
    with SqliteVulnDatabase.open(db_path) as db:
        # No affected entries: matching and coverage never see them.
        assert db.lookup("Alpine:v3.10", "musl") == []
        assert db.coverage("Alpine:v3.10").advisories == 0


@pytest.mark.parametrize("name", ["nvdcve-2.0-2019.json", "nvdcve-2.0-2019.json.gz"])
def test_an_api_page_or_yearly_feed_imports_every_cve(tmp_path: Path, name: str) -> None:
    body = json.dumps(feed(ALL), indent=2).encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
    db_path = tmp_path / "v.sqlite"
    result = only(import_sources(db_path, [str(path)]))
    assert (result.records, result.skipped, result.warnings) == (len(ALL), 0, [])
    assert ids_in(db_path) == {f"NVD:{p.stem}" for p in ALL}


def test_a_feed_too_large_for_one_document_is_streamed_in_small_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A yearly feed is far larger than one document may be: it is read one CVE object at a time. Pieces of
    # 7 characters cut every string, number and escape somewhere.
    monkeypatch.setattr(readers, "MAX_DOCUMENT_BYTES", 1000)
    monkeypatch.setattr(nvd, "_CHUNK", 7)
    path = tmp_path / "nvdcve-2.0-2019.json"
    path.write_text(json.dumps(feed(ALL), indent=2), encoding="utf-8")
    streamed = only(import_sources(tmp_path / "s.sqlite", [str(path)]))
    whole = [r for p in ALL for r in nvd.convert_document(load(p), p.name).records]
    assert streamed.records == len(whole) and streamed.warnings == []
    with SqliteVulnDatabase.open(tmp_path / "s.sqlite") as db:
        assert [db.by_id(r["aliases"][0])[0] for r in whole] == whole


def test_a_zip_of_the_tree_and_nvds_zipped_feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "tree.zip"
    shutil.make_archive(str(tree.with_suffix("")), "zip", FIXTURES)
    assert only(import_sources(tmp_path / "t.sqlite", [str(tree)])).records == len(ALL)
    monkeypatch.setattr(readers, "MAX_DOCUMENT_BYTES", 1000)  # the member is streamed, as a real yearly feed
    zipped = tmp_path / "nvdcve-2.0-2019.json.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("nvdcve-2.0-2019.json", json.dumps(feed(ALL)))
    result = only(import_sources(tmp_path / "z.sqlite", [str(zipped)]))
    assert (result.records, result.warnings) == (len(ALL), [])


def gz(path: Path, body: bytes) -> str:
    path.write_bytes(gzip.compress(body))
    return str(path)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1, 2]", "expected '{', found '['"),
        (b'{"format": "OSV", "vulnerabilities": []}', "not an NVD CVE feed: format 'OSV'"),
        (b'{"resultsPerPage": 1}', "not an NVD CVE feed: no vulnerabilities list"),
        (b'{"vulnerabilities": [{"cve": {"id": "CVE-1', "JSON: Unterminated string starting at"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_a_malformed_feed_is_one_line_naming_the_file(tmp_path: Path, body: bytes, reason: str) -> None:
    result = only(import_sources(tmp_path / "v.sqlite", [gz(tmp_path / "bad.json.gz", body)]))
    (warning,) = result.warnings
    assert warning.startswith(f"bad.json.gz: {reason}") and "\n" not in warning
    assert result.skipped == 1


def test_a_truncated_gzip_is_one_line_naming_the_file(tmp_path: Path) -> None:
    data = gzip.compress(json.dumps(feed(ALL)).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    (warning,) = only(import_sources(tmp_path / "v.sqlite", [str(path)])).warnings
    assert warning.startswith("cut.json.gz: corrupt gzip data")


def test_the_bounds_of_a_feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps(feed(ALL)).encode()
    monkeypatch.setattr(nvd, "MAX_FEED_BYTES", 10_000)
    (warning,) = only(import_sources(tmp_path / "a.sqlite", [gz(tmp_path / "bomb.json.gz", body)])).warnings
    assert warning == "bomb.json.gz: decompresses to more than 10000 bytes"
    monkeypatch.setattr(nvd, "MAX_FEED_BYTES", 1 << 30)
    monkeypatch.setattr(nvd, "MAX_CVE_BYTES", 5_000)
    (warning,) = only(import_sources(tmp_path / "b.sqlite", [gz(tmp_path / "big.json.gz", body)])).warnings
    assert re.fullmatch(r"big\.json\.gz: a value at offset \d+ is longer than 5000 bytes", warning)
    monkeypatch.setattr(nvd, "MAX_CVE_BYTES", 1 << 20)
    monkeypatch.setattr(nvd, "MAX_FEED_CVES", 2)
    result = only(import_sources(tmp_path / "c.sqlite", [gz(tmp_path / "many.json.gz", body)]))
    assert result.records == 2
    assert result.warnings == ["many.json.gz: more than 2 CVEs; the rest is not read"]


def test_db_import_says_what_is_wrong_in_one_line(acrguard: Any, tmp_path: Path) -> None:
    bad = gz(tmp_path / "nvdcve-2.0-2019.json.gz", b'{"format": "CSAF"}')
    run = acrguard("db", "import", "--db", str(tmp_path / "v.sqlite"), bad)
    warnings = [line for line in run.err.splitlines() if line.startswith("acrguard: warning:")]
    assert warnings == ["acrguard: warning: nvdcve-2.0-2019.json.gz: not an NVD CVE feed: format 'CSAF'"]
    assert run.code == 2 and run.err.splitlines()[-1].endswith(
        "no advisory, CVE, KEV or EPSS records in it (1 file skipped, see the warnings above)"
    )


def test_the_stream_reader_reads_values_across_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvd, "_CHUNK", 3)  # "é" is two bytes in UTF-8: some pieces end inside one
    text = json.dumps(
        {"a": 1, "vulnerabilities": [{"x": "é" * 5}, 12345678, [True, None]], "b": "z"}, ensure_ascii=False
    )
    tokens = nvd._Tokens(BoundedStream(io.BufferedReader(io.BytesIO(text.encode()))))
    assert list(nvd._vulnerabilities(tokens)) == [{"x": "é" * 5}, 12345678, [True, None]]


def test_cwe_ids_come_from_nvds_weaknesses() -> None:
    (record,) = nvd.convert_document(load(MUSL), "CVE-2019-14697.json").records
    assert record["database_specific"]["cwe_ids"] == ["CWE-787"]
    hostile = {**load(MUSL), "weaknesses": [{"description": [{"value": v} for v in ("NVD-CWE-Other", "CWE-1x", 7)]}]}
    (other,) = nvd.convert_document(hostile, "x.json").records
    assert "cwe_ids" not in other["database_specific"]
