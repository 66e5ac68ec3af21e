"""Severity of a finding (pure): the vendor's own rating first, else CVSS, else the CVE alias's CVSS, else the
CVSS of the CVE record (CVE JSON 5, `vulndb.cve5`): its CNA's, else CISA's vulnrichment (CISA-ADP).

Classes follow CVSS v3/v4 qualitative ratings: Critical ≥ 9.0, High ≥ 7.0, Medium ≥ 4.0, Low > 0.
Azure's sub-assessment `status.severity` knows only High/Medium/Low: `azure_severity` maps Critical to
High (and Unknown to Low); the exact class and score stay in the finding.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from scanner.model.types import Cvss, Severity

# Vendor words → our classes. Debian "unimportant", Ubuntu "negligible", Red Hat "Important",
# GHSA "MODERATE" all land in the nearest CVSS class.
_WORDS: dict[str, Severity] = {
    "critical": "Critical",
    "important": "High",
    "high": "High",
    "moderate": "Medium",
    "medium": "Medium",
    "low": "Low",
    "negligible": "Low",
    "unimportant": "Low",
}
_SUMMARY_PREFIX = re.compile(r"^(Critical|Important|Moderate|Low):", re.IGNORECASE)


def class_of(score: float) -> Severity:
    if score >= 9.0:
        return "Critical"
    if score >= 7.0:
        return "High"
    if score >= 4.0:
        return "Medium"
    return "Low"


def azure_severity(severity: Severity) -> str:
    return {"Critical": "High", "High": "High", "Medium": "Medium", "Low": "Low", "Unknown": "Low"}[severity]


@functools.lru_cache(maxsize=16384)
def parse_cvss(kind: str, vector: str) -> Cvss | None:
    """A CVSS vector as OSV carries it (`CVSS_V3`, `CVSS_V4`, `CVSS_V2`); None if it does not parse."""
    try:
        if kind == "CVSS_V3" or vector.startswith("CVSS:3"):
            v3 = CVSS3(vector)
            return Cvss(vector.split("/")[0].split(":")[1], vector, float(v3.base_score))
        if kind == "CVSS_V4" or vector.startswith("CVSS:4"):
            return Cvss("4.0", vector, float(CVSS4(vector).base_score))
        if kind == "CVSS_V2":
            return Cvss("2.0", vector, float(CVSS2(vector).base_score))
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def record_cvss(record: Mapping[str, Any]) -> Cvss | None:
    """The record's best CVSS: v3 (what Azure reports) before v4 before v2."""
    found: list[Cvss] = []
    for item in _severity_items(record):
        parsed = parse_cvss(str(item.get("type", "")), str(item.get("score", "")))
        if parsed is not None:
            found.append(parsed)
    rank = {"3.1": 0, "3.0": 1, "4.0": 2, "2.0": 3}
    return min(found, key=lambda c: rank.get(c.version, 9)) if found else None


def _severity_items(record: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    items: list[Mapping[str, Any]] = []
    for holder in [record, *[a for a in record.get("affected") or [] if isinstance(a, Mapping)]]:
        raw = holder.get("severity")
        if isinstance(raw, list):
            items.extend(i for i in raw if isinstance(i, Mapping))
    return items


def vendor_rating(
    record: Mapping[str, Any], ecosystem_specific: Mapping[str, Any], database_specific: Mapping[str, Any]
) -> tuple[Severity, str] | None:
    """The distribution's or vendor's own word, with where it came from."""
    for source, holder in (
        ("ecosystem_specific", ecosystem_specific),
        ("database_specific", database_specific),
        ("database_specific", record.get("database_specific") or {}),
    ):
        if not isinstance(holder, Mapping):
            continue
        for key in ("severity", "urgency"):  # Debian's tracker says "urgency" (low*, unimportant…)
            word = holder.get(key)
            if isinstance(word, str) and word.lower().rstrip("*") in _WORDS:
                return _WORDS[word.lower().rstrip("*")], source
    for item in _severity_items(record):
        if str(item.get("type", "")).lower() == "ubuntu":
            word = str(item.get("score", "")).lower()
            if word in _WORDS:
                return _WORDS[word], "ubuntu"
    summary = record.get("summary")
    if isinstance(summary, str):
        prefix = _SUMMARY_PREFIX.match(summary.strip())
        if prefix:  # Red Hat family errata: "Important: openssl security update"
            return _WORDS[prefix.group(1).lower()], "vendor"
    return None


def assess(
    record: Mapping[str, Any],
    ecosystem_specific: Mapping[str, Any],
    database_specific: Mapping[str, Any],
    alias_records: Iterable[Mapping[str, Any]],
) -> tuple[Severity, str, Cvss | None]:
    """(class, source, cvss): vendor rating, else the record's CVSS, else a CVE alias record's CVSS."""
    cvss = record_cvss(record)
    vendor = vendor_rating(record, ecosystem_specific, database_specific)
    if vendor is not None:
        # The vendor's word decides; its own CVSS (if any) is kept as the score. Alias records are not
        # read just for a score: that lookup is the costly part of matching.
        return vendor[0], vendor[1], cvss
    cve_records: list[Mapping[str, Any]] = []
    if cvss is None:
        for other in alias_records:
            if cve_metrics(other):
                cve_records.append(other)  # read only if no OSV record of the CVE has a CVSS
                continue
            cvss = record_cvss(other)
            if cvss is not None:
                break
    if cvss is not None:
        return class_of(cvss.score), f"cvss:{cvss.version}", cvss
    for source in CVE_SOURCES:
        for other in cve_records:
            found = cve_record_cvss(other, source)
            if found is not None:
                return class_of(found.score), f"cve:{source}:cvss:{found.version}", found
    return "Unknown", "none", None


# The CVE record's scorers in the order they are trusted: the CNA (who assigned the CVE) before CISA-ADP.
CVE_SOURCES = ("cna", "cisa-adp")


def cve_metrics(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The CVSS vectors a converted CVE record carries (`database_specific.cve_metrics`), else []."""
    holder = record.get("database_specific")
    metrics = holder.get("cve_metrics") if isinstance(holder, Mapping) else None
    return [m for m in metrics if isinstance(m, Mapping)] if isinstance(metrics, list) else []


def cve_record_cvss(record: Mapping[str, Any], source: str) -> Cvss | None:
    """The best CVSS of one scorer (`cna`, `cisa-adp`) of a CVE record: v3.1, v3.0, then v4.0."""
    found: list[Cvss] = []
    for item in cve_metrics(record):
        if item.get("source") == source:
            parsed = parse_cvss(str(item.get("type", "")), str(item.get("score", "")))
            if parsed is not None:
                found.append(parsed)
    rank = {"3.1": 0, "3.0": 1, "4.0": 2}
    found = [c for c in found if c.version in rank]
    return min(found, key=lambda c: rank[c.version]) if found else None
