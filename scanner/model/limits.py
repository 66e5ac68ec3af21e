"""Bounds applied to hostile image content. Every default is documented in README.md.

Each can be overridden on the command line (`--limit NAME=VALUE`) or with the environment variable
`ACRGUARD_LIMIT_<NAME>` (upper case, read by `scanner.model.settings`), e.g.
`ACRGUARD_LIMIT_MAX_TOTAL_BYTES=10737418240`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Self, cast

from scanner.model.errors import AcrguardError

GiB = 1024**3
MiB = 1024**2


class Bounds:
    """What every set of bounds shares (a frozen dataclass of positive integers): its names, and NAME=VALUE
    overrides checked field by field, wrong ones raising the set's own error."""

    WHAT: ClassVar[str] = "limit"
    ERROR: ClassVar[type[AcrguardError]] = AcrguardError

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cast(Any, cls))]

    def with_overrides(self, pairs: Mapping[str, str]) -> Self:
        """Apply NAME=VALUE overrides; an unknown name or a non-positive integer is an error."""
        return cast(Self, replace(cast(Any, self), **checked_overrides(pairs, self.names(), self.WHAT, self.ERROR)))


@dataclass(frozen=True)
class Limits(Bounds):
    # Uncompressed bytes read across all layers of one image (decompression bombs).
    max_total_bytes: int = 32 * GiB
    # Tar members across all layers of one image.
    max_members: int = 2_000_000
    # Size of one file whose content a detector asked for (larger ones are skipped with a warning).
    max_file_size: int = 512 * MiB
    # Total size of all captured file contents held at once (memory plus scratch spill).
    max_captured_bytes: int = 2 * GiB
    # Captured files larger than this are spilled to the scratch directory instead of memory.
    spill_threshold: int = 4 * MiB
    # Compressed size of one blob (layer, config) as declared or as read.
    max_blob_size: int = 32 * GiB
    # Size of a manifest, index or config document.
    max_document_size: int = 8 * MiB
    # Symlinks followed while resolving one path (Linux uses 40).
    max_symlink_depth: int = 40
    # Length of one member path and of one link target.
    max_path_length: int = 4096
    # Layers in one image.
    max_layers: int = 512
    # Images (platforms) inventoried from one index.
    max_platforms: int = 64
    # Size of one package database or package metadata file a detector parses (dpkg status, status.d entry or
    # file list, apk installed, an rpm database, Python METADATA, npm package.json or lockfile, a Go build
    # info); a larger one is not parsed and the inventory is Incomplete.
    max_package_db_bytes: int = 64 * MiB
    # Packages in one image, all detectors together; past it the inventory is Incomplete.
    max_packages: int = 100_000
    # File paths one OS package database lists (what marks language packages the OS installed).
    max_owned_files: int = 1_000_000
    # Bytes of one document `acrguard sbom` or `scan` writes (JSON, SARIF, CycloneDX, table).
    max_output_bytes: int = 256 * MiB


def checked_overrides(
    pairs: Mapping[str, str], names: Sequence[str], what: str, error: type[AcrguardError]
) -> dict[str, int]:
    """NAME=VALUE pairs as positive integers keyed by field name (`max-layers` is `max_layers`); an
    unknown name or a bad value is `error`, one line naming it."""
    changes: dict[str, int] = {}
    for name, raw in pairs.items():
        key = name.strip().lower().replace("-", "_")
        if key not in names:
            raise error(f"unknown {what} '{name}' (known: {', '.join(names)})")
        try:
            value = int(raw)
        except ValueError:
            raise error(f"{what} {key}: '{raw}' is not a whole number") from None
        if value <= 0:
            raise error(f"{what} {key}: must be positive, got {value}")
        changes[key] = value
    return changes


def option_pairs(items: Sequence[str], option: str, error: type[AcrguardError] = AcrguardError) -> dict[str, str]:
    """Repeated `OPTION NAME=VALUE` arguments as a mapping for `with_overrides` (the last of a name wins)."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise error(f"{option} '{item}': expected NAME=VALUE")
        pairs[name] = value
    return pairs
