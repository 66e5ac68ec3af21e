"""The bundled snapshot: a small set of real advisories shipped in `scanner/data/osv-snapshot/` (see its
SOURCES.md), so that a scan finds something with no network and no `acrguard db` command run first.

The snapshot is imported into a SQLite database once and cached under `~/.cache/acrguard/` (or, when the home
directory is read-only, the system temporary directory), named by a hash of the snapshot's files and of the
database format: a new acrguard with a new snapshot builds a new file, never reads a stale one (a database of
an older format is never opened: its name differs).

Each directory is one source, marked as a selection of its feed unless it holds the feed's whole data for the
releases it names (`PARTS`): a scan against a selection can find real vulnerabilities, but finding none there
proves nothing, and the coverage of an ecosystem says so (`Coverage.selection`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from scanner.vulndb.db_writer import DatabaseWriter
from scanner.vulndb.errors import FeedError
from scanner.vulndb.osv_import import Importer, SourceSpec
from scanner.vulndb.sqlite_db import FORMAT_VERSION


@dataclass(frozen=True)
class Part:
    """One directory of the snapshot, imported as the source `snapshot:<directory>`."""

    directory: str
    selection: bool  # a few records picked from the feed, not all it has for any release
    # The feed's date: the upstream commit the files were copied at (SOURCES.md names it; the date is its
    # committer date). The files cannot say it: their mtime is when acrguard was installed, secdb documents carry
    # no date, and Go's data/osv records all have `modified: 0001-01-01T00:00:00Z`. None: the newest plausible
    # record date (records copied from osv.dev's archives carry real ones), else the files' mtime.
    feed_date: str | None = None
    file: str = ""  # one file of the directory, imported alone (KEV and EPSS are files, not record trees)

    @property
    def location(self) -> str:
        return f"{self.directory}/{self.file}" if self.file else self.directory


# The directories of the snapshot imported (the schema next to them is not a record), one row each; a new
# directory says whether it holds all its feed has for the releases it names.
PARTS = (
    # Whole: every file the secdb has for v3.10 and v3.11 (main and community), i.e. all of those releases.
    Part("alpine-secdb", selection=False, feed_date="2020-06-08T13:44:53Z"),
    # Selections: records picked for packages common in images (47 PYSEC of 10 packages, 45 GO of 4 modules,
    # 34 ALSA of 4 AlmaLinux 9 packages); the feeds hold thousands more for the same ecosystems.
    Part("pypa-advisory-database", selection=True, feed_date="2024-10-10T17:35:05Z"),
    Part("golang-vulndb", selection=True, feed_date="2026-08-21T20:38:00Z"),
    Part("almalinux-osv", selection=True, feed_date="2026-08-21T15:39:17Z"),
    # Selections: 15 UBUNTU-CVE records of base-image packages (their own `modified` dates them), and 91
    # DEBIAN-CVE records for Debian 12 derived from the packages' changelogs (SOURCES.md says how).
    Part("ubuntu-osv", selection=True),
    Part("debian-osv", selection=True),
    # Selection: NVD's records of the four CVEs the Alpine 3.10 sample has (their CVSS rates its findings); the
    # date of the fkie-cad/nvd-json-data-feeds commit is not known here: the records' newest lastModified dates it.
    Part("nvd", selection=True),
    # Selections: CISA's KEV catalog as of 2025-08-25, 8 of its entries; FIRST's EPSS scores of 2026-09-29, 13 of
    # its rows (the sample's four CVEs among them). A real KEV and EPSS set replaces each whole on `db update`.
    Part("kev", selection=True, file="known_exploited_vulnerabilities.json"),
    Part("epss", selection=True, file="epss_scores-2026-09-29.csv"),
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
                spec = SourceSpec(
                    str(root / part.location),
                    f"snapshot:{part.directory}",
                    selection=part.selection,
                    feed_date=part.feed_date,
                )
                importer.import_source(spec, target.parent)
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
