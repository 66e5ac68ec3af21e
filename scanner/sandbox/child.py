"""The sandboxed child: `python -m scanner.sandbox.child IMAGE [--limit NAME=VALUE]...`.

Prints the image's inventory in `scanner.model.codec`'s exact form (one JSON line), not the user-facing
inventory document: that one drops package metadata, layer sizes and media types, so an inventory rebuilt
from it would not re-match like the original. The trusted side checks every key (`scanner.sandbox.output`).
Errors are one line on stderr starting with `acrguard:`, as the CLI's are, because the parent passes on the
child's last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_ERROR = 0, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acrguard-job-child")
    parser.add_argument("image", help="the scratch OCI layout the trusted side wrote, e.g. oci:/input")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE", help="an image safety limit")
    args = parser.parse_args(argv)
    # Imported after parsing: a usage error should not pay for the detectors' imports.
    from scanner.inventory.build import ScanOptions, inventory
    from scanner.model.codec import inventory_to_dict
    from scanner.model.errors import AcrguardError
    from scanner.model.limits import Limits, option_pairs

    try:
        # The limits come as options: the child's environment is an allow-list that carries no settings.
        limits = Limits().with_overrides(option_pairs(args.limit, "--limit"))
        found = inventory(args.image, ScanOptions(limits=limits))
        sys.stdout.write(json.dumps(inventory_to_dict(found[0]), separators=(",", ":")) + "\n")
    except AcrguardError as exc:
        sys.stderr.write(f"acrguard: {exc}\n")
        return EXIT_ERROR
    except (OSError, MemoryError) as exc:
        # The parent classifies MemoryError and "File too large" from this line as limits.
        sys.stderr.write(f"acrguard: {type(exc).__name__}: {exc}\n")
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
