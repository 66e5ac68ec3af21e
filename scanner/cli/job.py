"""`acrguard job IMAGE`: the sandboxed scan job. Fetch here (network, credentials), parse in a sandbox,
print the checked inventory JSON (the document `acrguard sbom --format json` prints)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from scanner.cli.options import EXIT_ERROR, EXIT_OK
from scanner.model.errors import AcrguardError
from scanner.model.limits import option_pairs
from scanner.model.settings import Settings
from scanner.sandbox.errors import JobError
from scanner.sandbox.runner import JobLimits
from scanner.sandbox.runners import RUNNERS, limit_args, make_runner


def add_job_parser(sub: Any) -> None:
    from scanner.cli.options import add_image_arguments

    job = sub.add_parser("job", help="inventory an image in a sandbox (fetch here, parse isolated)")
    add_image_arguments(job)
    job.add_argument("--runner", choices=RUNNERS, default="bubblewrap", help="where the parse runs")
    job.add_argument(
        "--job-limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"override a sandbox limit ({', '.join(JobLimits.names())}; or ACRGUARD_JOB_LIMIT_<NAME>)",
    )
    job.add_argument("--docker-image", default="acrguard-job:latest", help="scanner image for --runner docker")


def run_job(args: argparse.Namespace, settings: Settings) -> int:
    from scanner.cli.options import image_options, write_output
    from scanner.sandbox.job import run_scan_job

    try:
        if args.all_platforms:
            raise JobError("job: one image per job; --all-platforms is not supported (use --platform)")
        options = image_options(args, settings)
        limits = JobLimits.from_settings(settings).with_overrides(option_pairs(args.job_limit, "--job-limit", JobError))
        runner = make_runner(args.runner, limit_args(options.limits), args.docker_image)
        doc = run_scan_job(args.image, options, runner, limits)
        write_output(args.output, json.dumps(doc, indent=2))
    except AcrguardError as exc:
        sys.stderr.write(f"acrguard: {exc}\n")
        return EXIT_ERROR
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from scanner.cli.options import Parser

    parser = Parser(prog="acrguard")
    add_job_parser(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_environ()
    except AcrguardError as exc:
        sys.stderr.write(f"acrguard: {exc}\n")
        return EXIT_ERROR
    return run_job(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
