"""The write side of the vulnerability database: one transaction per source.

`DatabaseWriter.source(...)` opens a transaction for one source (a directory, a zip, a URL, an osv.dev feed);
records are upserted as they are read, and only when the whole source was read does the transaction commit: a
source that fails half-way leaves the database as it was. Rules:

* a record replaces the stored one with the same id when its `modified` is newer or equal (so re-importing is
  idempotent, and an older copy of a record never wins over a newer one);
* a record the source used to provide but no longer does is removed (the source is the authority for what it
  lists); records another source provided are left alone;
* Alpine secdb rows are kept per (release, repository) and the ALPINE-<CVE> records rebuilt from all rows of each
  CVE touched, so v3.10 and v3.11 imported on different days still make one record;
* when a source's session finishes, the `coverage` rows of every source whose records it changed (itself, the
  sources whose records it replaced, the secdb-built records) are recomputed from `record_ecosystems`;
* the source's feed date is the first of: the date the caller declares, the HTTP Last-Modified, the newest
  plausible record date, the newest document date (sqlite_db's module docstring says why).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from scanner.ecosystems.catalog import base_ecosystem
from scanner.vulndb import secdb
from scanner.vulndb.changes import ChangeLog, coverage_state
from scanner.vulndb.errors import FeedError
from scanner.vulndb.exploitation import EpssScores, KevCatalog
from scanner.vulndb.sqlite_db import (
    APPLICATION_ID,
    DDL,
    FORMAT_VERSION,
    check_format,
    index_entries,
    modified_key,
    plausible_date,
    record_ecosystems,
)

SECDB_SOURCE = "alpine-secdb"  # the `source` of records built from secdb rows (they have no single source)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _latest_plausible() -> str:
    """The newest date a feed may claim: a day after now (clocks differ; a feed dated later is not believed)."""
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = modified_key(tomorrow)
    assert key is not None
    return key


def _rfc3339_seconds(key: str) -> str:
    return f"{key[:19]}Z" if key else ""


@dataclass
class SourceStats:
    written: int = 0  # new, or replacing an older-or-equal copy
    kept: int = 0  # the database already held a newer copy
    removed: int = 0  # no longer listed by this source
    secdb_records: int = 0  # ALPINE-<CVE> records this source's secdb rows contribute to


@dataclass
class SourceSession:
    """The open transaction of one source."""

    conn: sqlite3.Connection
    name: str
    stats: SourceStats = field(default_factory=SourceStats)
    seen: set[str] = field(default_factory=set)
    secdb_units: set[tuple[str, str]] = field(default_factory=set)
    touched_cves: set[str] = field(default_factory=set)
    finished: bool = False
    # Whose `coverage` rows this session changed (recomputed at finish): records.source values.
    changed_sources: set[str] = field(default_factory=set)
    # Feed-date evidence (modified_keys): the newest plausible record date and document date seen.
    newest_record: str = ""
    newest_document: str = ""
    latest_plausible: str = field(default_factory=_latest_plausible)
    # The build's change record (`scanner.vulndb.changes`); None records nothing.
    changes: ChangeLog | None = None

    def note_item(self, date: str | None) -> None:
        """A document of the source was read, dated `date` (its file's mtime, its zip entry's time)."""
        key = modified_key(date) if date else None
        if key is not None and plausible_date(key, self.latest_plausible) and key > self.newest_document:
            self.newest_document = key

    def add_record(self, record: dict[str, Any], modified: str) -> bool:
        """Store a schema-valid record whose normalised `modified` is given; False if a newer copy is kept."""
        record_id: str = record["id"]
        self.seen.add(record_id)
        for key in (modified, self._published(record)):
            if plausible_date(key, self.latest_plausible) and key is not None and key > self.newest_record:
                self.newest_record = key
        return self._store(record, modified, self.name, derived=False)

    @staticmethod
    def _published(record: dict[str, Any]) -> str | None:
        # Go's vulndb writes `modified: 0001-01-01T00:00:00Z` on every record; `published` is real.
        published = record.get("published")
        return modified_key(published) if isinstance(published, str) else None

    def _store(self, record: dict[str, Any], modified: str, source: str, *, derived: bool) -> bool:
        conn = self.conn
        record_id: str = record["id"]
        row = conn.execute("SELECT modified, source, json FROM records WHERE id = ?", (record_id,)).fetchone()
        text = _compact(record)
        withdrawn = record.get("withdrawn")
        withdrawn = withdrawn if isinstance(withdrawn, str) and withdrawn else None
        indexed = index_entries(record) if withdrawn is None else {}
        aliases = {a for a in record.get("aliases") or () if isinstance(a, str) and a and a != record_id}
        if row is not None:
            stored_modified, stored_source, stored_text = row
            # A rebuilt secdb record always replaces the previous build of itself.
            if stored_modified > modified and not (derived and stored_source == SECDB_SOURCE):
                if not derived:
                    self.stats.kept += 1
                return False
            if stored_text != text:  # the same JSON again changes no finding (its source is coverage's business)
                self._note_removal(record_id)
            self._unindex(record_id)
            self.changed_sources.add(stored_source)
        self.changed_sources.add(source)
        if self.changes is not None and self.changes.keyed and (row is None or row[2] != text):
            self.changes.packages(indexed)
            self.changes.ids({record_id, *aliases})
        head = {key: value for key, value in record.items() if key != "affected"}
        conn.execute(
            "INSERT OR REPLACE INTO records (id, modified, withdrawn, source, json, head) VALUES (?, ?, ?, ?, ?, ?)",
            (record_id, modified, withdrawn, source, text, _compact(head)),
        )
        if withdrawn is None:  # a withdrawn record is kept (by_id, db info) but never found by lookup or coverage
            conn.executemany(
                "INSERT INTO affected_index (base_ecosystem, name_key, record_id, entries) VALUES (?, ?, ?, ?)",
                [(eco, name, record_id, _compact(entries)) for (eco, name), entries in indexed.items()],
            )
            conn.executemany(
                "INSERT INTO record_ecosystems (ecosystem, record_id) VALUES (?, ?)",
                [(ecosystem, record_id) for ecosystem in record_ecosystems(indexed)],
            )
        conn.executemany(
            "INSERT OR IGNORE INTO aliases (alias, record_id) VALUES (?, ?)", [(a, record_id) for a in aliases]
        )
        if not derived:
            self.stats.written += 1
        return True

    def _note_removal(self, record_id: str) -> None:
        """Records the keys and ids the stored copy of a record is found by, before it is replaced or removed."""
        if self.changes is None or not self.changes.keyed:
            return
        self.changes.packages(
            self.conn.execute(
                "SELECT base_ecosystem, name_key FROM affected_index WHERE record_id = ?", (record_id,)
            ).fetchall()
        )
        aliases = self.conn.execute("SELECT alias FROM aliases WHERE record_id = ?", (record_id,)).fetchall()
        self.changes.ids([record_id, *(a for (a,) in aliases)])

    def _unindex(self, record_id: str) -> None:
        self.conn.execute("DELETE FROM affected_index WHERE record_id = ?", (record_id,))
        self.conn.execute("DELETE FROM aliases WHERE record_id = ?", (record_id,))
        self.conn.execute("DELETE FROM record_ecosystems WHERE record_id = ?", (record_id,))

    def _delete(self, record_id: str) -> None:
        row = self.conn.execute("SELECT source FROM records WHERE id = ?", (record_id,)).fetchone()
        if row is not None:
            self.changed_sources.add(row[0])
            self._note_removal(record_id)
        self._unindex(record_id)
        self.conn.execute("DELETE FROM records WHERE id = ?", (record_id,))

    def set_secdb_unit(self, doc: secdb.SecdbDocument, document_date: str) -> None:
        """Replace the rows of one (release, repository) with this document's."""
        unit = (doc.release, doc.repo)
        old = self.conn.execute("SELECT DISTINCT cve FROM secdb_fixes WHERE release = ? AND repo = ?", unit).fetchall()
        self.touched_cves.update(cve for (cve,) in old)
        self.conn.execute("DELETE FROM secdb_fixes WHERE release = ? AND repo = ?", unit)
        self.conn.execute(
            "INSERT OR REPLACE INTO secdb_units (release, repo, source, document_date) VALUES (?, ?, ?, ?)",
            (*unit, self.name, document_date),
        )
        rows = {(r.package, r.fixed, r.cve) for r in doc.rows}
        self.conn.executemany(
            "INSERT INTO secdb_fixes (release, repo, package, fixed, cve) VALUES (?, ?, ?, ?, ?)",
            [(*unit, package, fixed, cve) for package, fixed, cve in sorted(rows)],
        )
        self.touched_cves.update(cve for _, _, cve in rows)
        self.secdb_units.add(unit)

    def _prune(self) -> None:
        stale = [
            record_id
            for (record_id,) in self.conn.execute("SELECT id FROM records WHERE source = ?", (self.name,)).fetchall()
            if record_id not in self.seen
        ]
        for record_id in stale:
            self._delete(record_id)
        self.stats.removed = len(stale)
        for release, repo in self.conn.execute(
            "SELECT release, repo FROM secdb_units WHERE source = ?", (self.name,)
        ).fetchall():
            if (release, repo) not in self.secdb_units:
                gone = self.conn.execute(
                    "SELECT DISTINCT cve FROM secdb_fixes WHERE release = ? AND repo = ?", (release, repo)
                ).fetchall()
                self.touched_cves.update(cve for (cve,) in gone)
                self.conn.execute("DELETE FROM secdb_fixes WHERE release = ? AND repo = ?", (release, repo))
                self.conn.execute("DELETE FROM secdb_units WHERE release = ? AND repo = ?", (release, repo))

    def _rebuild_secdb_records(self) -> None:
        for cve in sorted(self.touched_cves):
            rows = self.conn.execute(
                "SELECT f.release, f.package, f.fixed, u.document_date, u.source FROM secdb_fixes f "
                "JOIN secdb_units u ON u.release = f.release AND u.repo = f.repo WHERE f.cve = ?",
                (cve,),
            ).fetchall()
            # The record is as new as the newest document it is built from (not "now": then an osv.dev copy of
            # the same ALPINE-<CVE> record could never replace it again).
            modified = max((date for _, _, _, date, _ in rows), default=utc_now())
            record = secdb.build_record(cve, (secdb.ReleaseRow(r, p, f) for r, p, f, _, _ in rows), modified)
            record_id = secdb.ID_PREFIX + cve
            if record is None:
                row = self.conn.execute("SELECT source FROM records WHERE id = ?", (record_id,)).fetchone()
                if row is not None and row[0] == SECDB_SOURCE:
                    self._delete(record_id)
                continue
            key = modified_key(modified)
            if key is None:  # document dates are ours, always RFC 3339; a failure here is a bug
                raise FeedError(f"secdb record {record_id}: bad document date {modified!r}")
            self._store(record, key, SECDB_SOURCE, derived=True)
            if any(source == self.name and fixed != secdb.NOT_AFFECTED for _, _, fixed, _, source in rows):
                self.stats.secdb_records += 1

    def finish(self) -> None:
        """Prune what the source no longer lists and rebuild the secdb records it touched (once)."""
        if not self.finished:
            self.finished = True
            self._prune()
            self._rebuild_secdb_records()
            if self.secdb_units or self.touched_cves:
                # Units moving between sources change the `feeds` of the secdb-built rows, even with no record
                # rebuilt.
                self.changed_sources.add(SECDB_SOURCE)
            self.changed_sources.add(self.name)  # a source that now lists nothing has no rows left
            for source in sorted(self.changed_sources):
                self._materialise(source)

    def _materialise(self, source: str) -> None:
        """Recompute the `coverage` rows of one records.source."""
        conn = self.conn
        conn.execute("DELETE FROM coverage WHERE source = ?", (source,))
        groups = conn.execute(
            "SELECT e.ecosystem, count(*), max(r.modified) FROM records r "
            "JOIN record_ecosystems e ON e.record_id = r.id WHERE r.source = ? GROUP BY e.ecosystem",
            (source,),
        ).fetchall()
        rows = []
        for ecosystem, count, newest in groups:
            if source == SECDB_SOURCE:  # built from secdb rows: they come from the sources of that release's rows
                release = ecosystem.partition(":")[2]
                feeds = sorted(
                    name
                    for (name,) in conn.execute("SELECT DISTINCT source FROM secdb_units WHERE release = ?", (release,))
                )
            else:
                feeds = [source]
            rows.append((source, ecosystem, base_ecosystem(ecosystem), count, newest, _compact(feeds)))
        conn.executemany(
            "INSERT INTO coverage (source, ecosystem, base_ecosystem, records, newest, feeds) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def feed_date(self, declared: str | None, last_modified: str | None) -> str:
        """The feed's own date (RFC 3339, "" when nothing dates it), by the rule of the module docstring."""
        key = modified_key(declared) if declared else None
        if key is not None:
            return _rfc3339_seconds(key)
        key = modified_key(last_modified) if last_modified else None
        if plausible_date(key, self.latest_plausible) and key is not None:
            return _rfc3339_seconds(key)
        return _rfc3339_seconds(self.newest_record or self.newest_document)


@dataclass(frozen=True)
class SourceRow:
    name: str
    kind: str
    location: str
    record_count: int
    skipped_count: int
    etag: str | None = None
    last_modified: str | None = None  # RFC 3339 or an HTTP date, as the response sent it
    selection: bool = False  # holds only a selection of its feed
    feed_date: str | None = None  # RFC 3339: the feed's date when the caller knows it (else found by the rule)


class DatabaseWriter:
    """A read-write connection to the database file, created (with its directory) if missing."""

    def __init__(self, path: Path, *, scratch: bool = False) -> None:
        """`scratch`: the file is a copy being built aside, to be renamed over the real one or deleted: no rollback
        journal on disk and no fsync per commit (the caller syncs once before the rename)."""
        self.path = path
        self._session: SourceSession | None = None
        self.changes: ChangeLog | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise FeedError(f"{path}: cannot open vulnerability database for writing ({exc})") from exc
        try:
            self._prepare(scratch)
        except sqlite3.Error as exc:
            self.conn.close()
            raise FeedError(f"{path}: cannot write vulnerability database ({exc})") from exc
        except FeedError:
            self.conn.close()
            raise

    def _prepare(self, scratch: bool) -> None:
        conn = self.conn
        if scratch:
            conn.execute("PRAGMA journal_mode = MEMORY")
            conn.execute("PRAGMA synchronous = OFF")
        try:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise FeedError(f"{self.path}: not a vulnerability database ({exc})") from exc
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: the index pages of a large import stay in memory
        if tables == 0:
            conn.executescript(DDL)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        else:
            check_format(conn, self.path)
        # Also in files of this format written before the change record was kept: their first build then
        # has no predecessor, so readers rescan in full once.
        ChangeLog.create_tables(conn)
        self.changes = ChangeLog(conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> DatabaseWriter:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def set_meta(self, key: str, value: str) -> None:
        try:
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        except sqlite3.Error as exc:
            raise FeedError(f"{self.path}: cannot write vulnerability database ({exc})") from exc

    @contextmanager
    def source(self, name: str) -> Iterator[SourceSession]:
        """A transaction for one source: the caller adds everything, calls `session.finish()` (for the counts of
        `record_source`), then `record_source`; leaving the block commits, an exception rolls back."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise FeedError(f"{self.path}: cannot start a transaction ({exc})") from exc
        session = self._session = SourceSession(self.conn, name, changes=self.changes)
        try:
            before = self._begin_build()
            yield session
            session.finish()
            self._end_build(before)
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise FeedError(f"{self.path}: writing source {name} failed ({exc})") from exc
        except BaseException:
            self._rollback()
            raise
        finally:
            self._session = None

    def _begin_build(self) -> dict[str, Any] | None:
        """Inside a write transaction: this writer's build is the file's current one; the coverage as it was."""
        if self.changes is None:
            return None
        self.changes.begin(utc_now())
        return coverage_state(self.conn) if self.changes.keyed else None

    def _end_build(self, before: dict[str, Any] | None) -> None:
        """Before COMMIT: the base ecosystems whose coverage changed in what health reads."""
        if self.changes is not None and before is not None:
            self.changes.coverage(before, coverage_state(self.conn))

    def _rollback(self) -> None:
        # After some hard errors SQLite has already rolled back: then there is nothing left to roll back.
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")

    def replace_kev(self, catalog: KevCatalog) -> None:
        """The whole KEV catalog, replacing the one stored, in one transaction (all or nothing)."""
        rows = [
            (e.cve, e.date_added, e.due_date, int(e.ransomware), e.vendor, e.product, e.name) for e in catalog.entries
        ]
        meta = {"kev_catalog_version": catalog.version, "kev_date_released": catalog.released}
        # A finding reads date added, due date and ransomware use (`Kev`): a CVE where one of those changed is a change.
        self._replace(
            "kev",
            "INSERT INTO kev VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
            meta,
            "cve, date_added, due_date, ransomware",
            4,
        )

    def replace_epss(self, scores: EpssScores) -> None:
        """The whole set of EPSS scores, replacing the one stored, in one transaction (all or nothing)."""
        # A CVE listed twice (never in the real file): its last row counts.
        meta = {"epss_score_date": scores.score_date, "epss_model_version": scores.model_version}
        self._replace(
            "epss", "INSERT OR REPLACE INTO epss VALUES (?, ?, ?)", scores.rows, meta, "cve, score, percentile", 3
        )

    def _replace(
        self, table: str, insert: str, rows: list[tuple[Any, ...]], meta: dict[str, str], read: str, width: int
    ) -> None:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise FeedError(f"{self.path}: cannot start a transaction ({exc})") from exc
        try:
            self._begin_build()
            self._record_replacement(table, rows, meta, read, width)
            conn.execute(f"DELETE FROM {table}")
            conn.executemany(insert, rows)
            meta = {**meta, f"{table}_imported_at": utc_now()}
            conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.items())
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise FeedError(f"{self.path}: writing the {table} table failed ({exc})") from exc
        except BaseException:
            self._rollback()
            raise

    def _record_replacement(
        self, table: str, rows: list[tuple[Any, ...]], meta: dict[str, str], read: str, width: int
    ) -> None:
        """The CVE ids whose row (the columns findings read) differs between the stored table and `rows`."""
        changes = self.changes
        if changes is None or not changes.keyed:
            return
        if table == "epss":
            stored = self.conn.execute("SELECT value FROM meta WHERE key = 'epss_score_date'").fetchone()
            if (stored[0] if stored else "") != meta["epss_score_date"]:
                # Every finding with a score carries the score date: all of them change.
                changes.everything("EPSS scores of another day")
                return
        old = {row[0]: tuple(row) for row in self.conn.execute(f"SELECT {read} FROM {table}")}
        new: dict[str, tuple[Any, ...]] = {}
        for row in rows:
            new[row[0]] = tuple(row[:width])  # the last row of a CVE counts, as in the table
        changes.ids(cve for cve in old.keys() | new.keys() if old.get(cve) != new.get(cve))

    def record_source(self, row: SourceRow) -> None:
        """The sources row; call inside `source(...)`, after `session.finish()`, so that it commits with the
        records and its feed date sees them all."""
        session = self._session
        if session is None or session.name != row.name:
            raise FeedError(f"{self.path}: source {row.name} recorded outside its own import session")
        self.conn.execute(
            "INSERT OR REPLACE INTO sources (name, kind, location, imported_at, record_count, skipped_count, etag, "
            "last_modified, selection, feed_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.name,
                row.kind,
                row.location,
                utc_now(),
                row.record_count,
                row.skipped_count,
                row.etag,
                row.last_modified,
                int(row.selection),
                session.feed_date(row.feed_date, _http_date(row.last_modified)),
            ),
        )


def _http_date(value: str | None) -> str | None:
    """An HTTP date (`Fri, 04 Dec 2026 10:00:00 GMT`) as RFC 3339; None when absent or unreadable."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)  # `-0000`: UTC, says RFC 5322
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def writer_lock(db_path: Path) -> Iterator[None]:
    """One writer at a time per database: an update builds a copy aside and renames it over the file, so an import
    running meanwhile into the old file would be silently lost.

    The lock file is removed when the writer is done, success or failure, while still locked; a writer that
    locked a file someone removed meanwhile (its inode is no longer the path's) starts over on the new one, so two
    writers never both hold "the" lock."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeedError(f"{lock_path}: cannot create lock file ({exc.strerror or exc})") from exc
    while True:
        try:
            handle = lock_path.open("a")
        except OSError as exc:
            raise FeedError(f"{lock_path}: cannot create lock file ({exc.strerror or exc})") from exc
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise FeedError(f"{db_path}: another `acrguard db` command is writing this database") from exc
            try:
                current = os.stat(lock_path)
            except FileNotFoundError:
                continue  # removed by the writer before us after we opened it: lock the new one
            if not os.path.samestat(current, os.fstat(handle.fileno())):
                continue
            try:
                yield
            finally:
                lock_path.unlink(missing_ok=True)
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return
