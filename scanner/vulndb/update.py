"""`acrguard db update`: the osv.dev ecosystem archives (`<base>/<Ecosystem>/all.zip`), fetched conditionally.

The ETag and Last-Modified of each archive imported are kept in the `sources` table and sent back
(If-None-Match, If-Modified-Since): an unchanged feed answers 304 and is neither downloaded nor re-imported.

All or nothing: the first changed feed makes a copy of the database aside (same directory, SQLite backup API, so a
concurrent reader's view is consistent), every changed feed is imported into the copy, and only when all of them
succeeded is the copy renamed over the database (`os.replace`, atomic). A failed download, an HTTP error or a
corrupt archive deletes the copy: the database stays exactly as it was, and scans reading it are never disturbed.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from scanner.ecosystems.catalog import default_archives
from scanner.vulndb.db_writer import DatabaseWriter, writer_lock
from scanner.vulndb.download import fetch
from scanner.vulndb.errors import FeedError
from scanner.vulndb.osv_import import Importer, ImportResult
from scanner.vulndb.readers import is_advisory_file, iter_zip
from scanner.vulndb.sqlite_db import OutdatedFormatError, check_format

DEFAULT_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
# The archives of the ecosystems whose records name one (scanner.ecosystems), in their order.
DEFAULT_ECOSYSTEMS = default_archives()
SOURCE_KIND = "osv-archive"


@dataclass(frozen=True)
class FeedOutcome:
    ecosystem: str
    url: str
    result: ImportResult | None  # None: 304 Not Modified
    downloaded_bytes: int = 0


@dataclass
class UpdateReport:
    path: Path
    outcomes: list[FeedOutcome] = field(default_factory=list)
    replaced: bool = False  # False when every feed was unchanged


def source_name(ecosystem: str) -> str:
    return f"osv:{ecosystem}"


def base_url(chosen: str | None = None) -> str:
    """The archive server: the one chosen (`--base-url`, `$ACRGUARD_OSV_BASE_URL`), else osv.dev's."""
    return (chosen or DEFAULT_BASE_URL).rstrip("/")


def feed_url(base: str, ecosystem: str) -> str:
    return f"{base}/{quote(ecosystem)}/all.zip"


def _held(db_path: Path) -> dict[str, tuple[str | None, str | None, int]]:
    """Per source: ETag, Last-Modified and record count of the copy in the database (nothing if no database)."""
    if not db_path.is_file():
        return {}
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise FeedError(f"{db_path}: cannot open vulnerability database ({exc})") from exc
    try:
        check_format(conn, db_path)
        rows = conn.execute("SELECT name, etag, last_modified, record_count FROM sources").fetchall()
    except sqlite3.Error as exc:
        raise FeedError(f"{db_path}: vulnerability database unreadable ({exc})") from exc
    finally:
        conn.close()
    return {name: (etag, last_modified, count) for name, etag, last_modified, count in rows}


def _copy_aside(db_path: Path, *, fresh: bool = False) -> Path:
    aside = db_path.with_name(f".{db_path.name}.update-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    if fresh or not db_path.is_file():
        return aside
    try:
        source = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(aside)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
    except (sqlite3.Error, OSError) as exc:
        aside.unlink(missing_ok=True)
        raise FeedError(f"{db_path}: cannot copy the database aside for the update ({exc})") from exc
    return aside


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _advisory_members(path: Path, url: str) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(1 for info in archive.infolist() if not info.is_dir() and is_advisory_file(info.filename))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FeedError(f"{url}: not a readable zip archive ({exc})") from exc


def update(
    db_path: Path,
    ecosystems: Sequence[str] | None = None,
    *,
    base: str | None = None,
    progress: Callable[[FeedOutcome], None] | None = None,
) -> UpdateReport:
    """Bring the osv.dev feeds of `ecosystems` (default: DEFAULT_ECOSYSTEMS) in `db_path` up to date."""
    root = base_url(base)
    report = UpdateReport(db_path)
    with writer_lock(db_path):
        try:
            held, rebuild = _held(db_path), False
        except OutdatedFormatError:  # written by an older acrguard: rebuilt from the feeds, as if new
            held, rebuild = {}, True
        aside: Path | None = None
        writer: DatabaseWriter | None = None
        try:
            for ecosystem in dict.fromkeys(ecosystems or DEFAULT_ECOSYSTEMS):
                name, url = source_name(ecosystem), feed_url(root, ecosystem)
                etag, last_modified, count = held.get(name, (None, None, 0))
                with fetch(url, db_path.parent, etag=etag, last_modified=last_modified) as fetched:
                    if fetched.path is None:
                        outcome = FeedOutcome(ecosystem, url, None)
                    else:
                        if count and not _advisory_members(fetched.path, url):
                            # An empty archive would remove every record of the ecosystem: a publishing accident
                            # is far likelier than an ecosystem without a single advisory.
                            raise FeedError(f"{url}: archive holds no records; keeping the {count} held")
                        if writer is None:
                            aside = _copy_aside(db_path, fresh=rebuild)
                            writer = DatabaseWriter(aside, scratch=True)
                        result = Importer(writer).import_items(
                            name,
                            SOURCE_KIND,
                            url,
                            iter_zip(fetched.path, url),
                            etag=fetched.etag,
                            last_modified=fetched.last_modified,
                        )
                        outcome = FeedOutcome(ecosystem, url, result, fetched.size)
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)
            if writer is not None and aside is not None:
                writer.close()
                writer = None
                try:
                    _fsync(aside)
                    os.replace(aside, db_path)
                    aside = None
                    _fsync(db_path.parent)  # the rename itself survives a crash
                except OSError as exc:
                    raise FeedError(f"{db_path}: cannot replace the database ({exc.strerror or exc})") from exc
                report.replaced = True
        finally:
            if writer is not None:
                writer.close()
            if aside is not None:
                aside.unlink(missing_ok=True)
    return report
