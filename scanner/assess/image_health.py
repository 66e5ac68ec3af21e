"""Image health, what the database could not assess, and finding counts (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from scanner.model.types import SEVERITY_ORDER, Coverage, Finding, Health, Inventory, Severity

_UPDATE = "run `acrguard db update`"
_NAME_LIMIT = 100


def health_of(inventory: Inventory, findings: Iterable[Finding], coverage: Sequence[Coverage]) -> tuple[Health, str]:
    """Healthy (no active findings), Unhealthy, or Unsupported / NotApplicable / Incomplete / NotAssessed with a
    reason.

    An Incomplete inventory is Incomplete whatever was found: never Healthy (packages may be missing) nor
    NotApplicable (a database that could not be read is not an image with nothing to assess). Its findings
    are still reported, and counted in the reason.

    `coverage` is what the database holds for each ecosystem of the image's packages (`Assessment.coverage`).
    Nothing found is Healthy only when it proves something: the image is NotAssessed when its distribution
    (and release) has no advisories or only a selection of them, or when none of its ecosystems has any. Active
    findings are real whatever the coverage: the image is Unhealthy, and the reason names what was not assessed.
    """
    active = [f for f in findings if not f.disabled]
    if inventory.status == "Incomplete":
        counted = f"; {len(active)} active finding(s)" if active else ""
        return "Incomplete", f"{inventory.reason}{counted}"
    if inventory.status == "Unsupported":
        return "Unsupported", inventory.reason
    if not inventory.packages:
        return "NotApplicable", "no package inventory: nothing to assess"
    gaps = not_assessed(coverage)
    if active:
        return "Unhealthy", "; ".join((f"{len(active)} active finding(s)", *gaps))
    blocking = [_gap(c) for c in coverage if c.kind == "os" and not assessed(c)]
    if blocking:
        return "NotAssessed", "; ".join(blocking)
    if not any(c.advisories for c in coverage):
        if not coverage:
            return "NotAssessed", f"no package names an ecosystem the database could be asked about: {_UPDATE}"
        return "NotAssessed", "; ".join(gaps)
    return "Healthy", ""


def assessed(coverage: Coverage) -> bool:
    """The database holds the whole feed of advisories for this ecosystem: finding nothing there means something."""
    return coverage.advisories > 0 and not coverage.selection


def not_assessed(coverage: Iterable[Coverage]) -> list[str]:
    """One line per ecosystem the database could not assess, saying why and what to do (OS ones first, as given).

    These are the warnings every output gives, whatever the health (a language ecosystem without advisories
    does not change it)."""
    return [_gap(c) for c in coverage if not assessed(c)]


def _gap(c: Coverage) -> str:
    # An unknown distribution's ecosystem is its os-release ID, the image's own text: shown bounded.
    name = c.ecosystem if len(c.ecosystem) <= _NAME_LIMIT else c.ecosystem[: _NAME_LIMIT - 1] + "…"
    if c.advisories == 0:
        return f"the database holds no {name} advisories: {_UPDATE}"
    held = f"{c.advisories}, the bundled snapshot"
    return f"the database holds only a selection of {name} advisories ({held}): {_UPDATE}"


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
