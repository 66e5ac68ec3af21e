"""Image health and finding counts (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scanner.model.types import SEVERITY_ORDER, Finding, Health, Inventory, Severity


def health_of(inventory: Inventory, findings: Iterable[Finding]) -> tuple[Health, str]:
    """Healthy (no active findings), Unhealthy, or Unsupported / NotApplicable / Incomplete with a reason.

    An Incomplete inventory is Incomplete whatever was found: never Healthy (packages may be missing) nor
    NotApplicable (a database that could not be read is not an image with nothing to assess). Its findings
    are still reported, and counted in the reason."""
    active = [f for f in findings if not f.disabled]
    if inventory.status == "Incomplete":
        counted = f"; {len(active)} active finding(s)" if active else ""
        return "Incomplete", f"{inventory.reason}{counted}"
    if inventory.status == "Unsupported":
        return "Unsupported", inventory.reason
    if not inventory.packages:
        return "NotApplicable", "no package inventory: nothing to assess"
    if active:
        return "Unhealthy", f"{len(active)} active finding(s)"
    return "Healthy", ""


def summarise(findings: Iterable[Finding]) -> dict[str, Any]:
    """Counts of active findings by severity and by fix state, plus disabled and total."""
    items = list(findings)
    active = [f for f in items if not f.disabled]
    by_severity = {s: sum(1 for f in active if f.severity == s) for s in SEVERITY_ORDER}
    by_fix = {s: sum(1 for f in active if f.fix_status == s) for s in ("fixed", "not_fixed", "wont_fix")}
    return {
        "total": len(items),
        "active": len(active),
        "disabled": len(items) - len(active),
        "by_severity": by_severity,
        "by_fix_status": by_fix,
        "patchable": sum(1 for f in active if f.patchable),
    }


def at_least(severity: Severity, threshold: Severity) -> bool:
    """Critical ≥ High ≥ Medium ≥ Low ≥ Unknown."""
    return SEVERITY_ORDER.index(severity) <= SEVERITY_ORDER.index(threshold)


def gate_fails(findings: Iterable[Finding], threshold: Severity | None) -> bool:
    if threshold is None:
        return False
    return any(not f.disabled and at_least(f.severity, threshold) for f in findings)
