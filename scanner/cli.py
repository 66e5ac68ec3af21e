"""`acrguard` command line: a thin shell over scanner.inventory. Errors: one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from scanner import __version__
from scanner.errors import AcrguardError
from scanner.image.manifest import Platform
from scanner.image.registry_options import RegistryOptions
from scanner.inventory import ScanOptions, inventory
from scanner.limits import Limits, option_pairs
from scanner.models import Inventory
from scanner.output.inventory_json import inventory_dict
from scanner.progress import progress_hook

EXIT_OK, EXIT_ERROR = 0, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"acrguard: {message}\n")
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="acrguard", description="Vulnerability assessment for container registries.")
    parser.add_argument("--version", action="version", version=f"acrguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sbom = sub.add_parser("sbom", help="inventory the packages in an image (SBOM)")
    add_image_arguments(sbom)
    sbom.add_argument("--format", choices=["json", "cyclonedx-json"], default="json")
    from scanner.scan_cli import add_scan_parser

    add_scan_parser(sub)
    from scanner.db_cli import add_db_parser

    add_db_parser(sub)
    from scanner.job_cli import add_job_parser

    add_job_parser(sub)
    from scanner.serve_cli import add_serve_parser

    add_serve_parser(sub)
    from scanner.worker_cli import add_worker_parser

    add_worker_parser(sub)
    return parser


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments every command that reads an image shares (`sbom`, `scan`)."""
    parser.add_argument("image", help="docker-archive:PATH, oci-archive:PATH, oci:DIR[:REF], dir:PATH or HOST/REPO:TAG")
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")
    parser.add_argument("--platform", help="OS/ARCH[/VARIANT] to pick from a multi-arch index (default linux/amd64)")
    parser.add_argument("--all-platforms", action="store_true", help="every platform of an index")
    parser.add_argument("--insecure", action="store_true", help="plain HTTP to the registry")
    parser.add_argument("--ca-file", help="CA bundle for a registry with a private CA")
    parser.add_argument("--username", help="registry user (or ACRGUARD_REGISTRY_USERNAME / docker config)")
    parser.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")
    parser.add_argument("--docker-config", help="docker config.json with registry credentials")
    parser.add_argument("--scratch-dir", help="where large captured files are spilled (default: system temp)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE", help="override a safety limit")
    parser.add_argument("--progress", choices=["auto", "always", "never"], default="auto")


def image_options(args: argparse.Namespace) -> ScanOptions:
    limits = Limits.from_environment().with_overrides(option_pairs(args.limit, "--limit"))
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    registry = RegistryOptions(
        insecure=args.insecure,
        ca_file=args.ca_file,
        username=args.username,
        password=password,
        docker_config=args.docker_config,
    )
    platform = Platform.parse(args.platform) if args.platform else None
    return ScanOptions(limits, registry, platform, args.all_platforms, args.scratch_dir)


def _run_sbom(args: argparse.Namespace) -> int:
    inventories = read_inventories(args)
    if args.format == "cyclonedx-json":
        from scanner.output.cyclonedx_sbom import to_cyclonedx  # heavy import, only when asked for

        text = "\n".join(to_cyclonedx(inv) for inv in inventories)
    else:
        docs = [inventory_dict(inv) for inv in inventories]
        text = json.dumps(docs if args.all_platforms else docs[0], indent=2)
    write_output(args.output, text)
    return EXIT_OK


def read_inventories(args: argparse.Namespace) -> list[Inventory]:
    options = image_options(args)
    enabled = {"auto": None, "always": True, "never": False}[args.progress]
    with progress_hook(enabled) as hook:
        return inventory(args.image, options, progress=hook)


def write_output(path: str | None, text: str) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sbom":
            return _run_sbom(args)
        if args.command == "scan":
            from scanner.scan_cli import run_scan

            return run_scan(args)
        if args.command == "db":
            from scanner.db_cli import run_db

            return run_db(args)
        if args.command == "job":
            from scanner.job_cli import run_job

            return run_job(args)
        if args.command == "serve":
            from scanner.serve_cli import run_serve

            return run_serve(args)
        if args.command == "worker":
            from scanner.worker_cli import run_worker

            return run_worker(args)
    except AcrguardError as exc:
        sys.stderr.write(f"acrguard: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("acrguard: interrupted\n")
        return 130
    except (OSError, MemoryError) as exc:
        # Host-side failures (disk full, permission) are not image problems but still one line.
        sys.stderr.write(f"acrguard: {type(exc).__name__}: {exc}\n")
        return EXIT_ERROR
    return EXIT_ERROR
