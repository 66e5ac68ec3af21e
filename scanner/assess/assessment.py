"""Orchestration of one assessment: an inventory in, an assessment out (findings, health, summary).

Rules and remediation arrive as callables so this module stays free of file and template I/O: the CLI
(or the function app) loads rules and templates once and passes them in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from scanner.assess.findings import MatchMemo, category_of, find_vulnerabilities
from scanner.assess.image_health import health_of, summarise
from scanner.assess.origin import with_origin
from scanner.model.severity_order import DEFAULT_SEVERITY_ORDER
from scanner.model.types import Category, Coverage, Finding, Health, Inventory, Package
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
    # What the database holds for each ecosystem of the image's packages, OS ones first.
    coverage: tuple[Coverage, ...] = ()


def assess(
    inventory: Inventory,
    db: VulnDatabase,
    *,
    apply_rules: ApplyRules | None = None,
    attach_remediation: AttachRemediation | None = None,
    summarise_remediation: SummariseRemediation | None = None,
    severity_order: tuple[str, ...] = DEFAULT_SEVERITY_ORDER,
    memo: MatchMemo | None = None,
) -> Assessment:
    # An Incomplete inventory is matched too: what it holds is real, only more may be missing.
    matched = inventory.status != "Unsupported"
    findings, coverage = _matched(inventory, db, severity_order, memo) if matched else ([], ())
    if apply_rules is not None:
        findings = apply_rules(findings, inventory)
    if attach_remediation is not None:
        findings = attach_remediation(findings, inventory)
    health, reason = health_of(inventory, findings, coverage)
    text = summarise_remediation(findings, inventory) if summarise_remediation and findings else ""
    return Assessment(inventory, tuple(findings), health, reason, summarise(findings), text, coverage)


def _matched(
    inventory: Inventory, db: VulnDatabase, severity_order: tuple[str, ...], memo: MatchMemo | None
) -> tuple[list[Finding], tuple[Coverage, ...]]:
    """The image's findings before rules and remediation (with their origin: rules and gates may read it),
    and the database's coverage of its ecosystems; what depends only on its packages and base, shared by the
    images of one rescan whose packages are the very same tuple (`MatchMemo.for_packages`)."""
    base = inventory.image.base
    usable = memo if memo is not None and memo.serves(db, severity_order) else None
    cached = usable.for_packages(inventory.packages, base) if usable is not None else None
    if cached is not None:
        findings, coverage = cached
        return list(findings), coverage
    found = with_origin(find_vulnerabilities(inventory.packages, db, severity_order, memo), base)
    coverage = coverage_of(inventory.packages, db)
    if usable is not None:
        usable.put_for_packages(inventory.packages, base, (tuple(found), coverage))
    return found, coverage


def coverage_of(packages: Iterable[Package], db: VulnDatabase) -> tuple[Coverage, ...]:
    """`db.coverage` once per distinct ecosystem of the packages matching looks up, OS ecosystems first.

    An ecosystem is `os` when its packages are a distribution's (deb, apk, rpm), whatever the database says:
    the packages of a distribution acrguard has no record for carry its os-release ID as their ecosystem, and
    the database, knowing no such ecosystem, would take it for a language's."""
    kinds: dict[str, Category] = {}
    for package in packages:
        if not package.ecosystem or not package.version:
            continue
        category = category_of(package)
        if category == "language" and package.os_owned:
            continue  # not looked up: the distribution's advisories cover it
        if kinds.get(package.ecosystem) != "os":
            kinds[package.ecosystem] = category
    out = []
    for ecosystem in sorted(kinds, key=lambda e: (kinds[e] != "os", e)):
        found = db.coverage(ecosystem)
        out.append(replace(found, ecosystem=ecosystem, kind="os") if kinds[ecosystem] == "os" else found)
    return tuple(out)
