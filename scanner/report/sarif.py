"""SARIF 2.1.0 for findings, shaped for GitHub code scanning (one rule per vulnerability id).

The run's properties hold the database's coverage of each ecosystem of the image (as the scan JSON shows it);
each ecosystem it could not assess gives a tool notification (a warning), and an image it could not assess at
all (health NotAssessed) makes the invocation unsuccessful with an error notification: an empty result list
must not read as a clean image."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from scanner.assess.image_health import not_assessed as coverage_gaps
from scanner.assess.risk import risk_order
from scanner.image.reference import RegistryReference, parse_reference
from scanner.model.errors import ReferenceError_
from scanner.model.types import SEVERITY_ORDER, Coverage, Finding, Severity
from scanner.report.scan_json import coverage_list

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
IMAGE_ROOT = "IMAGE_ROOT"

_LEVELS: dict[Severity, str] = {
    "Critical": "error",
    "High": "error",
    "Medium": "warning",
    "Low": "note",
    "Unknown": "note",
}
# GitHub code scanning reads `security-severity` as a CVSS-like score and buckets it: >= 9.0 critical,
# 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low. A score from another band than our severity class would make
# GitHub and acrguard disagree, so such scores are replaced by a representative of the class.
_BANDS: dict[Severity, tuple[float, float]] = {
    "Critical": (9.0, 10.01),
    "High": (7.0, 9.0),
    "Medium": (4.0, 7.0),
    "Low": (0.1, 4.0),
}  # [low, high)
_REPRESENTATIVE: dict[Severity, float] = {"Critical": 9.5, "High": 8.0, "Medium": 5.5, "Low": 2.0}
_FIX_TEXT = {
    "fixed": "fixed in {}",
    "not_fixed": "no fix is available yet",
    "wont_fix": "the maintainers will not fix it",
}


def to_sarif(
    findings: Iterable[Finding],
    image_reference: str,
    tool_version: str,
    incomplete: Sequence[str] = (),
    *,
    coverage: Sequence[Coverage] = (),
    not_assessed: Sequence[str] = (),
) -> dict[str, Any]:
    """The run's results; `incomplete` (why an inventory is Incomplete, one line each) makes the run's
    invocation unsuccessful with an error notification per reason, so that a consumer does not read the
    results as the whole truth. `not_assessed` (why an image is NotAssessed, one line each) does the same;
    `coverage` goes into the run's properties, with a warning notification per ecosystem not assessed."""
    ordered = sorted(findings, key=_result_order)
    by_id: dict[str, list[Finding]] = {}
    for f in ordered:
        by_id.setdefault(f.id, []).append(f)
    rule_ids = sorted(by_id)
    rule_index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "acrguard",
                "version": tool_version,
                "rules": [_rule(rule_id, by_id[rule_id]) for rule_id in rule_ids],
            }
        },
        "originalUriBaseIds": {
            IMAGE_ROOT: {"description": {"text": f"The root of the filesystem of image {image_reference}"}}
        },
        "results": [_result(f, rule_index[f.id], image_reference) for f in ordered],
        "properties": {"imageReference": image_reference},
    }
    notifications = [_notification("error", "inventory-incomplete", reason) for reason in incomplete]
    notifications += [_notification("error", "not-assessed", reason) for reason in not_assessed]
    # An image's NotAssessed reason already names its ecosystems' gaps: each is said once.
    gaps = [gap for gap in coverage_gaps(coverage) if not any(gap in reason for reason in not_assessed)]
    notifications += [_notification("warning", "ecosystem-not-assessed", gap) for gap in gaps]
    if notifications:
        run["invocations"] = [
            {
                "executionSuccessful": not incomplete and not not_assessed,
                "toolExecutionNotifications": notifications,
            }
        ]
    if incomplete:
        run["properties"]["inventoryStatus"] = "Incomplete"
    if not_assessed:
        run["properties"]["assessmentStatus"] = "NotAssessed"
    if coverage:
        run["properties"]["coverage"] = coverage_list(coverage)
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _notification(level: str, descriptor: str, text: str) -> dict[str, Any]:
    return {"level": level, "descriptor": {"id": descriptor}, "message": {"text": text}}


def _result_order(f: Finding) -> tuple[tuple[float, int, str, str, str], tuple[str, ...]]:
    return (risk_order(f), f.package.locations)


def security_severity(f: Finding) -> str | None:
    """GitHub's `security-severity` for a finding: its CVSS score where that agrees with its class."""
    band = _BANDS.get(f.severity)
    if band is None:
        return None  # Unknown: GitHub then falls back to the result level
    if f.cvss is not None and band[0] <= f.cvss.score < band[1]:
        return f"{f.cvss.score:.1f}"
    return f"{_REPRESENTATIVE[f.severity]:.1f}"


