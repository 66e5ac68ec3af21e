"""What to tell the owner of disable rules after a scan: rules that expired, rules that matched nothing
(stale) and rules that hide a finding CISA lists as exploited (pure).

An expired rule disables nothing any more; a stale one (active, unexpired, matching no finding) is dead
weight that may one day hide a new vulnerability nobody reviewed; a rule hiding a KEV-listed finding is
allowed (the owner may have a mitigation) but must not pass unnoticed, so it is a warning, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from scanner.model.types import Finding
from scanner.policy.image_context import ImageContext
from scanner.policy.rules import Rule

ReportKind = Literal["expired", "stale", "hides_kev"]
RuleStatus = Literal["active", "expired", "stale"]


@dataclass(frozen=True)
class RuleReport:
    kind: ReportKind
    rule: str
    source: str  # the rule's file, or "api" for a rule created over HTTP
    message: str  # one line, naming the rule (and the finding for hides_kev)
    expires: str = ""  # YYYY-MM-DD, for expired
    finding: str = ""  # hides_kev: the finding's id, package, version and KEV date added
    package: str = ""
    version: str = ""
    kev_date_added: str = ""

    def document(self) -> dict[str, Any]:
        """The report as JSON (`rule_reports` of the scan JSON): the fields of its kind only."""
        doc: dict[str, Any] = {"kind": self.kind, "rule": self.rule, "source": self.source, "message": self.message}
        if self.kind == "expired":
            doc["expires"] = self.expires
        if self.kind == "hides_kev":
            doc |= {
                "finding": self.finding,
                "package": self.package,
                "version": self.version,
                "kev_date_added": self.kev_date_added,
            }
        return doc


def _clean(text: str, limit: int = 200) -> str:
    # Package names and versions come from the image: one line, no control characters, bounded.
    line = "".join(c for c in " ".join(text.split()) if c.isprintable())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def expired_reports(rules: Iterable[Rule], today: date) -> list[RuleReport]:
    return [
        RuleReport(
            "expired",
            r.name,
            r.source,
            f"rule '{r.name}' ({r.source}) expired on {r.expires}: it disables nothing; renew or delete it",
            expires=r.expires.isoformat() if r.expires else "",
        )
        for r in rules
        if not r.active(today)
    ]


@dataclass(frozen=True)
class Scanned:
    """One scanned image (or platform) and its findings. `conclusive` is False when finding nothing proves
    nothing (an Incomplete inventory, a database that could not assess it): no rule is stale for it."""

    findings: Sequence[Finding]
    image: ImageContext
    conclusive: bool = True


def matched_rules(rules: Sequence[Rule], scanned: Iterable[Scanned]) -> set[str]:
    """Names (case-folded) of the rules matching at least one finding of the scanned images, disabled or not:
    a rule an earlier rule shadows still matches, so it is not called stale."""
    found: set[str] = set()
    for one in scanned:
        for rule in rules:
            key = rule.name.casefold()
            if key not in found and any(rule.matches(f, one.image) for f in one.findings):
                found.add(key)
    return found


def unjudged_rules(rules: Sequence[Rule], scanned: Sequence[Scanned]) -> set[str]:
    """Names (case-folded) of the rules this scan cannot call stale: their image criteria (digests,
    repositories, registries, os) leave out every conclusively scanned image, so they are about other images."""
    judged = [one.image for one in scanned if one.conclusive]
    return {r.name.casefold() for r in rules if not any(r.match.applies_to(image) for image in judged)}


def stale_reports(rules: Iterable[Rule], matched: set[str], today: date, where: str) -> list[RuleReport]:
    """Active rules none of whose findings were seen; `where` says what was looked at ("in this scan")."""
    return [
        RuleReport(
            "stale",
            r.name,
            r.source,
            f"rule '{r.name}' ({r.source}) is stale: it matched no finding {where}; delete it if what it accepted"
            " is gone",
        )
        for r in rules
        if r.active(today) and r.name.casefold() not in matched
    ]


def hides_kev_reports(findings: Iterable[Finding], rules: Sequence[Rule] = (), where: str = "") -> list[RuleReport]:
    """One warning per disabled finding that is in CISA's KEV catalog, naming the rule that disabled it;
    `where` (e.g. "on myacr.azurecr.io/app@sha256:…") is added to the message when given."""
    sources = {r.name.casefold(): r.source for r in rules}
    out: list[RuleReport] = []
    seen: set[tuple[str, str, str, str]] = set()
    for f in findings:
        if not f.disabled or f.kev is None:
            continue
        package, version = _clean(f.package.name), _clean(f.installed_version)
        key = (f.disabled_by.casefold(), f.id, package, version)
        if key in seen:  # the same package in two places (or platforms) is one warning
            continue
        seen.add(key)
        source = sources.get(f.disabled_by.casefold(), "")
        named = f"rule '{f.disabled_by}'" + (f" ({source})" if source else "")
        ransomware = ", used in ransomware" if f.kev.ransomware else ""
        out.append(
            RuleReport(
                "hides_kev",
                f.disabled_by,
                source,
                f"{named} hides {f.id} in {package} {version}{' ' + where if where else ''}, which is in CISA KEV"
                f" (added {f.kev.date_added}{ransomware}): known to be exploited",
                finding=f.id,
                package=package,
                version=version,
                kev_date_added=f.kev.date_added,
            )
        )
    return out


def scan_reports(rules: Sequence[Rule], scanned: Sequence[Scanned], today: date) -> list[RuleReport]:
    """Every report of one scan (one image, or each platform of an index): expired rules, rules that matched no
    finding of any scanned image (only rules about a conclusively scanned image: see `unjudged_rules`), and rules
    hiding KEV-listed findings."""
    active = [r for r in rules if r.active(today)]
    # A rule about no image of this scan, or a scan that proved nothing, is taken as matching: not stale.
    matched = matched_rules(active, scanned) | unjudged_rules(active, scanned)
    return [
        *expired_reports(rules, today),
        *stale_reports(rules, matched, today, "in this scan"),
        *hides_kev_reports((f for one in scanned for f in one.findings), rules),
    ]


def rule_status(rule: Rule, today: date, matched: set[str] | None) -> RuleStatus:
    """expired by date; stale when `matched` (case-folded names) is known and lacks the rule; else active."""
    if not rule.active(today):
        return "expired"
    if matched is not None and rule.name.casefold() not in matched:
        return "stale"
    return "active"
