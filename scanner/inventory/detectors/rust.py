"""Rust crates (OSV ecosystem "crates.io"): `Cargo.lock` files and programs built with `cargo auditable`.

`Cargo.lock` (any format: v1/v2 without a `version` key, `version = 3`, `version = 4`), anywhere in the
image except inside Cargo's own download caches (`$CARGO_HOME/registry`, `$CARGO_HOME/git`, with
`CARGO_HOME` `~/.cargo` or the official images' `/usr/local/cargo`) and Debian's vendored crate sources
(`/usr/share/cargo/registry`): there every downloaded crate's sources may carry
the crate's *own* lockfile, which says what its authors built with, not what anything in the image is.
Each `[[package]]` whose `source` is the crates.io index (`registry+https://github.com/rust-lang/
crates.io-index`, or the sparse `sparse+https://index.crates.io/`) is reported, evidence "lockfile".
Not reported, by design:

- packages without a `source`: the workspace's own crates and path dependencies, the application's code;
- `git+…` sources: a crate built from a repository, whose code need not be any crates.io release, so
  crates.io advisories do not apply by version;
- other registries (`registry+https://my-registry/…`): not crates.io, whatever the crate is called.

Programs built with `cargo auditable` carry a `.dep-v0` ELF section: zlib-compressed JSON,
`{"packages": [{"name", "version", "source", "kind", "dependencies", "root"}]}`. Packages whose
`source` is `crates.io` are reported, evidence "binary", except `"kind": "build"` ones (build-time
dependencies: build scripts run on the build machine, their code is not in the program). Binaries are
found as the Go detector finds Go programs (`golang.may_be_program`: a name without a dot anywhere outside
package databases, shared data, include and source trees and language package trees). Only the section
headers and the section itself are read; ELF files without the section (C programs, Go programs, Rust
programs built without `cargo auditable`) are skipped silently.

Bounds: a lockfile over `max_package_db_bytes` or with more than `MAX_LOCK_ENTRIES` packages, a section
whose decompressed JSON is over `max_package_db_bytes`, and more packages than the image may hold are
not read past the bound and make the inventory Incomplete; so does a lockfile or a section that cannot
be parsed at all (not TOML, not zlib, not JSON). An entry without a usable name or version is a warning.

Pure: parses the bytes handed over in a FileSet, never touches the filesystem.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from scanner.ecosystems.languages import CRATES_IO
from scanner.image.tree import ByteView
from scanner.inventory.detectors.base import (
    BoundExceeded,
    DetectContext,
    Detector,
    DetectorError,
    Extraction,
    FileSet,
    language_package,
)

# The same binary directories and section-header reader as the Go detector: one rule for where programs are.
from scanner.inventory.detectors.golang import ELF_MAGIC, elf_section, may_be_program
from scanner.model.types import Evidence, RawPackage, Warning_

_LOCKFILE = "/Cargo.lock"
# Directories whose Cargo.lock files belong to downloaded crates' sources, not to anything built here.
# CARGO_HOME is ~/.cargo, or /usr/local/cargo in the official Rust images; Debian vendors crates under
# /usr/share/cargo/registry.
_CRATE_CACHES = ("/.cargo/registry/", "/.cargo/git/", "/cargo/registry/", "/cargo/git/")
_CRATES_IO_SOURCES = frozenset(
    {"registry+https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/"}
)
_ELF = ELF_MAGIC
_SECTION = b".dep-v0"
# Real lockfiles hold a few thousand packages; a hostile one is not read past this.
MAX_LOCK_ENTRIES = 100_000
# crates.io's own limit on a crate name is 64 characters; versions get generous room.
_MAX_NAME = 64
_MAX_VERSION = 128


class RustDetector(Detector):
    name = "rust"
    version = 1
    group = "language"
    per_file = True
    # A program or lockfile an OS package owns is that package, assessed through the distribution.
    skip_os_owned = True

    def required(self, path: str) -> bool:
        # Hot path (every file of every layer): string tests only.
        if path.endswith(_LOCKFILE):
            return not any(cache in path for cache in _CRATE_CACHES)
        return may_be_program(path)

    def magic_of(self, path: str) -> bytes:
        # Programs are kept only when they are ELF files; lockfiles whatever they hold.
        return b"" if path.endswith(_LOCKFILE) else ELF_MAGIC

    def unread_matters(self, files: FileSet, path: str) -> bool:
        # A lockfile always; a file in a binary directory only if it is ELF (it may be an auditable program).
        return path.endswith(_LOCKFILE) or files.head(path, len(_ELF)) == _ELF

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()

        # A lockfile is bounded like any package database; a program only by the capture limit, as Go's are.
        def read(path: str) -> ByteView:
            return ctx.read_database(files, path) if path.endswith(_LOCKFILE) else files.view(path)

        for path, data in self.read_each(files, out, read):
            try:
                if path.endswith(_LOCKFILE):
                    packages = list(_from_lockfile(path, bytes(data), out.warnings))
                elif data[: len(_ELF)] == _ELF:
                    packages = list(_from_binary(path, data, out.warnings, ctx.limits.max_package_db_bytes))
                else:
                    continue  # scripts, text: not a program, nothing to say
            except DetectorError as err:
                out.bound(err.where, err.message)
                continue
            for package in packages:
                if not out.add_package(package, ctx, path):
                    return out
        return out


def _package(name: str, version: str, path: str, evidence: Evidence, metadata: list[tuple[str, str]]) -> RawPackage:
    return language_package(CRATES_IO, name, version, path, metadata, evidence=evidence)


def _usable(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and not any(c.isspace() for c in value)


def _from_lockfile(path: str, data: bytes, warnings: list[Warning_]) -> Iterator[RawPackage]:
    try:
        import tomllib  # imported when a lockfile is read: most images have none, and every scan loads the detectors

        lock = tomllib.loads(data.decode("utf-8"))
    except RecursionError:
        raise BoundExceeded(path, "TOML nested deeper than the parser's recursion limit; not read") from None
    except ValueError as err:  # TOMLDecodeError and UnicodeDecodeError both derive from it
        raise DetectorError(path, f"not a Cargo.lock ({' '.join(str(err).split())}); not read") from None
    lock_version = lock.get("version", 1)
    if lock_version not in (1, 2, 3, 4):
        warnings.append(Warning_(path, f"unknown Cargo.lock version {lock_version!r}; read as best we can"))
    entries = lock.get("package", [])
    if not isinstance(entries, list):
        raise DetectorError(path, "`package` is not an array of tables; not read")
    if len(entries) > MAX_LOCK_ENTRIES:
        raise BoundExceeded(path, f"{len(entries)} packages, over the limit of {MAX_LOCK_ENTRIES}; not read")
    # Only crates.io's: not the workspace's own crates, path and git dependencies, other registries.
    for name, version in _crates(entries, path, warnings, "[[package]] entry is not a table", _from_crates_io):
        yield _package(name, version, path, "lockfile", [])


def _from_crates_io(entry: dict[str, Any]) -> bool:
    return entry.get("source") in _CRATES_IO_SOURCES


def _crates(
    entries: list[Any], path: str, warnings: list[Warning_], not_an_entry: str, wanted: Callable[[dict[str, Any]], bool]
) -> Iterator[tuple[str, str]]:
    """Each distinct (name, version) of the entries `wanted` keeps; a malformed entry is a warning and skipped."""
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            warnings.append(Warning_(path, f"a {not_an_entry}; skipped"))
            continue
        named = _name_version(entry, path, warnings)
        if named is not None and wanted(entry) and named not in seen:
            seen.add(named)
            yield named


def _name_version(entry: dict[str, Any], path: str, warnings: list[Warning_]) -> tuple[str, str] | None:
    """A crate entry's name and version (Cargo.lock and cargo auditable write them alike), or None with a warning."""
    name, version = entry.get("name"), entry.get("version")
    if (
        isinstance(name, str)
        and isinstance(version, str)
        and _usable(name, _MAX_NAME)
        and _usable(version, _MAX_VERSION)
    ):
        return name, version
    warnings.append(Warning_(path, f"package {name!r} has no valid name or version ({version!r}); skipped"))
    return None


