"""`acrguard scan --format json`: the inventory JSON plus health, summary, coverage and findings.

`coverage` lists what the vulnerability database held for each ecosystem of the image's packages, OS ones
first: `ecosystem`, `kind` (os or language), `advisories`, `feed_date` (RFC 3339, "" when unknown),
`selection` (only a selection of the feed, such as the bundled snapshot) and `assessed` (whether finding
nothing there means something). `coverage_warnings` says, one line each, what was not assessed.
`findings` are in risk order (`scanner.assess.risk`), each with its `risk` and `origin`: "base" when its package
came from the base image's layers (`image.base`: the base's name and digest when annotated, its layer count from
the history), "own" when from the image's own layers, "" when the base image's extent is not known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from scanner.assess.image_health import assessed, not_assessed
from scanner.assess.risk import by_risk
from scanner.model.shapes import COVERAGE, EPSS, KEV
from scanner.model.types import Coverage, Finding, Health, Inventory
from scanner.report.inventory_json import inventory_dict, layer_dict


def coverage_dict(coverage: Coverage) -> dict[str, Any]:
    """One ecosystem's coverage as the scan JSON (and the HTTP API) shows it."""
    return COVERAGE.view(coverage) | {"assessed": assessed(coverage)}


def coverage_list(coverage: Iterable[Coverage]) -> list[dict[str, Any]]:
    return [coverage_dict(c) for c in coverage]


def finding_dict(finding: Finding) -> dict[str, Any]:
    pkg = finding.package
    return {
        "id": finding.id,
        "aliases": list(finding.aliases),
        "package": {
            "name": pkg.name,
            "version": pkg.version,
            "ecosystem": pkg.ecosystem,
            "purl": pkg.purl,
            "source_name": pkg.source_name,
            "evidence": pkg.evidence,
            "layer": layer_dict(pkg.layer),
        },
        "category": finding.category,
        "installed_version": finding.installed_version,
        "fixed_version": finding.fixed_version,
        "fix_status": finding.fix_status,
        "severity": finding.severity,
        "severity_source": finding.severity_source,
        "cvss": {"version": finding.cvss.version, "vector": finding.cvss.vector, "score": finding.cvss.score}
        if finding.cvss
        else None,
        "patchable": finding.patchable,
        "summary": finding.summary,
        "references": list(finding.references),
        "disabled": finding.disabled,
        "disabled_by": finding.disabled_by,
        "remediation": finding.remediation,
        "kev": None if finding.kev is None else KEV.view(finding.kev),
        "epss": None if finding.epss is None else EPSS.view(finding.epss),
        "risk": finding.risk,
        "origin": finding.origin,
    }


def scan_dict(
    inventory: Inventory,
    findings: list[Finding],
    health: Health,
    reason: str,
    summary: dict[str, Any],
    remediation_summary: str = "",
    coverage: Sequence[Coverage] = (),
) -> dict[str, Any]:
    doc = inventory_dict(inventory)
    doc["inventory_status"] = doc.pop("status")
    doc["status"] = health
    doc["reason"] = reason or doc["reason"]
    doc["summary"] = summary
    doc["coverage"] = coverage_list(coverage)
    doc["coverage_warnings"] = not_assessed(coverage)
    doc["remediation_summary"] = remediation_summary
    doc["findings"] = [finding_dict(f) for f in by_risk(findings)]
    return doc
