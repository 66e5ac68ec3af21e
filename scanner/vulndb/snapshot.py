"""The bundled snapshot: a small set of real advisories shipped in `scanner/data/osv-snapshot/` (see its
SOURCES.md), so that a scan finds something with no network and no `acrguard db` command run first.

The snapshot is imported into a SQLite database once and cached under `~/.cache/acrguard/` (or, when the home
directory is read-only, the system temporary directory), named by a hash of the snapshot's files and of the
database format: a new acrguard with a new snapshot builds a new file, never reads a stale one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

from scanner.vulndb.db_writer import DatabaseWriter
from scanner.vulndb.errors import FeedError
from scanner.vulndb.osv_import import Importer, SourceSpec
from scanner.vulndb.sqlite_db import FORMAT_VERSION

# The directories of the snapshot imported, each as one source (the schema next to them is not a record).
PARTS = (
    "alpine-secdb",
    "pypa-advisory-database",
    "golang-vulndb",
    "almalinux-osv",
    "ubuntu-osv",
    "debian-osv",
)
# Bump when the import changes what a database built from the same files holds (e.g. secdb conversion).
IMPORT_REVISION = 1
_PREFIX = "osv-snapshot-"


def snapshot_dir() -> Path:
    root = resources.files("scanner").joinpath("data", "osv-snapshot")
    if not isinstance(root, Path) or not root.is_dir():
        raise FeedError(f"bundled OSV snapshot not found at {root}: acrguard is installed without its data files")
    return root


def snapshot_digest(root: Path | None = None) -> str:
    """sha256 over every file's relative path and content, the database format and the import revision."""
    root = root or snapshot_dir()
    digest = hashlib.sha256(f"format={FORMAT_VERSION};import={IMPORT_REVISION}\n".encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def build_snapshot_db(target: Path, root: Path | None = None) -> None:
    """Import the snapshot into a new database at `target`, built aside and renamed into place (concurrent
    builders each rename a complete file)."""
    root = root or snapshot_dir()
    aside = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with DatabaseWriter(aside, scratch=True) as writer:
            importer = Importer(writer)
            for part in PARTS:
                importer.import_source(SourceSpec(str(root / part), f"snapshot:{part}"), target.parent)
        os.replace(aside, target)
    finally:
        aside.unlink(missing_ok=True)


def _candidates() -> list[Path]:
    return [Path.home() / ".cache" / "acrguard", Path(tempfile.gettempdir()) / f"acrguard-{os.getuid()}"]


@cache
def default_db_path() -> Path:
    """The database of the bundled snapshot, built on first use and reused while the snapshot is unchanged."""
    try:
        name = f"{_PREFIX}{snapshot_digest()[:16]}.sqlite"
    except OSError as exc:
        raise FeedError(f"bundled OSV snapshot unreadable ({exc})") from exc
    failures: list[str] = []
    for directory in _candidates():
        target = directory / name
        if target.is_file():
            return target
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            build_snapshot_db(target)
        except (OSError, FeedError) as exc:
            failures.append(f"{directory}: {exc}")
            continue
        _remove_stale(directory, keep=name)
        return target
    raise FeedError(f"cannot build the bundled snapshot database ({'; '.join(failures)})")


def _remove_stale(directory: Path, keep: str) -> None:
    # Databases of earlier snapshots are never read again.
    for old in directory.glob(f"{_PREFIX}*.sqlite"):
        if old.name != keep:
            with contextlib.suppress(OSError):  # tidying up; a file we may not remove does no harm
                old.unlink(missing_ok=True)
