"""Severity sources and fix states (pure; a fake database stands in for the store)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scanner.assess.findings import find_vulnerabilities
from scanner.assess.severity import assess, azure_severity, class_of
from scanner.model.types import Package

V31_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
V31_MEDIUM = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 4.2
V40_HIGH = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N"  # 8.7


class FakeDB:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def lookup(self, ecosystem: str, name: str) -> list[Mapping[str, Any]]:
        return [r for r in self.records if any(a["package"]["name"] == name for a in r.get("affected", []))]

    def prefetch(self, packages: object) -> None:
        pass  # everything is in memory already

    def by_id(self, vuln_id: str) -> list[Mapping[str, Any]]:
        return [r for r in self.records if vuln_id == r["id"] or vuln_id in r.get("aliases", [])]

    def exploitation(self, cve_ids: object) -> dict[str, Any]:
        return {}  # no KEV catalog or EPSS scores imported

    def describe(self) -> dict[str, Any]:
        return {}


def test_vendor_word_beats_cvss_and_cvss_classes() -> None:
    record = {"id": "GHSA-x", "severity": [{"type": "CVSS_V3", "score": V31_CRITICAL}],
              "database_specific": {"severity": "MODERATE"}}  # fmt: skip
    severity, source, cvss = assess(record, {}, {}, [])
    assert (severity, source) == ("Medium", "database_specific") and cvss is not None and cvss.score == 9.8
    assert assess({"id": "X", "severity": [{"type": "CVSS_V3", "score": V31_MEDIUM}]}, {}, {}, [])[:2] == (
        "Medium",
        "cvss:3.1",
    )
    assert assess({"id": "X", "severity": [{"type": "CVSS_V4", "score": V40_HIGH}]}, {}, {}, [])[0] == "High"
    ubuntu = {"id": "UBUNTU-CVE-1", "severity": [{"type": "Ubuntu", "score": "negligible"}]}
    assert assess(ubuntu, {}, {}, [])[:2] == ("Low", "ubuntu")
    assert assess({"id": "X", "summary": "Important: kernel security update"}, {}, {}, [])[:2] == ("High", "vendor")
    assert assess({"id": "DEBIAN-CVE-1"}, {"urgency": "low*"}, {}, [])[:2] == ("Low", "ecosystem_specific")


def test_cve_alias_cvss_is_the_fallback_and_unknown_the_last_resort() -> None:
    alias = {"id": "GHSA-y", "aliases": ["CVE-2024-1"], "severity": [{"type": "CVSS_V3", "score": V31_CRITICAL}]}
    severity, source, cvss = assess({"id": "ALPINE-CVE-2024-1"}, {}, {}, [alias])
    assert (severity, source) == ("Critical", "cvss:3.1") and cvss is not None
    assert assess({"id": "ALPINE-CVE-2024-2"}, {}, {}, [])[:2] == ("Unknown", "none")
    assert assess({"id": "X", "severity": [{"type": "CVSS_V3", "score": "not a vector"}]}, {}, {}, [])[0] == "Unknown"


def test_azure_mapping_and_classes() -> None:
    assert [azure_severity(s) for s in ("Critical", "High", "Medium", "Low", "Unknown")] == [
        "High", "High", "Medium", "Low", "Low"
    ]  # fmt: skip
    assert [class_of(x) for x in (9.0, 8.9, 7.0, 6.9, 4.0, 3.9, 0.1)] == [
        "Critical", "High", "High", "Medium", "Medium", "Low", "Low"
    ]  # fmt: skip


def deb(name: str, version: str) -> Package:
    return Package(name, version, "Debian:12", f"pkg:deb/debian/{name}@{version}", name, version, "amd64", ("/s",),
                   "deb", "dpkg@1", None)  # fmt: skip


def entry(name: str, events: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {"package": {"ecosystem": "Debian:12", "name": name}, "ranges": [{"type": "ECOSYSTEM", "events": events}],
            **extra}  # fmt: skip


def test_fix_states_and_alias_merging_prefer_the_distribution_record() -> None:
    db = FakeDB(
        [
            {"id": "DEBIAN-CVE-2024-9", "upstream": ["CVE-2024-9"],
             "affected": [entry("pkg", [{"introduced": "0"}, {"fixed": "1.2-1"}])]},
            {"id": "CVE-2024-9", "severity": [{"type": "CVSS_V3", "score": V31_CRITICAL}],
             "affected": [entry("pkg", [{"introduced": "0"}])]},
            {"id": "DEBIAN-CVE-2024-10", "affected": [entry("pkg", [{"introduced": "0"}],
                                                           ecosystem_specific={"fix_status": "will_not_fix"})]},
            {"id": "DEBIAN-CVE-2024-11", "affected": [entry("pkg", [{"introduced": "0"}])]},
        ]
    )  # fmt: skip
    findings = {f.id: f for f in find_vulnerabilities([deb("pkg", "1.1-1")], db)}
    assert set(findings) == {"DEBIAN-CVE-2024-9", "DEBIAN-CVE-2024-10", "DEBIAN-CVE-2024-11"}
    merged = findings["DEBIAN-CVE-2024-9"]
    assert merged.aliases == ("CVE-2024-9",) and merged.fix_status == "fixed" and merged.fixed_version == "1.2-1"
    assert merged.severity == "Critical"  # the distribution record has no rating: the CVE's CVSS
    assert findings["DEBIAN-CVE-2024-10"].fix_status == "wont_fix"
    assert findings["DEBIAN-CVE-2024-11"].fix_status == "not_fixed" and not findings["DEBIAN-CVE-2024-11"].patchable