def _rule(rule_id: str, findings: Sequence[Finding]) -> dict[str, Any]:
    # A rule's default is its worst case: the most severe of its findings (the first in risk order among them).
    worst = min(findings, key=lambda f: SEVERITY_ORDER.index(f.severity))
    summary = next((f.summary for f in findings if f.summary), "")
    aliases = sorted({a for f in findings for a in f.aliases} - {rule_id})
    references = list(dict.fromkeys(r for f in findings for r in f.references))
    help_uri = next((r for r in references if r.startswith(("https://", "http://"))), _osv_url(rule_id))
    short = _first_line(summary) or f"{rule_id} in {worst.package.name}"
    properties: dict[str, Any] = {
        "tags": sorted({"security", "vulnerability", "container", *(f"{f.category}-package" for f in findings)}),
        "severity": worst.severity,
    }
    score = security_severity(worst)
    if score is not None:
        properties["security-severity"] = score
    if aliases:
        properties["aliases"] = aliases
    help_lines = [f"{rule_id}: {summary}" if summary else rule_id]
    if aliases:
        help_lines.append("Also known as: " + ", ".join(aliases))
    help_lines += [f"- {r}" for r in references[:10]]
    markdown = [f"**{rule_id}**" + (f": {summary}" if summary else "")]
    if aliases:
        markdown.append("Also known as: " + ", ".join(aliases))
    markdown += [f"- <{r}>" for r in references[:10] if r.startswith(("https://", "http://"))]
    return {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": _clip(short, 200)},
        "fullDescription": {"text": summary or short},
        "helpUri": help_uri,
        "help": {"text": "\n".join(help_lines), "markdown": "\n\n".join(markdown)},
        "defaultConfiguration": {"level": _LEVELS[worst.severity]},
        "properties": properties,
    }


def _result(f: Finding, rule_index: int, image_reference: str) -> dict[str, Any]:
    pkg = f.package
    fix = _FIX_TEXT[f.fix_status].format(f.fixed_version) if f.fixed_version or f.fix_status != "fixed" else "fixed"
    text = f"{pkg.name} {pkg.version} is affected by {f.id} ({f.severity}); {fix}."
    logical = [{"name": image_reference, "fullyQualifiedName": image_reference, "kind": "module"}]
    locations: list[dict[str, Any]] = []
    for path in pkg.locations or ("",):
        location: dict[str, Any] = {"logicalLocations": logical}
        if path:
            location["physicalLocation"] = {"artifactLocation": {"uri": _uri(path), "uriBaseId": IMAGE_ROOT}}
        locations.append(location)
    properties: dict[str, Any] = {
        "package": pkg.name,
        "installedVersion": f.installed_version,
        "fixedVersion": f.fixed_version,
        "fixStatus": f.fix_status,
        "severity": f.severity,
        "severitySource": f.severity_source,
        "category": f.category,
        "risk": f.risk,
        "origin": f.origin,
    }
    if pkg.purl:
        properties["purl"] = pkg.purl
    if pkg.layer is not None:
        properties["layerDigest"] = pkg.layer.digest
    if f.cvss is not None:
        properties["cvss"] = {"version": f.cvss.version, "vector": f.cvss.vector, "score": f.cvss.score}
    if f.kev is not None:
        properties["kev"] = {"dateAdded": f.kev.date_added, "dueDate": f.kev.due_date, "ransomware": f.kev.ransomware}
    if f.epss is not None:
        properties["epss"] = {"score": f.epss.score, "percentile": f.epss.percentile, "date": f.epss.date}
    result: dict[str, Any] = {
        "ruleId": f.id,
        "ruleIndex": rule_index,
        "level": _LEVELS[f.severity],
        # SARIF's rank (0-100, higher is more important) is the finding's risk score; results are in its order.
        "rank": f.risk,
        "kind": "fail",
        "message": {"text": text},
        "locations": locations,
        # Stable across scans of rebuilt images, so code scanning tracks one alert per vulnerable package.
        "partialFingerprints": {"acrguardFinding/v1": _fingerprint(f, image_reference)},
        "properties": properties,
    }
    if f.remediation:
        # Not SARIF `fixes`: those are edits to artifacts, and an image is fixed by a rebuild.
        properties["remediation"] = f.remediation.strip()
    if f.disabled:
        result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": f.disabled_by}]
    return result


def _fingerprint(f: Finding, image_reference: str) -> str:
    # Tags and digests change on every rebuild; the repository does not, and an alert should follow it.
    try:
        ref = parse_reference(image_reference)
    except ReferenceError_:
        ref = None
    repository = f"{ref.registry}/{ref.repository}" if isinstance(ref, RegistryReference) else image_reference
    key = "\0".join((repository, f.id, f.package.kind, f.package.name, *f.package.locations))
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def _uri(path: str) -> str:
    # Relative to IMAGE_ROOT, percent-encoded: image paths may hold spaces, '#', '%' or non-ASCII.
    return quote(path.lstrip("/"), safe="/!$&'()*+,;=:@-._~")


def _osv_url(vuln_id: str) -> str:
    return "https://osv.dev/vulnerability/" + quote(vuln_id, safe="")


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
