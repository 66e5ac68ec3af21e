"""CVE JSON 5 records (`vulndb.cve5`): conversion to CVSS-only records, `db import` of files, directories laid out
as cvelistV5 and zips, and what the database then finds (by_id by the CVE id; never lookup or coverage)."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path
from typing import Any

from scanner.assess.severity import assess
from scanner.vulndb import cve5
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cve5"
MUSL = FIXTURES / "CVE-2019-14697.json"
V31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"


def musl() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MUSL.read_text())
    return data


def with_metrics(data: dict[str, Any], cna: list[Any] | None = None, adp: list[Any] | None = None) -> dict[str, Any]:
    """The real record with metrics put in (the musl record has none), to exercise the CNA/CISA-ADP paths."""
    data = copy.deepcopy(data)
    if cna is not None:
        data["containers"]["cna"]["metrics"] = cna
    if adp is not None:
        data["containers"]["adp"].append(
            {"providerMetadata": {"shortName": "CISA-ADP", "orgId": "134c704f"}, "metrics": adp}
        )
    return data


def test_the_real_musl_record_converts_without_metrics_or_affected_entries() -> None:
    assert cve5.is_cve_record(musl())
    converted = cve5.convert(musl(), "CVE-2019-14697.json")
    (record,) = converted.records
    assert record["id"] == "CVE5:CVE-2019-14697"
    assert record["aliases"] == ["CVE-2019-14697"]
    assert record["modified"] == "2024-08-05T00:26:37Z"
    assert record["published"] == "2019-08-06T15:34:50Z"
    assert record["summary"].startswith("musl libc through 1.1.23")
    assert "affected" not in record
    assert record["database_specific"] == {"cve_metrics": []}  # MITRE's record scores nothing
    assert cve5.check(record) is None


def test_cna_and_cisa_adp_vectors_keep_their_source_other_adps_are_ignored() -> None:
    data = with_metrics(
        musl(),
        cna=[{"cvssV4_0": {"vectorString": V40}}, {"other": {"type": "unknown", "content": {"value": "Low"}}}],
        adp=[{"cvssV3_1": {"vectorString": V31}}],
    )
    data["containers"]["adp"][0]["metrics"] = [{"cvssV3_0": {"vectorString": V31}}]  # the "CVE" ADP: not read
    (record,) = cve5.convert(data, "x.json").records
    assert record["database_specific"]["cve_metrics"] == [
        {"source": "cna", "type": "CVSS_V4", "score": V40},
        {"source": "cisa-adp", "type": "CVSS_V3", "score": V31},
    ]


def test_rejected_and_malformed_records_are_skipped_in_one_line() -> None:
    rejected = musl()
    rejected["cveMetadata"]["state"] = "REJECTED"
    converted = cve5.convert(rejected, "r.json")
    assert (converted.records, converted.warnings) == ([], ["CVE-2019-14697 (r.json): a rejected CVE"])
    no_id = musl()
    del no_id["cveMetadata"]["cveId"]
    assert cve5.convert(no_id, "n.json").warnings == ["n.json: a CVE record without a CVE id in cveMetadata.cveId"]
    no_date = musl()
    del no_date["cveMetadata"]["dateUpdated"], no_date["cveMetadata"]["datePublished"]
    assert cve5.convert(no_date, "d.json").warnings == ["CVE-2019-14697 (d.json): no dateUpdated or datePublished time"]


def test_sizes_are_bounded() -> None:
    huge = with_metrics(
        musl(), cna=[{"cvssV3_1": {"vectorString": V31}}] * 500 + [{"cvssV3_1": {"vectorString": "C" * 5000}}]
    )
    (record,) = cve5.convert(huge, "h.json").records
    assert len(record["database_specific"]["cve_metrics"]) == cve5.MAX_METRICS
    long_text = with_metrics(musl(), cna=[{"cvssV3_1": {"vectorString": "C" * 5000}}])
    assert cve5.convert(long_text, "l.json").records[0]["database_specific"]["cve_metrics"] == []


def test_import_of_a_cvelist_tree_and_a_zip_found_by_cve_id_only(tmp_path: Path) -> None:
    tree = tmp_path / "cves" / "2019" / "14xxx"
    tree.mkdir(parents=True)
    (tree / "CVE-2019-14697.json").write_bytes(MUSL.read_bytes())
    rejected = musl()
    rejected["cveMetadata"].update(cveId="CVE-2019-14698", state="REJECTED")
    (tree / "CVE-2019-14698.json").write_text(json.dumps(rejected))
    db = tmp_path / "v.sqlite"
    [result] = import_sources(db, [str(tmp_path / "cves")])
    assert (result.records, result.skipped) == (1, 1)
    assert any("CVE-2019-14698" in w and "rejected" in w for w in result.warnings)
    archive = tmp_path / "cves.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr(
            "cves/2019/14xxx/CVE-2019-14697.json",
            json.dumps(with_metrics(musl(), adp=[{"cvssV3_1": {"vectorString": V31}}])),
        )
    [zipped] = import_sources(tmp_path / "z.sqlite", [str(archive)])
    assert (zipped.records, zipped.skipped) == (1, 0)
    with SqliteVulnDatabase.open(db) as opened:
        (record,) = opened.by_id("CVE-2019-14697")
        assert record["id"] == "CVE5:CVE-2019-14697"
        assert opened.lookup("Alpine:v3.10", "musl") == []
    with SqliteVulnDatabase.open(tmp_path / "z.sqlite") as opened:
        (record,) = opened.by_id("CVE-2019-14697")
        assert record["database_specific"]["cve_metrics"][0]["source"] == "cisa-adp"


def test_the_real_rust_record_keeps_its_cna_v31_vector_and_rates_critical() -> None:
    data = json.loads((FIXTURES / "CVE-2024-24576.json").read_text())
    (record,) = cve5.convert(data, "CVE-2024-24576.json").records
    vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    # Its CISA-ADP container holds SSVC only: no vector from it.
    assert record["database_specific"]["cve_metrics"] == [{"source": "cna", "type": "CVSS_V3", "score": vector}]
    severity, source, cvss = assess({"id": "RUSTSEC-2024-0320"}, {}, {}, [record])
    assert (severity, source) == ("Critical", "cve:cna:cvss:3.1")
    assert cvss is not None and cvss.score == 10.0


def test_import_of_the_fixture_directory(tmp_path: Path) -> None:
    [result] = import_sources(tmp_path / "v.sqlite", [str(FIXTURES)])
    assert (result.records, result.skipped) == (2, 0)  # SOURCES.md is no advisory file
    with SqliteVulnDatabase.open(tmp_path / "v.sqlite") as opened:
        assert [r["id"] for r in opened.by_id("CVE-2024-24576")] == ["CVE5:CVE-2024-24576"]


def test_cwe_ids_come_from_the_problem_types() -> None:
    data = json.loads((FIXTURES / "CVE-2024-24576.json").read_text())
    (record,) = cve5.convert(data, "CVE-2024-24576.json").records
    assert record["database_specific"]["cwe_ids"] == ["CWE-78", "CWE-88"]
    (musl,) = cve5.convert(json.loads((FIXTURES / "CVE-2019-14697.json").read_text()), "musl").records
    assert "cwe_ids" not in musl["database_specific"]  # MITRE's record says "n/a"
