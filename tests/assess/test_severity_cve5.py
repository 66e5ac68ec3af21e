"""Severity from CVE records (CVE JSON 5, converted by `vulndb.cve5`): the CNA's CVSS first, else CISA-ADP's,
and only where the vendor and the OSV records give no rating (pure)."""

from __future__ import annotations

from typing import Any

from scanner.assess.severity import assess

V31_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
V31_MEDIUM = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 4.2
V30_HIGH = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"  # 7.5
V40_HIGH = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N"  # 8.7

ALPINE: dict[str, Any] = {"id": "ALPINE-CVE-2019-14697", "modified": "2020-06-08T13:44:53Z"}


def cve_record(*metrics: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "id": "CVE5:CVE-2019-14697",
        "aliases": ["CVE-2019-14697"],
        "database_specific": {"cve_metrics": [{"source": s, "type": t, "score": v} for s, t, v in metrics]},
    }


def test_cna_before_cisa_adp_and_v3_before_v4() -> None:
    both = cve_record(("cisa-adp", "CVSS_V3", V31_CRITICAL), ("cna", "CVSS_V4", V40_HIGH), ("cna", "CVSS_V3", V30_HIGH))
    severity, source, cvss = assess(ALPINE, {}, {}, [both])
    assert (severity, source) == ("High", "cve:cna:cvss:3.0")
    assert cvss is not None and cvss.score == 7.5
    v4_only = cve_record(("cisa-adp", "CVSS_V3", V31_CRITICAL), ("cna", "CVSS_V4", V40_HIGH))
    assert assess(ALPINE, {}, {}, [v4_only])[:2] == ("High", "cve:cna:cvss:4.0")


def test_cisa_adp_when_the_cna_scores_nothing() -> None:
    adp_only = cve_record(("cisa-adp", "CVSS_V3", V31_CRITICAL), ("cna", "CVSS_V3", "not a vector"))
    severity, source, cvss = assess(ALPINE, {}, {}, [adp_only])
    assert (severity, source) == ("Critical", "cve:cisa-adp:cvss:3.1")
    assert cvss is not None and cvss.vector == V31_CRITICAL


def test_vendor_word_record_cvss_and_osv_alias_cvss_win_over_the_cve_record() -> None:
    critical = cve_record(("cna", "CVSS_V3", V31_CRITICAL))
    assert assess({**ALPINE, "database_specific": {"severity": "low"}}, {}, {}, [critical])[:2] == (
        "Low",
        "database_specific",
    )
    own = {**ALPINE, "severity": [{"type": "CVSS_V3", "score": V31_MEDIUM}]}
    assert assess(own, {}, {}, [critical])[:2] == ("Medium", "cvss:3.1")
    osv_alias = {"id": "CVE-2019-14697", "severity": [{"type": "CVSS_V3", "score": V31_MEDIUM}]}
    assert assess(ALPINE, {}, {}, [critical, osv_alias])[:2] == ("Medium", "cvss:3.1")


def test_a_cve_record_without_metrics_leaves_the_finding_unknown() -> None:
    assert assess(ALPINE, {}, {}, [cve_record()]) == ("Unknown", "none", None)
