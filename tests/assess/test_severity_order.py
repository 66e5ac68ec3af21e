"""The order of severity sources (pure): the first source of the order that rates a finding decides, NVD's own
analysis before a CNA's score it republishes, and alias records are read only when a source needs them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from scanner.assess.severity import assess
from scanner.model.severity_order import DEFAULT_SEVERITY_ORDER, SeverityOrderError, parse_severity_order
from scanner.vulndb import nvd

NVD_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvd"
V31_HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"  # 7.5
V31_MEDIUM = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 4.2
V31_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8

# A distribution record with its own word (Debian's urgency) and no CVSS, like the security tracker's.
DEBIAN: dict[str, Any] = {"id": "DEBIAN-CVE-2019-14697", "database_specific": {"urgency": "low"}}
# An OSV alias record of the same CVE with a CVSS of its own.
OSV_ALIAS: dict[str, Any] = {"id": "CVE-2019-14697", "severity": [{"type": "CVSS_V3", "score": V31_MEDIUM}]}


def nvd_record(name: str) -> Mapping[str, Any]:
    (path,) = NVD_FIXTURES.rglob(f"{name}.json")
    (record,) = nvd.convert_document(json.loads(path.read_text()), path.name).records
    return record


def cve5(source: str, vector: str) -> dict[str, Any]:
    return {
        "id": "CVE5:CVE-2019-14697",
        "database_specific": {"cve_metrics": [{"source": source, "type": "CVSS_V3", "score": vector}]},
    }


def rate(
    order: tuple[str, ...], record: Mapping[str, Any], *aliases: Mapping[str, Any]
) -> tuple[str, str, float | None]:
    severity, source, cvss = assess(record, {}, {}, list(aliases), order)
    return severity, source, cvss.score if cvss else None


def test_the_default_order_is_the_vendor_then_cvss_then_the_cve_and_nvd_records() -> None:
    assert DEFAULT_SEVERITY_ORDER == ("vendor", "cvss", "cna", "cisa-adp", "nvd")
    musl = nvd_record("CVE-2019-14697")
    assert rate(DEFAULT_SEVERITY_ORDER, DEBIAN, musl) == ("Low", "database_specific", None)
    assert rate(DEFAULT_SEVERITY_ORDER, {"id": "ALPINE-CVE-2019-14697"}, musl) == ("Critical", "cve:nvd:cvss:3.1", 9.8)


def test_each_order_gives_its_first_source_that_rates() -> None:
    musl, cna = nvd_record("CVE-2019-14697"), cve5("cna", V31_HIGH)
    records = (DEBIAN, OSV_ALIAS, cna, musl)
    assert rate(("nvd", "vendor"), *records) == ("Critical", "cve:nvd:cvss:3.1", 9.8)
    assert rate(("cna", "nvd"), *records) == ("High", "cve:cna:cvss:3.1", 7.5)
    assert rate(("cvss", "vendor"), *records) == ("Medium", "cvss:3.1", 4.2)
    assert rate(("cisa-adp", "vendor"), *records) == ("Low", "database_specific", None)  # no CISA-ADP score
    assert rate(("cisa-adp",), *records) == ("Unknown", "none", None)
    # A source with nothing to say passes to the next one.
    assert rate(("nvd", "vendor"), DEBIAN, OSV_ALIAS) == ("Low", "database_specific", None)


def test_nvds_own_analysis_before_the_cnas_score_it_republishes() -> None:
    # CVE-2025-0168: VulDB (CNA, Secondary) 6.3 in v3.1 and 5.3 in v4.0; NVD (Primary) 7.5.
    assert rate(("nvd",), {"id": "X"}, nvd_record("CVE-2025-0168")) == ("High", "cve:nvd:cvss:3.1", 7.5)
    # CVE-2025-0001: only the CNA's (NCSC.ch) Secondary 6.5.
    assert rate(("nvd",), {"id": "X"}, nvd_record("CVE-2025-0001")) == ("Medium", "cve:nvd:cvss:3.1", 6.5)


def test_nvd_and_cve_records_are_not_the_advisorys_cvss() -> None:
    # `cvss` is the advisory's and its OSV aliases' own; converted CVE and NVD records are sources of their own.
    assert rate(("cvss",), {"id": "X"}, nvd_record("CVE-2019-14697"), cve5("cna", V31_HIGH)) == (
        "Unknown",
        "none",
        None,
    )


class Counted:
    """Alias records as matching gives them: a lazy iterable whose reads are counted."""

    def __init__(self, *records: Mapping[str, Any]) -> None:
        self.records = records
        self.read = 0

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        for record in self.records:
            self.read += 1
            yield record


def test_alias_records_are_read_only_when_a_source_before_the_answer_needs_them() -> None:
    aliases = Counted(OSV_ALIAS, nvd_record("CVE-2019-14697"))
    assert assess(DEBIAN, {}, {}, aliases, ("vendor", "nvd"))[1] == "database_specific"
    assert aliases.read == 0
    own = {"id": "X", "severity": [{"type": "CVSS_V3", "score": V31_HIGH}]}
    assert assess(own, {}, {}, aliases, ("cvss", "nvd"))[1] == "cvss:3.1"
    assert aliases.read == 0
    # The OSV alias answers `cvss`: the NVD record after it is not read.
    assert assess({"id": "X"}, {}, {}, aliases, ("cvss", "nvd"))[1] == "cvss:3.1"
    assert aliases.read == 1
    # Sources that need the aliases share one reading of them.
    aliases = Counted(OSV_ALIAS, nvd_record("CVE-2019-14697"))
    assert assess(DEBIAN, {}, {}, aliases, ("cna", "cisa-adp", "nvd", "vendor"))[1] == "cve:nvd:cvss:3.1"
    assert aliases.read == 2


def test_parsing_an_order() -> None:
    assert parse_severity_order(" NVD, vendor ,nvd,") == ("nvd", "vendor")
    with pytest.raises(SeverityOrderError, match=r"unknown severity source 'epss' \(known: vendor, cvss, cna"):
        parse_severity_order("vendor,epss")
    with pytest.raises(SeverityOrderError, match="not a comma-separated list"):
        parse_severity_order(" , ")
    with pytest.raises(SeverityOrderError, match="not a comma-separated list"):
        parse_severity_order("vendor," * 100)
