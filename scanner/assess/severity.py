"""Severity of a finding (pure), from the sources in the order the caller gives (`model.severity_order`):

- `vendor`: the distribution's or advisory's own word (Debian's urgency, Ubuntu's priority, Red Hat's impact, GHSA's
  severity), source `debian`/`ubuntu`/`vendor`/`ecosystem_specific`/`database_specific`;
- `cvss`: the matched record's own CVSS, else its OSV alias records' (source `cvss:3.1`);
- `cna`, `cisa-adp`: the CVE record's (CVE JSON 5, `vulndb.cve5`) CNA's, CISA vulnrichment's CVSS
  (`cve:cna:cvss:3.1`, `cve:cisa-adp:cvss:3.1`);
- `nvd`: NVD's CVSS (`vulndb.nvd`), its own analysis (Primary) before the CNA's score it republishes (Secondary)
  (`cve:nvd:cvss:3.1`).

The first source in the order that rates the finding decides; none does: Unknown. The default order
(`vendor,cvss,cna,cisa-adp,nvd`) trusts the distribution's own rating for OS packages, then CVSS. Alias records
(the costly lookups of matching) are read only when a source that needs them is reached before one that answered.

Classes follow CVSS v3/v4 qualitative ratings: Critical ≥ 9.0, High ≥ 7.0, Medium ≥ 4.0, Low > 0.
Azure's sub-assessment `status.severity` knows only High/Medium/Low: `azure_severity` maps Critical to
High (and Unknown to Low); the exact class and score stay in the finding.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from scanner.model.severity_order import DEFAULT_SEVERITY_ORDER
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
    order: Iterable[str] = DEFAULT_SEVERITY_ORDER,
) -> tuple[Severity, str, Cvss | None]:
    """(class, source, cvss) from the first source of `order` that rates the finding, else Unknown."""
    cvss = record_cvss(record)
    others = _Once(alias_records)
    for source in order:
        if source == "vendor":
            vendor = vendor_rating(record, ecosystem_specific, database_specific)
            if vendor is not None:
                # The vendor's word decides; the record's own CVSS (if any) is kept as the score. Alias
                # records are not read just for a score: that lookup is the costly part of matching.
                return vendor[0], vendor[1], cvss
        elif source == "cvss":
            found = cvss or next((c for c in map(record_cvss, _osv_records(others)) if c is not None), None)
            if found is not None:
                return class_of(found.score), f"cvss:{found.version}", found
        elif source in CVE_SOURCES:
            for other in others:
                scored = cve_record_cvss(other, source)
                if scored is not None:
                    return class_of(scored.score), f"cve:{source}:cvss:{scored.version}", scored
    return "Unknown", "none", None


class _Once:
    """An iterable read at most once, lazily, however often it is iterated: alias records come from database
    lookups, and a source reads only as far as it needs."""

    def __init__(self, items: Iterable[Mapping[str, Any]]) -> None:
        self._source = iter(items)
        self._seen: list[Mapping[str, Any]] = []
        self._done = False

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        index = 0
        while True:
            if index < len(self._seen):
                yield self._seen[index]
            elif self._done:
                return
            else:
                item = next(self._source, None)
                if item is None:
                    self._done = True
                    return
                self._seen.append(item)
                yield item
            index += 1


def _osv_records(records: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The OSV records among alias records (not the converted CVE and NVD records, which are sources of their own)."""
    return (r for r in records if not cve_metrics(r))


# The scorers of converted CVE records (`database_specific.cve_metrics`' `source`): the CVE record's CNA and
# CISA-ADP (`vulndb.cve5`), and NVD (`vulndb.nvd`).
CVE_SOURCES = ("cna", "cisa-adp", "nvd")


def cve_metrics(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The CVSS vectors a converted CVE record carries (`database_specific.cve_metrics`), else []."""
    holder = record.get("database_specific")
    metrics = holder.get("cve_metrics") if isinstance(holder, Mapping) else None
    return [m for m in metrics if isinstance(m, Mapping)] if isinstance(metrics, list) else []


def cve_record_cvss(record: Mapping[str, Any], source: str) -> Cvss | None:
    """The best CVSS of one scorer (`cna`, `cisa-adp`, `nvd`) of a CVE record: v3.1, v3.0, v4.0, then v2.0; of
    NVD's, its own (Primary) before a CNA's it republishes (Secondary)."""
    found: list[tuple[int, int, Cvss]] = []
    for item in cve_metrics(record):
        if item.get("source") == source:
            parsed = parse_cvss(str(item.get("type", "")), str(item.get("score", "")))
            if parsed is not None and parsed.version in _CVE_RANK:
                role = 1 if item.get("nvd_type") == "Secondary" else 0
                found.append((role, _CVE_RANK[parsed.version], parsed))
    return min(found, key=lambda f: f[:2])[2] if found else None


_CVE_RANK = {"3.1": 0, "3.0": 1, "4.0": 2, "2.0": 3}
