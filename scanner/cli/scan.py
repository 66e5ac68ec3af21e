"""`acrguard scan`: inventory, match, apply rules, render remediation, gate. Exit 0 pass, 1 fail, 2 error or an
Incomplete inventory (the output is written first, then the reason on stderr).

An image the database could not assess (health NotAssessed) is said in one line on stderr, naming it and the
reason, and the `--fail-on` gate judges it by `--on-not-assessed` (default `ACRGUARD_GATE_ON_NOT_ASSESSED`,
itself `fail`): `fail` fails the gate (exit 1), `findings` judges the findings found (none), `skip` gives no
verdict. Without `--fail-on` there is no gate, and the exit code does not judge health at all.

Disable rules that expired, matched no finding (stale) or hide a finding in CISA's KEV catalog are warned about,
one line each on stderr, and listed in the JSON's `rule_reports`; they never change the exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from scanner import __version__
from scanner.assess.assessment import Assessment, assess
from scanner.model.settings import Settings
from scanner.model.severity_order import SeverityOrderError, parse_severity_order
from scanner.model.types import INCOMPLETE_POLICIES, SEVERITY_ORDER, IncompletePolicy, Severity

if TYPE_CHECKING:
    from scanner.policy.rule_reports import RuleReport
    from scanner.policy.rules import Rule

EXIT_GATE_FAILED = 1


def add_scan_parser(sub: Any) -> None:
    from scanner.cli.options import add_image_arguments

    scan = sub.add_parser("scan", help="find vulnerabilities in an image and gate on them")
    add_image_arguments(scan)
    scan.add_argument("--db", help="vulnerability database (default $ACRGUARD_DB, the cache, or the bundled snapshot)")
    scan.add_argument("--rules", help="directory of disable rules (default policies/rules if present)")
    scan.add_argument("--templates", help="directory of remediation templates (default policies/templates)")
    scan.add_argument("--format", choices=["table", "json", "sarif"], default="table")
    scan.add_argument(
        "--fail-on",
        type=lambda s: s.capitalize(),
        choices=list(SEVERITY_ORDER),
        help="exit 1 when an active finding is at least this severe",
    )
    scan.add_argument(
        "--on-not-assessed",
        choices=list(INCOMPLETE_POLICIES),
        help="how --fail-on judges an image the database could not assess: fail (exit 1), findings (judge what"
        " was found) or skip (default $ACRGUARD_GATE_ON_NOT_ASSESSED, else fail)",
    )
    scan.add_argument(
        "--severity-source",
        type=_severity_order,
        metavar="LIST",
        help="the order severity sources are trusted in, first that rates a finding wins, from vendor, cvss, cna,"
        " cisa-adp and nvd (default $ACRGUARD_SEVERITY_SOURCES, else vendor,cvss,cna,cisa-adp,nvd)",
    )


def _severity_order(text: str) -> tuple[str, ...]:
    try:
        return parse_severity_order(text)
    except SeverityOrderError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_scan(args: argparse.Namespace, settings: Settings) -> int:
    from scanner.assess.image_health import gate_fails
    from scanner.cli.options import EXIT_OK, incomplete_exit, output_limit, read_inventories, write_output
    from scanner.policy.remediation import make_environment
    from scanner.policy.rules import load_rules
    from scanner.service.policy import build_policy
    from scanner.vulndb.location import open_scan_database

    limit = output_limit(args, settings)
    rules = load_rules(args.rules) if args.rules else load_rules(missing_ok=True)
    today = date.today()
    policy = build_policy(rules, make_environment(args.templates), today=today)
    db = open_scan_database(args.db or settings.db)

    results = [
        assess(
            inv,
            db,
            apply_rules=policy.apply_rules,
            attach_remediation=policy.attach_remediation,
            summarise_remediation=policy.summarise_remediation,
            severity_order=args.severity_source or settings.severity_sources,
        )
        for inv in read_inventories(args, settings)
    ]
    reports = rule_reports(rules, results, today)
    write_output(args.output, _render(args.format, results, args.all_platforms, limit, reports))
    for report in reports:
        sys.stderr.write(f"acrguard: warning: {report.message}\n")
    threshold: Severity | None = args.fail_on
    failed = any(gate_fails(r.findings, threshold) for r in results)
    on_not_assessed: IncompletePolicy = args.on_not_assessed or settings.gate_on_not_assessed
    if not_assessed_fails(results, threshold, on_not_assessed):
        failed = True
    return incomplete_exit([r.inventory for r in results], EXIT_GATE_FAILED if failed else EXIT_OK)


def not_assessed_fails(results: Sequence[Assessment], threshold: Severity | None, policy: IncompletePolicy) -> bool:
    """Says each NotAssessed image in one line on stderr; True when the gate (`--fail-on`) fails them: the
    policy `fail`. `findings` leaves them to the findings (a NotAssessed image has no active one), `skip` too."""
    unassessed = [r for r in results if r.health == "NotAssessed"]
    for r in unassessed:
        sys.stderr.write(f"acrguard: {r.inventory.image.reference}: not assessed: {_one_line(r.reason)}\n")
    return bool(unassessed) and threshold is not None and policy == "fail"


def rule_reports(rules: Sequence[Rule], results: Sequence[Assessment], today: date) -> list[RuleReport]:
    """Expired rules, rules that matched no finding of any scanned platform, and rules hiding KEV findings.
    Only a Healthy or Unhealthy image can show a rule stale: finding nothing in an Incomplete, NotAssessed,
    Unsupported or NotApplicable one proves nothing."""
    from scanner.policy.image_context import ImageContext
    from scanner.policy.rule_reports import Scanned, scan_reports

    scanned = [
        Scanned(r.findings, ImageContext.from_inventory(r.inventory), r.health in ("Healthy", "Unhealthy"))
        for r in results
    ]
    return scan_reports(rules, scanned, today)


def _one_line(text: str, limit: int = 300) -> str:
    """The reason names the image's ecosystems, and an os-release ID is the image's own text: one line, no
    control characters (a terminal must not act on them), bounded."""
    from scanner.report.table import clean

    line = clean(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _render(fmt: str, results: list[Assessment], as_list: bool, limit: int, reports: Sequence[RuleReport] = ()) -> str:
    from scanner.report.bounded_output import bounded_json, bounded_text

    if fmt == "json":
        from scanner.report.scan_json import scan_dict

        docs = [
            scan_dict(r.inventory, list(r.findings), r.health, r.reason, r.summary, r.remediation_summary, r.coverage)
            for r in results
        ]
        for doc in docs:  # expired and stale rules concern the whole scan, so every platform lists them
            doc["rule_reports"] = [report.document() for report in reports]
        return bounded_json(docs if as_list else docs[0], limit, "the scan report")
    if fmt == "sarif":
        from scanner.report.sarif import to_sarif

        findings = [f for r in results for f in r.findings]
        incomplete = [r.inventory.reason for r in results if r.inventory.status == "Incomplete"]
        not_assessed = [r.reason for r in results if r.health == "NotAssessed"]
        coverage = tuple(dict.fromkeys(c for r in results for c in r.coverage))  # platforms share ecosystems
        sarif = to_sarif(
            findings,
            results[0].inventory.image.reference,
            __version__,
            incomplete,
            coverage=coverage,
            not_assessed=not_assessed,
        )
        return bounded_json(sarif, limit, "the SARIF report")
    return bounded_text(_table(results), limit, "the scan report")


def _table(results: list[Assessment]) -> str:
    from scanner.report.table import clean, render_coverage, render_table

    parts = []
    for r in results:
        image = r.inventory.image
        # The reason may name an ecosystem the image itself spelled (an os-release ID): no control characters.
        head = clean(
            f"{image.reference} ({image.platform or 'rootfs'}): {r.health}" + (f" — {r.reason}" if r.reason else "")
        )
        covered = render_coverage(r.coverage)
        block = head + "\n" + (covered + "\n" if covered else "")
        # The remediation summary has its own top actions (with commands): the table's would repeat them.
        table = render_table(list(r.findings), actions=not r.remediation_summary) if r.findings else "no findings"
        parts.append(block + table)
        if r.remediation_summary:
            parts.append(r.remediation_summary.rstrip())
    return "\n\n".join(parts)
