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
from scanner.limits import Limits
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
    sbom.add_argument("image", help="docker-archive:PATH, oci-archive:PATH, oci:DIR[:REF], dir:PATH or HOST/REPO:TAG")
    sbom.add_argument("--format", choices=["json", "cyclonedx-json"], default="json")
    sbom.add_argument("--output", "-o", help="write to this file instead of stdout")
    sbom.add_argument("--platform", help="OS/ARCH[/VARIANT] to pick from a multi-arch index (default linux/amd64)")
    sbom.add_argument("--all-platforms", action="store_true", help="inventory every platform of an index")
    sbom.add_argument("--insecure", action="store_true", help="plain HTTP to the registry")
    sbom.add_argument("--ca-file", help="CA bundle for a registry with a private CA")
    sbom.add_argument("--username", help="registry user (or ACRGUARD_REGISTRY_USERNAME / docker config)")
    sbom.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")
    sbom.add_argument("--docker-config", help="docker config.json with registry credentials")
    sbom.add_argument("--scratch-dir", help="where large captured files are spilled (default: system temp)")
    sbom.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE", help="override a safety limit")
    sbom.add_argument("--progress", choices=["auto", "always", "never"], default="auto")
    return parser


def _options(args: argparse.Namespace) -> ScanOptions:
    pairs: dict[str, str] = {}
    for item in args.limit:
        name, sep, value = item.partition("=")
        if not sep:
            raise AcrguardError(f"--limit '{item}': expected NAME=VALUE")
        pairs[name] = value
    limits = Limits.from_environment().with_overrides(pairs)
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
    options = _options(args)
    enabled = {"auto": None, "always": True, "never": False}[args.progress]
    with progress_hook(enabled) as hook:
        inventories = inventory(args.image, options, progress=hook)
    if args.format == "cyclonedx-json":
        from scanner.output.cyclonedx_sbom import to_cyclonedx  # heavy import, only when asked for

        text = "\n".join(to_cyclonedx(inv) for inv in inventories)
    else:
        docs = [inventory_dict(inv) for inv in inventories]
        text = json.dumps(docs if args.all_platforms else docs[0], indent=2)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sbom":
            return _run_sbom(args)
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