def _from_binary(path: str, data: ByteView, warnings: list[Warning_], limit: int) -> Iterator[RawPackage]:
    section = elf_section(data, _SECTION)
    if section is None or section[1] <= 0:
        return  # no section headers, or no .dep-v0: not an auditable program
    offset, size = section
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data[offset : offset + size], limit + 1)
    except zlib.error as err:
        raise DetectorError(path, f".dep-v0 section is not zlib data ({err}); not read") from None
    if len(text) > limit or inflater.unconsumed_tail:
        raise BoundExceeded(
            path, f"cargo auditable data over the limit of {limit} bytes decompressed (limit max_package_db_bytes)"
        )
    try:
        document: Any = json.loads(text)
    except RecursionError:
        raise BoundExceeded(path, "cargo auditable JSON nested too deep; not read") from None
    except ValueError as err:
        raise DetectorError(path, f"cargo auditable data is not JSON ({err}); not read") from None
    entries = document.get("packages") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise DetectorError(path, "cargo auditable data has no `packages` array; not read")
    # Not the program's own crates, path/git/other-registry crates, or build-time dependencies.
    for name, version in _crates(entries, path, warnings, "cargo auditable package is not an object", _linked_in):
        yield _package(name, version, path, "binary", [])


def _linked_in(entry: dict[str, Any]) -> bool:
    return entry.get("source") == "crates.io" and entry.get("kind") != "build"
