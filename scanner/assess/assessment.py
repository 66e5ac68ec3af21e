"""Orchestration of one assessment: an inventory in, an assessment out (findings, health, summary).

Rules and remediation arrive as callables so this module stays free of file and template I/O: the CLI
(or the function app) loads rules and templates once and passes them in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scanner.assess.findings import find_vulnerabilities
from scanner.assess.image_health import health_of, summarise
from scanner.model.types import Finding, Health, Inventory
from scanner.vulndb.interface import VulnDatabase

# (findings, inventory) -> findings with `disabled`/`disabled_by` set by the user's rules
ApplyRules = Callable[[list[Finding], Inventory], list[Finding]]
# (findings, inventory) -> findings with `remediation` set; and the image-level summary text
AttachRemediation = Callable[[list[Finding], Inventory], list[Finding]]
SummariseRemediation = Callable[[list[Finding], Inventory], str]


@dataclass(frozen=True)
class Assessment:
    inventory: Inventory
    findings: tuple[Finding, ...]
    health: Health
    reason: str
    summary: dict[str, Any]
    remediation_summary: str = ""


def assess(
    inventory: Inventory,
    db: VulnDatabase,
    *,
    apply_rules: ApplyRules | None = None,
    attach_remediation: AttachRemediation | None = None,
    summarise_remediation: SummariseRemediation | None = None,
) -> Assessment:
    # An Incomplete inventory is matched too: what it holds is real, only more may be missing.
    findings = find_vulnerabilities(inventory.packages, db) if inventory.status != "Unsupported" else []
    if apply_rules is not None:
        findings = apply_rules(findings, inventory)
    if attach_remediation is not None:
        findings = attach_remediation(findings, inventory)
    health, reason = health_of(inventory, findings)
    text = summarise_remediation(findings, inventory) if summarise_remediation and findings else ""
    return Assessment(inventory, tuple(findings), health, reason, summarise(findings), text)
