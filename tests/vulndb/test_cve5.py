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
LIBXML2 = FIXTURES / "CVE-2024-25062.json"  # MITRE as CNA, no CNA metrics; CISA-ADP scores it (CVSS v3.1)
SETUPTOOLS = FIXTURES / "CVE-2025-47273.json"  # GitHub as CNA, CVSS v4.0 only; CISA-ADP adds SSVC only
LIBXML2_ADP_V31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
SETUPTOOLS_CNA_V40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N/SA:N/E:P"
V31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def musl() -> dict[str, Any]:
    return load(MUSL)


def with_metrics(data: dict[str, Any], cna: list[Any] | None = None, adp: list[Any] | None = None) -> dict[str, Any]:
    """A real record with metrics put in, to exercise what no real record seen carries (both scorers, hostile sizes)."""
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


def test_the_real_libxml2_record_has_only_cisa_adp_cvss_and_rates_high() -> None:
    (record,) = cve5.convert(load(LIBXML2), "CVE-2024-25062.json").records
    # MITRE's container scores nothing; CISA's vulnrichment container carries the v3.1 vector (and SSVC, not read).
    assert record["database_specific"]["cve_metrics"] == [
        {"source": "cisa-adp", "type": "CVSS_V3", "score": LIBXML2_ADP_V31}
    ]
    assert cve5.check(record) is None
    severity, source, cvss = assess({"id": "ALPINE-CVE-2024-25062"}, {}, {}, [record])
    assert (severity, source) == ("High", "cve:cisa-adp:cvss:3.1")
    assert cvss is not None and (cvss.vector, cvss.score) == (LIBXML2_ADP_V31, 7.5)


def test_the_real_setuptools_record_keeps_its_cna_v40_vector_and_rates_high() -> None:
    (record,) = cve5.convert(load(SETUPTOOLS), "CVE-2025-47273.json").records
    # Its CISA-ADP container holds SSVC only, its "CVE" container references only: the CNA's v4.0 vector alone.
    assert record["database_specific"]["cve_metrics"] == [
        {"source": "cna", "type": "CVSS_V4", "score": SETUPTOOLS_CNA_V40}
    ]
    severity, source, cvss = assess({"id": "GHSA-5rjg-fvgr-3xxf"}, {}, {}, [record])
    assert (severity, source) == ("High", "cve:cna:cvss:4.0")
    assert cvss is not None and (cvss.vector, cvss.score) == (SETUPTOOLS_CNA_V40, 7.7)  # the record says 7.7


def test_cna_and_cisa_adp_vectors_keep_their_source_other_adps_are_ignored() -> None:
    # The real libxml2 record (CISA-ADP v3.1) with the real setuptools CNA metrics put in (no real record seen
    # carries both), and a vector in its "CVE" ADP container, which is not read.
    data = with_metrics(load(LIBXML2), cna=load(SETUPTOOLS)["containers"]["cna"]["metrics"])
    data["containers"]["adp"][0]["metrics"] = [{"cvssV3_0": {"vectorString": V31}}]
    (record,) = cve5.convert(data, "x.json").records
    assert record["database_specific"]["cve_metrics"] == [
        {"source": "cna", "type": "CVSS_V4", "score": SETUPTOOLS_CNA_V40},
        {"source": "cisa-adp", "type": "CVSS_V3", "score": LIBXML2_ADP_V31},
    ]
    # The default order reads the CNA's score before CISA-ADP's.
    assert assess({"id": "x"}, {}, {}, [record])[:2] == ("High", "cve:cna:cvss:4.0")
    assert assess({"id": "x"}, {}, {}, [record], ("cisa-adp", "cna"))[:2] == ("High", "cve:cisa-adp:cvss:3.1")


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
        out.writestr("cves/2024/25xxx/CVE-2024-25062.json", LIBXML2.read_bytes())
    [zipped] = import_sources(tmp_path / "z.sqlite", [str(archive)])
    assert (zipped.records, zipped.skipped) == (1, 0)
    with SqliteVulnDatabase.open(db) as opened:
        (record,) = opened.by_id("CVE-2019-14697")
        assert record["id"] == "CVE5:CVE-2019-14697"
        assert opened.lookup("Alpine:v3.10", "musl") == []
    with SqliteVulnDatabase.open(tmp_path / "z.sqlite") as opened:
        (record,) = opened.by_id("CVE-2024-25062")
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
    assert (result.records, result.skipped) == (4, 0)  # SOURCES.md is no advisory file
    rated = {
        "CVE-2019-14697": ("Unknown", "none"),
        "CVE-2024-24576": ("Critical", "cve:cna:cvss:3.1"),
        "CVE-2024-25062": ("High", "cve:cisa-adp:cvss:3.1"),
        "CVE-2025-47273": ("High", "cve:cna:cvss:4.0"),
    }
    with SqliteVulnDatabase.open(tmp_path / "v.sqlite") as opened:
        for cve_id, rating in rated.items():
            records = opened.by_id(cve_id)
            assert [r["id"] for r in records] == [f"CVE5:{cve_id}"]
            assert assess({"id": cve_id}, {}, {}, records)[:2] == rating


def test_cwe_ids_come_from_the_problem_types() -> None:
    data = json.loads((FIXTURES / "CVE-2024-24576.json").read_text())
    (record,) = cve5.convert(data, "CVE-2024-24576.json").records
    assert record["database_specific"]["cwe_ids"] == ["CWE-78", "CWE-88"]
    (musl,) = cve5.convert(json.loads((FIXTURES / "CVE-2019-14697.json").read_text()), "musl").records
    assert "cwe_ids" not in musl["database_specific"]  # MITRE's record says "n/a"
    (libxml2,) = cve5.convert(load(LIBXML2), "libxml2").records
    assert libxml2["database_specific"]["cwe_ids"] == ["CWE-416"]  # MITRE says "n/a"; CISA-ADP's container names it
    (setuptools,) = cve5.convert(load(SETUPTOOLS), "setuptools").records
    assert setuptools["database_specific"]["cwe_ids"] == ["CWE-22"]
