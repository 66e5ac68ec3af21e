"""`acrguard` command line: a thin shell over scanner.inventory.build. Errors: one line on stderr, exit 2.
An Incomplete inventory (`sbom`, `scan`) is written, then said in one line on stderr, and exits 2 too: a
partial SBOM or scan must not pass for a whole one in a pipeline.

The settings are read from the environment here, once, and passed to the subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from scanner import __version__
from scanner.cli.options import (
    EXIT_ERROR,
    EXIT_OK,
    Parser,
    add_image_arguments,
    incomplete_exit,
    output_limit,
    read_inventories,
    write_output,
)
from scanner.model.errors import AcrguardError, os_error
from scanner.model.settings import Settings
from scanner.report.inventory_json import inventory_dict


def _add_scan(sub: Any) -> None:
    from scanner.cli.scan import add_scan_parser

    add_scan_parser(sub)


def _add_db(sub: Any) -> None:
    from scanner.cli.db import add_db_parser

    add_db_parser(sub)


def _add_job(sub: Any) -> None:
    from scanner.cli.job import add_job_parser

    add_job_parser(sub)


def _add_serve(sub: Any) -> None:
    from scanner.cli.serve import add_serve_parser

    add_serve_parser(sub)


def _add_worker(sub: Any) -> None:
    from scanner.cli.worker import add_worker_parser

    add_worker_parser(sub)


# Each subcommand's parser is built from its own module; importing them all costs every run a tenth of a
# second (the database commands pull in the feed importers), so a run builds only the one it executes.
_SUBCOMMANDS: dict[str, Callable[[Any], None]] = {
    "scan": _add_scan,
    "db": _add_db,
    "job": _add_job,
    "serve": _add_serve,
    "worker": _add_worker,
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `acrguard` parser; given the subcommand about to run, the others are left as bare names."""
    parser = Parser(prog="acrguard", description="Vulnerability assessment for container registries.")
    parser.add_argument("--version", action="version", version=f"acrguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    sbom = sub.add_parser("sbom", help="inventory the packages in an image (SBOM)")
    add_image_arguments(sbom)
    sbom.add_argument("--format", choices=["json", "cyclonedx-json"], default="json")
    for name, add in _SUBCOMMANDS.items():
        if command is None or command == name:
            add(sub)
        else:
            sub.add_parser(name)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` runs (its first word not an option), if it is one acrguard has."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first == "sbom" or first in _SUBCOMMANDS else None


def _run_sbom(args: argparse.Namespace, settings: Settings) -> int:
    from scanner.report.bounded_output import bounded_json, bounded_text

    limit = output_limit(args, settings)
    if args.format == "cyclonedx-json":
        # Imported on a thread while the image is read: the layers' digests are computed outside the
        # interpreter lock, and the import takes the time the reading thread would spend waiting for them.
        threading.Thread(target=importlib.import_module, args=("scanner.report.cyclonedx_sbom",), daemon=True).start()
    inventories = read_inventories(args, settings)
    if args.format == "cyclonedx-json":
        from scanner.report.cyclonedx_sbom import to_cyclonedx  # heavy import, only when asked for

        text = bounded_text("\n".join(to_cyclonedx(inv) for inv in inventories), limit, "the SBOM")
    else:
        docs = [inventory_dict(inv) for inv in inventories]
        text = bounded_json(docs if args.all_platforms else docs[0], limit, "the SBOM")
    write_output(args.output, text)
    return incomplete_exit(inventories, EXIT_OK)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command(words))
    if not words:
        # No command at all: what acrguard does and how to call it, not just "a command is required".
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_environ()
        if args.command == "sbom":
            return _run_sbom(args, settings)
        if args.command == "scan":
            from scanner.cli.scan import run_scan

            return run_scan(args, settings)
        if args.command == "db":
            from scanner.cli.db import run_db

            return run_db(args, settings)
        if args.command == "job":
            from scanner.cli.job import run_job

            return run_job(args, settings)
        if args.command == "serve":
            from scanner.cli.serve import run_serve

            return run_serve(args, settings)
        if args.command == "worker":
            from scanner.cli.worker import run_worker

            return run_worker(args, settings)
    except AcrguardError as exc:
        sys.stderr.write(f"acrguard: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("acrguard: interrupted\n")
        return 130
    except MemoryError:
        sys.stderr.write("acrguard: out of memory\n")
        return EXIT_ERROR
    except OSError as exc:
        # Host-side failures (disk full, permission, a missing directory) are not image problems: what failed
        # and on which file, in words, without the exception's class name.
        sys.stderr.write(f"acrguard: {os_error(exc)}\n")
        return EXIT_ERROR
    return EXIT_ERROR
