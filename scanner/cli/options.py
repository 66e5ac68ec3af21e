"""What every `acrguard` subcommand shares: the argument parser, image options, exit codes and output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from scanner.cli.progress import progress_hook
from scanner.image.manifest import Platform
from scanner.image.reference import RegistryReference, parse_reference
from scanner.image.registry_options import RegistryOptions, docker_config_file
from scanner.inventory.build import ScanOptions, inventory
from scanner.model.errors import ImageError
from scanner.model.limits import option_pairs
from scanner.model.settings import Settings
from scanner.model.types import Inventory

EXIT_INCOMPLETE = 2  # the same code as an error: a pipeline must not take a partial result for a pass

EXIT_OK, EXIT_ERROR = 0, 2


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"acrguard: {message}\n")
        raise SystemExit(EXIT_ERROR)


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments every command that reads an image shares (`sbom`, `scan`)."""
    parser.add_argument("image", help="docker-archive:PATH, oci-archive:PATH, oci:DIR[:REF], dir:PATH or HOST/REPO:TAG")
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")
    parser.add_argument("--platform", help="OS/ARCH[/VARIANT] to pick from a multi-arch index (default linux/amd64)")
    parser.add_argument("--all-platforms", action="store_true", help="every platform of an index")
    parser.add_argument("--insecure", action="store_true", help="plain HTTP to the registry")
    parser.add_argument("--ca-file", help="CA bundle for a registry with a private CA")
    parser.add_argument("--username", help="registry user (or the settings' credential for this host / docker config)")
    parser.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")
    parser.add_argument("--docker-config", help="docker config.json with registry credentials")
    parser.add_argument("--scratch-dir", help="where large captured files are spilled (default: system temp)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE", help="override a safety limit")
    parser.add_argument("--progress", choices=["auto", "always", "never"], default="auto")


def image_options(args: argparse.Namespace, settings: Settings) -> ScanOptions:
    """The image options: the command line's, over the settings' limits and registry credentials."""
    limits = settings.limits.with_overrides(option_pairs(args.limit, "--limit"))
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    registry = RegistryOptions(ca_file=args.ca_file)
    ref = parse_reference(args.image)
    if isinstance(ref, RegistryReference):
        registry = registry.with_settings(settings)
        # The command line names its registry: it may be reached, with the credential given here or the
        # settings' own for that host; the settings' other registries' credentials never go to it.
        access = registry.registries.naming(
            ref.registry,
            insecure=args.insecure,
            username=args.username,
            password=password,
            docker_config=args.docker_config,
            default_docker_config=docker_config_file(settings),
        )
        registry = replace(registry, registries=access)
    platform = Platform.parse(args.platform) if args.platform else None
    return ScanOptions(limits, registry, platform, args.all_platforms, args.scratch_dir)


def read_inventories(args: argparse.Namespace, settings: Settings) -> list[Inventory]:
    # What the user typed, checked here: the service's references come from events, never from a shell.
    if isinstance(parse_reference(args.image), RegistryReference):
        not_a_local_path(args.image)
    options = image_options(args, settings)
    enabled = {"auto": None, "always": True, "never": False}[args.progress]
    with progress_hook(enabled) as hook:
        return inventory(args.image, options, progress=hook)


_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst")


def not_a_local_path(reference: str) -> None:
    """A reference without a transport is a registry's, and would be pulled from docker.io: refuse one that names a
    local file or directory (or looks like an archive) and say which transport was probably meant."""
    path = Path(reference)
    if path.is_dir():
        raise ImageError(f"{reference} is a local directory: did you mean oci:{reference} or dir:{reference}?")
    if path.exists() or reference.lower().endswith(_ARCHIVE_SUFFIXES):
        what = "a local file" if path.exists() else "not a registry reference (no such file either)"
        raise ImageError(f"{reference} is {what}: did you mean docker-archive:{reference} or oci-archive:{reference}?")


def write_output(path: str | None, text: str) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


def output_limit(args: argparse.Namespace, settings: Settings) -> int:
    """`max_output_bytes` as the command line and the settings give it."""
    return settings.limits.with_overrides(option_pairs(args.limit, "--limit")).max_output_bytes


def incomplete_exit(inventories: Sequence[Inventory], code: int) -> int:
    """`code`, or EXIT_INCOMPLETE with the first Incomplete inventory's reason as one line on stderr."""
    incomplete = [inv for inv in inventories if inv.status == "Incomplete"]
    if not incomplete:
        return code
    first = incomplete[0]
    more = f" (and {len(incomplete) - 1} more images)" if len(incomplete) > 1 else ""
    sys.stderr.write(f"acrguard: {first.image.reference}: {first.reason}{more}\n")
    return EXIT_INCOMPLETE
