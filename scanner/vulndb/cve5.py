"""CVE records in the CVE JSON 5 format (the CVE Program's cvelistV5), converted to records that carry only the
CVSS vectors of their CNA and of CISA's vulnrichment (the `CISA-ADP` container).

A converted record has no affected entries, so matching and coverage never see it; it is found only by
`by_id("CVE-…")`, through its alias, when a finding's own records give no rating. Its id is `CVE5:<cve id>` so
that it never replaces an OSV record whose id is the bare CVE id. The vectors sit in
`database_specific.cve_metrics` (`{"source": "cna" | "cisa-adp", "type": "CVSS_V3" | "CVSS_V4", "score": vector}`)
rather than in OSV's `severity`, which names no source. A rejected CVE (`cveMetadata.state == "REJECTED"`) is
skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scanner.vulndb.converted import (
    MAX_ID,
    MAX_SUMMARY,
    Converted,
    check_record,
    clip,
    cwe_list,
    english_description,
    rfc3339,
)

KIND = "cve5"
ID_PREFIX = "CVE5:"
MAX_METRICS = 50  # metrics of one container (real records carry one to three)
MAX_VECTOR = 300  # a CVSS v4.0 vector with every optional metric is ~250 characters
_VERSIONS = {"cvssV3_1": "CVSS_V3", "cvssV3_0": "CVSS_V3", "cvssV4_0": "CVSS_V4"}
_CISA_ADP = "CISA-ADP"


def is_cve_record(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("dataType") == "CVE_RECORD"


def convert(data: Mapping[str, Any], origin: str) -> Converted:
    """The record of one CVE JSON 5 document (none for a rejected CVE), or the reason it was skipped."""
    result = Converted(KIND)
    metadata = data.get("cveMetadata")
    cve_id = metadata.get("cveId") if isinstance(metadata, Mapping) else None
    if not isinstance(cve_id, str) or not cve_id.startswith("CVE-") or len(cve_id) > MAX_ID - len(ID_PREFIX):
        result.skip(f"{origin}: a CVE record without a CVE id in cveMetadata.cveId")
        return result
    assert isinstance(metadata, Mapping)
    label = f"{cve_id} ({origin})"
    if str(metadata.get("state", "")).upper() == "REJECTED":
        result.skip(f"{label}: a rejected CVE")
        return result
    modified = rfc3339(str(metadata.get("dateUpdated") or metadata.get("datePublished") or ""))
    if modified is None:
        result.skip(f"{label}: no dateUpdated or datePublished time")
        return result
    containers = data.get("containers")
    containers = containers if isinstance(containers, Mapping) else {}
    cna = containers.get("cna")
    metrics = _metrics(cna, "cna") if isinstance(cna, Mapping) else []
    adps = containers.get("adp")
    for adp in adps[:MAX_METRICS] if isinstance(adps, list) else []:
        provider = adp.get("providerMetadata") if isinstance(adp, Mapping) else None
        if isinstance(provider, Mapping) and provider.get("shortName") == _CISA_ADP:
            metrics.extend(_metrics(adp, "cisa-adp"))
    record: dict[str, Any] = {
        "id": f"{ID_PREFIX}{cve_id}",
        "modified": modified,
        "aliases": [cve_id],
        "summary": clip(_description(cna), MAX_SUMMARY) if isinstance(cna, Mapping) else "",
        "database_specific": {"cve_metrics": metrics},
    }
    cwes = cwe_list(_cwe_values(cna, adps))
    if cwes:
        record["database_specific"]["cwe_ids"] = cwes
    published = rfc3339(str(metadata.get("datePublished") or ""))
    if published:
        record["published"] = published
    result.records.append(record)
    return result


def check(record: Mapping[str, Any]) -> str | None:
    """`converted.check_record`'s checks of a record that has, by design, no affected entries."""
    return check_record({**record, "affected": [_PLACEHOLDER]})


_PLACEHOLDER = {
    "package": {"ecosystem": "none", "name": "none"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
}


def _metrics(container: Mapping[str, Any], source: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    metrics = container.get("metrics")
    for metric in metrics[:MAX_METRICS] if isinstance(metrics, list) else []:
        if not isinstance(metric, Mapping):
            continue
        for key, kind in _VERSIONS.items():
            body = metric.get(key)
            vector = body.get("vectorString") if isinstance(body, Mapping) else None
            if isinstance(vector, str) and 0 < len(vector) <= MAX_VECTOR:
                found.append({"source": source, "type": kind, "score": vector.strip()})
    return found


def _cwe_values(cna: Any, adps: Any) -> list[object]:
    """`problemTypes[].descriptions[].cweId` of the CNA's container and the ADP containers (CISA's adds CWEs)."""
    values: list[object] = []
    for container in [cna, *(adps[:MAX_METRICS] if isinstance(adps, list) else [])]:
        types = container.get("problemTypes") if isinstance(container, Mapping) else None
        for problem in types[:MAX_METRICS] if isinstance(types, list) else []:
            descriptions = problem.get("descriptions") if isinstance(problem, Mapping) else None
            for item in descriptions[:MAX_METRICS] if isinstance(descriptions, list) else []:
                if isinstance(item, Mapping):
                    values.append(item.get("cweId"))
    return values


def _description(cna: Mapping[str, Any]) -> str:
    return english_description(cna, MAX_METRICS)
