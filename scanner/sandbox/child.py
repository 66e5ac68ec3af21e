"""The sandboxed child: `python -m scanner.sandbox.child IMAGE [--limit NAME=VALUE]...`.

Prints the image's inventory in `scanner.model.codec`'s exact form (one JSON line), not the user-facing
inventory document: that one drops package metadata, layer sizes and media types, so an inventory rebuilt
from it would not re-match like the original. The trusted side checks every key (`scanner.sandbox.output`).
Errors are one line on stderr starting with `acrguard:`, as the CLI's are, because the parent passes on the
child's last line.

With a segment file beside the layout (`scanner.sandbox.segment`, the layer-prefix cache) the child starts over
a restored prefix state and may print, instead of the inventory, the prefix state at a boundary (bytes starting
with `scanner.inventory.prefix_state.MAGIC`), which the parent checks before keeping it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanner.inventory.detectors.plugins import DetectorRegistry
    from scanner.inventory.prefix_state import Decoded

EXIT_OK, EXIT_ERROR = 0, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acrguard-job-child")
    parser.add_argument("image", help="the scratch OCI layout the trusted side wrote, e.g. oci:/input")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE", help="an image safety limit")
    parser.add_argument("--wait", action="store_true", help="start up, then wait for `go` on stdin (a warm child)")
    args = parser.parse_args(argv)
    # Imported after parsing: a usage error should not pay for the detectors' imports.
    from scanner.inventory.build import ScanOptions, inventory, inventory_or_state
    from scanner.inventory.prefix_state import PrefixContentMissing
    from scanner.model.codec import inventory_to_dict
    from scanner.model.errors import AcrguardError
    from scanner.model.limits import Limits, option_pairs
    from scanner.sandbox.segment import EXIT_PREFIX_MISSING, read_segment

    preloaded: tuple[bytes, Decoded] | None = None
    if args.wait:
        # Started ahead of its job (`scanner.sandbox.warm`): everything above is imported, and the state the
        # job will probably start from is decoded; the layout arrives with the go. Anything else (the parent
        # closing the pipe) means the child is not needed.
        from scanner.inventory.detectors.plugins import default_registry

        preloaded = _preloaded(args.image, args.limit, default_registry())
        if sys.stdin.buffer.readline() != b"go\n":
            return EXIT_OK
    try:
        # The limits come as options: the child's environment is an allow-list that carries no settings.
        limits = Limits().with_overrides(option_pairs(args.limit, "--limit"))
        # The layout is the job's: its trusted half checked each blob against its digest as it wrote it.
        options = ScanOptions(limits=limits, blobs_verified=True)
        segment = read_segment(args.image)
        if segment is not None and preloaded is not None and segment.state == preloaded[0]:
            segment = dataclasses.replace(segment, decoded=preloaded[1])
        if segment is None:
            found = inventory(args.image, options)[0]
        else:
            result = inventory_or_state(args.image, options, segment)
            if isinstance(result, bytes):
                sys.stdout.buffer.write(result)
                return EXIT_OK
            found = result
        sys.stdout.write(json.dumps(inventory_to_dict(found), separators=(",", ":")) + "\n")
    except PrefixContentMissing as exc:
        sys.stderr.write(f"acrguard: prefix state: {exc}\n")
        return EXIT_PREFIX_MISSING
    except AcrguardError as exc:
        sys.stderr.write(f"acrguard: {exc}\n")
        return EXIT_ERROR
    except (OSError, MemoryError) as exc:
        # The parent classifies MemoryError and "File too large" from this line as limits.
        sys.stderr.write(f"acrguard: {type(exc).__name__}: {exc}\n")
        return EXIT_ERROR
    return EXIT_OK


def _preloaded(image: str, limit_options: list[str], registry: DetectorRegistry) -> tuple[bytes, Decoded] | None:
    """The state a warm child was given ahead, decoded; None if there is none or it does not decode (the job
    then decodes its own state, and says what is wrong with it)."""
    from scanner.image.tree_state import StateError
    from scanner.inventory import prefix_state
    from scanner.model.errors import AcrguardError
    from scanner.model.limits import Limits, option_pairs
    from scanner.sandbox.segment import read_preload

    data = read_preload(image)
    if data is None:
        return None
    try:
        limits = Limits().with_overrides(option_pairs(limit_options, "--limit"))
        return data, prefix_state.build(prefix_state.decode(data, registry, limits.max_symlink_depth))
    except (StateError, AcrguardError, OSError):
        return None


if __name__ == "__main__":
    status = main()
    # Single-use: the output is complete once flushed. Tearing the interpreter down (freeing every module
    # and object) kept the pipe open about 18 ms longer, on the push-to-findings path of every scan.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
