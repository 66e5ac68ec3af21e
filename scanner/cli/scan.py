"""`acrguard scan`: inventory, match, apply rules, render remediation, gate. Exit 0 pass, 1 fail, 2 error."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from scanner import __version__
from scanner.assess.assessment import Assessment, assess
from scanner.model.settings import Settings
from scanner.model.types import SEVERITY_ORDER, Severity

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


def run_scan(args: argparse.Namespace, settings: Settings) -> int:
    from scanner.assess.image_health import gate_fails
    from scanner.cli.options import EXIT_OK, read_inventories, write_output
    from scanner.policy.remediation import make_environment
    from scanner.policy.rules import load_rules
    from scanner.service.policy import build_policy
    from scanner.vulndb.location import open_scan_database

    rules = load_rules(args.rules) if args.rules else load_rules(missing_ok=True)
    policy = build_policy(rules, make_environment(args.templates), today=date.today())
    db = open_scan_database(args.db or settings.db)

    results = [
        assess(
            inv,
            db,
            apply_rules=policy.apply_rules,
            attach_remediation=policy.attach_remediation,
            summarise_remediation=policy.summarise_remediation,
        )
        for inv in read_inventories(args, settings)
    ]
    write_output(args.output, _render(args.format, results, args.all_platforms))
    threshold: Severity | None = args.fail_on
    failed = any(gate_fails(r.findings, threshold) for r in results)
    return EXIT_GATE_FAILED if failed else EXIT_OK


def _render(fmt: str, results: list[Assessment], as_list: bool) -> str:
    if fmt == "json":
        from scanner.report.scan_json import scan_dict

        docs = [
            scan_dict(r.inventory, list(r.findings), r.health, r.reason, r.summary, r.remediation_summary)
            for r in results
        ]
        return json.dumps(docs if as_list else docs[0], indent=2)
    if fmt == "sarif":
        from scanner.report.sarif import to_sarif

        findings = [f for r in results for f in r.findings]
        return json.dumps(to_sarif(findings, results[0].inventory.image.reference, __version__), indent=2)
    from scanner.report.table import render_table

    parts = []
    for r in results:
        image = r.inventory.image
        head = f"{image.reference} ({image.platform or 'rootfs'}): {r.health}" + (f" — {r.reason}" if r.reason else "")
        parts.append(head + "\n" + (render_table(list(r.findings)) if r.findings else "no findings"))
        if r.remediation_summary:
            parts.append(r.remediation_summary.rstrip())
    return "\n\n".join(parts)
