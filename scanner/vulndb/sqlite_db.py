"""The vulnerability database file (SQLite): its tables, and the read-only side that scans use.

One file holds the OSV records (compact JSON), an index from (base ecosystem, normalised package name) to record
ids, the aliases, the sources imported (with the HTTP validators `db update` sends back) and the Alpine secdb rows
that ALPINE-<CVE> records are built from. `records.modified` is the record's `modified` normalised so that
comparing strings compares times (`…:25Z` and `…:25.5Z` do not sort as text).

Lookups are the hot path of a scan, and distribution advisories are big: an AlmaLinux record lists every binary
package of its source (a kernel advisory: over a hundred), so parsing whole records made a 500-package lookup
spend ~100 ms in `json.loads`. Hence each record is also stored split: `records.head` (everything but `affected`)
and, per index row, `affected_index.entries` (that package's affected entries). `lookup` returns the head with
`affected` narrowed to the entries of the package looked up, which is all matching reads; `by_id` returns whole
records. Withdrawn records are not indexed, so lookups never see them.

Coverage (how many advisories the database holds for an image's ecosystem and release) is materialised when a
source's import finishes, because counting it from the index means parsing every index row of the base
ecosystem (hundreds of thousands for osv.dev's Debian): `record_ecosystems` holds each non-withdrawn record's
advisory ecosystems as the records write them (`Debian:12`, `Red Hat:enterprise_linux:8::appstream`, `PyPI`),
and `coverage` the count and newest `modified` per (records.source, advisory ecosystem), with the import sources
they come from (`feeds`: the source itself, or for ALPINE-<CVE> records built from secdb rows, the sources of
those rows). Each record has one source, so the counts of one ecosystem string add up exactly across sources;
only an image release that several strings match (RHEL's `::appstream` and `::baseos`) needs a distinct count
over `record_ecosystems`, which its primary key answers without touching a record.

A source's feed date (`sources.feed_date`: how current the feed is, not when it was imported) is, first found:
the date the importer was told (the bundled snapshot knows the commit its files were copied at), the HTTP
Last-Modified of the download, the newest plausible record date (`modified`, or `published` where `modified` is
a placeholder such as Go's `0001-01-01T00:00:00Z`; plausible: from 1995 to a day after the import), else the
newest document date (a file's mtime, a zip entry's time). See `db_writer.SourceSession`.

Scans open the file read-only (`mode=ro`): an update replaces the file by rename, so an open scan keeps reading the
version it opened.
"""

from __future__ import annotations

import gc
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from scanner.ecosystems.catalog import find, release_matches
from scanner.model.types import Coverage, Epss, Kev
from scanner.vulndb import changes
from scanner.vulndb.errors import DatabaseMissingError, FeedError
from scanner.vulndb.interface import OsvRecord, base_ecosystem, normalise_name

APPLICATION_ID = 0x41435247  # "ACRG" in the SQLite header: this file is ours
FORMAT_VERSION = 3  # PRAGMA user_version; bump when the tables change (2: coverage, selections, feed dates;
# 3: the KEV catalog and EPSS scores)

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    modified TEXT NOT NULL,
    withdrawn TEXT,
    source TEXT NOT NULL,
    json TEXT NOT NULL,
    head TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_source ON records (source);
CREATE TABLE IF NOT EXISTS affected_index (
    base_ecosystem TEXT NOT NULL,
    name_key TEXT NOT NULL,
    record_id TEXT NOT NULL,
    entries TEXT NOT NULL,
    PRIMARY KEY (base_ecosystem, name_key, record_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS affected_by_record ON affected_index (record_id);
CREATE TABLE IF NOT EXISTS aliases (
    alias TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (alias, record_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_by_record ON aliases (record_id);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    location TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    skipped_count INTEGER NOT NULL,
    etag TEXT,
    last_modified TEXT,
    selection INTEGER NOT NULL DEFAULT 0,
    feed_date TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS record_ecosystems (
    ecosystem TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (ecosystem, record_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_ecosystems_by_record ON record_ecosystems (record_id);
CREATE TABLE IF NOT EXISTS coverage (
    source TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    base_ecosystem TEXT NOT NULL,
    records INTEGER NOT NULL,
    newest TEXT NOT NULL,
    feeds TEXT NOT NULL,
    PRIMARY KEY (source, ecosystem)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS coverage_by_base ON coverage (base_ecosystem);
CREATE TABLE IF NOT EXISTS secdb_units (
    release TEXT NOT NULL,
    repo TEXT NOT NULL,
    source TEXT NOT NULL,
    document_date TEXT NOT NULL,
    PRIMARY KEY (release, repo)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS secdb_fixes (
    release TEXT NOT NULL,
    repo TEXT NOT NULL,
    package TEXT NOT NULL,
    fixed TEXT NOT NULL,
    cve TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS secdb_fixes_by_cve ON secdb_fixes (cve);
CREATE INDEX IF NOT EXISTS secdb_fixes_by_unit ON secdb_fixes (release, repo);
CREATE TABLE IF NOT EXISTS kev (
    cve TEXT PRIMARY KEY,
    date_added TEXT NOT NULL,
    due_date TEXT NOT NULL,
    ransomware INTEGER NOT NULL,
    vendor TEXT NOT NULL,
    product TEXT NOT NULL,
    name TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epss (
    cve TEXT PRIMARY KEY,
    score REAL NOT NULL,
    percentile REAL NOT NULL
) WITHOUT ROWID;
"""

_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:Z|z|[+-]00:?00)?$")


def modified_key(value: str) -> str | None:
    """`2021-07-05T00:01:25.63Z` → `2021-07-05T00:01:25.630000000Z`: fixed width, so text order is time order.
    None for a value that is not an RFC 3339 UTC time."""
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        return None
    date, time, fraction = match.groups()
    return f"{date}T{time}.{(fraction or '').ljust(9, '0')[:9]}Z"


def index_entries(record: OsvRecord) -> dict[tuple[str, str], list[Any]]:
    """The affected entries of each (base ecosystem, normalised name), in record order. Entries without a package
    (GIT-only ranges) index nothing."""
    keys: dict[tuple[str, str], list[Any]] = {}
    for entry in record.get("affected") or ():
        package = entry.get("package") if isinstance(entry, dict) else None
        if not isinstance(package, dict):
            continue
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if isinstance(ecosystem, str) and isinstance(name, str) and ecosystem and name:
            keys.setdefault((base_ecosystem(ecosystem), normalise_name(ecosystem, name)), []).append(entry)
    return keys


def record_ecosystems(entries: dict[tuple[str, str], list[Any]]) -> set[str]:
    """The advisory ecosystems (as the record writes them) of a record's indexed entries (`index_entries`)."""
    return {entry["package"]["ecosystem"] for listed in entries.values() for entry in listed}


PLAUSIBLE_SINCE = "1995-01-01T00:00:00.000000000Z"  # before any OSV feed's first record: older is a placeholder


def plausible_date(key: str | None, now_key: str) -> bool:
    """Is this `modified_key` a real date: not a placeholder (Go's year 1), not after `now_key` (a feed may not
    date itself into the future to look current)?"""
    return key is not None and PLAUSIBLE_SINCE <= key <= now_key


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Parsing builds thousands of containers that all survive (they are cached); each allocation burst would
    # trigger a collection that walks every tracked object, doubling the cost. JSON makes no cycles to collect.
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _rfc3339(key: str) -> str:
    """A `modified_key` back to a plain RFC 3339 time, to the second."""
    return f"{key[:19]}Z" if key else ""


class OutdatedFormatError(FeedError):
    """The file is an acrguard database of an older format: `db update` rebuilds it."""


def check_format(conn: sqlite3.Connection, path: Path) -> None:
    """Raises FeedError unless `conn` is an acrguard database of this format (OutdatedFormatError when it is an
    older one)."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise FeedError(f"{path}: not a vulnerability database ({exc})") from exc
    if app_id != APPLICATION_ID:
        raise FeedError(f"{path}: not an acrguard vulnerability database")
    if version < FORMAT_VERSION:
        raise OutdatedFormatError(
            f"{path}: vulnerability database format {version} was written by an older acrguard (this one reads "
            f"format {FORMAT_VERSION}): run `acrguard db update` to rebuild it (then `acrguard db import` again "
            "what you imported by hand)"
        )
    if version != FORMAT_VERSION:
        raise FeedError(
            f"{path}: vulnerability database format {version} was written by a newer acrguard (this one reads "
            f"format {FORMAT_VERSION}): upgrade acrguard or give another database (--db)"
        )


def missing_database_message(path: Path) -> str:
    return (
        f"vulnerability database {path} does not exist: create it with `acrguard db update` (downloads from "
        "osv.dev) or `acrguard db import SOURCE`, or give neither --db nor $ACRGUARD_DB to use the bundled snapshot"
    )


MMAP_BYTES = 1 << 30


PREFETCH_BATCH = 400  # (ecosystem, name) pairs per query: 800 parameters, far below SQLite's limit
CVE_BATCH = 500  # CVE ids per exploitation query


class SqliteVulnDatabase:
    """`VulnDatabase` over the SQLite file, read-only. Parsed records are cached for the life of the object, so
    the records it returns are shared: callers must not modify them."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._heads: dict[str, dict[str, Any]] = {}
        self._lookups: dict[tuple[str, str], list[OsvRecord]] = {}
        self._whole: dict[str, list[OsvRecord]] = {}
        self._coverage: dict[str, Coverage] = {}
        self._sources: dict[str, tuple[bool, str]] | None = None
        # One connection shared by the threads of a scan: sqlite3 objects are not safe to use concurrently.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SqliteVulnDatabase:
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise DatabaseMissingError(missing_database_message(file))
        try:
            conn = sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise FeedError(f"{file}: cannot open vulnerability database ({exc})") from exc
        try:
            check_format(conn, file)
            # Memory-mapped reads skip a copy per page; lookups read megabytes of record text. SQLite keeps this
            # safe with concurrent writers; updates replace the file by rename, which leaves the mapping intact.
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        except sqlite3.Error as exc:
            conn.close()
            raise FeedError(f"{file}: cannot read vulnerability database ({exc})") from exc
        except FeedError:
            conn.close()
            raise
        return cls(conn, file)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SqliteVulnDatabase:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise FeedError(f"{self.path}: vulnerability database unreadable ({exc})") from exc

    def lookup(self, ecosystem: str, name: str) -> list[OsvRecord]:
        """Each record with `affected` narrowed to this package's entries (see the module docstring)."""
        key = (base_ecosystem(ecosystem), normalise_name(ecosystem, name))
        with self._lock:
            cached = self._lookups.get(key)
            if cached is not None:
                return list(cached)  # the records are shared, the list is the caller's
            # One query; the head comes along even when cached (cheaper than a second query for the missing ones).
            rows: list[tuple[str, str, str]] = self._query(
                "SELECT a.record_id, a.entries, r.head FROM affected_index a JOIN records r ON r.id = a.record_id "
                "WHERE a.base_ecosystem = ? AND a.name_key = ? ORDER BY a.record_id",
                key,
            )
            result = self._lookups[key] = self._records(rows)
            return list(result)

    def _records(self, rows: list[tuple[str, str, str]]) -> list[OsvRecord]:
        heads = self._heads
        result: list[OsvRecord] = []
        with _gc_paused():
            for record_id, entries, text in rows:
                head = heads.get(record_id)
                if head is None:
                    head = heads[record_id] = orjson.loads(text)
                result.append({**head, "affected": orjson.loads(entries)})
        return result

    def prefetch(self, packages: Iterable[tuple[str, str]]) -> None:
        """Fill the lookup cache for many (ecosystem, name) pairs in one query: a scan looks up hundreds of
        packages, and one query per package costs more than the matching itself."""
        keys = sorted({(base_ecosystem(e), normalise_name(e, n)) for e, n in packages} - self._lookups.keys())
        for start in range(0, len(keys), PREFETCH_BATCH):
            batch = keys[start : start + PREFETCH_BATCH]
            values = ",".join("(?, ?)" for _ in batch)
            params = tuple(part for key in batch for part in key)
            with self._lock:
                rows: list[tuple[str, str, str, str, str]] = self._query(
                    f"WITH wanted(e, n) AS (VALUES {values}) "
                    "SELECT a.base_ecosystem, a.name_key, a.record_id, a.entries, r.head FROM wanted "
                    "JOIN affected_index a ON a.base_ecosystem = wanted.e AND a.name_key = wanted.n "
                    "JOIN records r ON r.id = a.record_id ORDER BY a.base_ecosystem, a.name_key, a.record_id",
                    params,
                )
                grouped: dict[tuple[str, str], list[tuple[str, str, str]]] = {key: [] for key in batch}
                for eco, name, record_id, entries, head in rows:
                    grouped[(eco, name)].append((record_id, entries, head))
                for key, key_rows in grouped.items():
                    self._lookups[key] = self._records(key_rows)

    def by_id(self, vuln_id: str) -> list[OsvRecord]:
        """Whole records, withdrawn ones excluded."""
        with self._lock:
            cached = self._whole.get(vuln_id)
            if cached is None:
                rows = self._query(
                    "SELECT json FROM records WHERE withdrawn IS NULL AND id IN "
                    "(SELECT ? UNION SELECT record_id FROM aliases WHERE alias = ?) ORDER BY id",
                    (vuln_id, vuln_id),
                )
                cached = self._whole[vuln_id] = [orjson.loads(text) for (text,) in rows]
            return list(cached)

    def exploitation(self, cve_ids: Iterable[str]) -> dict[str, tuple[Kev | None, Epss | None]]:
        """Batched: one query per table per `CVE_BATCH` ids; CVEs in neither table are left out."""
        wanted = sorted(set(cve_ids))
        found: dict[str, tuple[Kev | None, Epss | None]] = {}
        with self._lock:
            score_date = dict(self._query("SELECT key, value FROM meta WHERE key = 'epss_score_date'")).get(
                "epss_score_date", ""
            )
            for start in range(0, len(wanted), CVE_BATCH):
                batch = orjson.dumps(wanted[start : start + CVE_BATCH]).decode()
                for cve, added, due, ransomware in self._query(
                    "SELECT cve, date_added, due_date, ransomware FROM kev "
                    "WHERE cve IN (SELECT value FROM json_each(?))",
                    (batch,),
                ):
                    found[cve] = (Kev(added, due, bool(ransomware)), None)
                for cve, score, percentile in self._query(
                    "SELECT cve, score, percentile FROM epss WHERE cve IN (SELECT value FROM json_each(?))",
                    (batch,),
                ):
                    found[cve] = (found.get(cve, (None, None))[0], Epss(score, percentile, score_date))
        return found

    def build(self) -> str | None:
        """The database build this file is (`scanner.vulndb.changes`); None when it keeps no change record."""
        with self._lock:
            return changes.current_build(self._conn)

    def changes_since(self, build: str | None) -> changes.ChangeSet | changes.Unknown:
        """What changed since database build `build` (`scanner.vulndb.changes.change_set`)."""
        with self._lock:
            return changes.change_set(self._conn, build)

    def coverage(self, ecosystem: str) -> Coverage:
        """From the `coverage` table (module docstring): the rows of the base ecosystem whose advisory ecosystem's
        release applies to this one (`release_matches` decides), records counted once."""
        with self._lock:
            cached = self._coverage.get(ecosystem)
            if cached is not None:
                return cached
            rows: list[tuple[str, str, int, str, str]] = self._query(
                "SELECT source, ecosystem, records, newest, feeds FROM coverage WHERE base_ecosystem = ?",
                (base_ecosystem(ecosystem),),
            )
            matching = [row for row in rows if release_matches(row[1], ecosystem)]
            strings = sorted({row[1] for row in matching})
            if len(strings) > 1:  # one record may name several of them: count it once
                count = int(
                    self._query(
                        "SELECT count(*) FROM (SELECT DISTINCT record_id FROM record_ecosystems "
                        "WHERE ecosystem IN (SELECT value FROM json_each(?)))",
                        (orjson.dumps(strings).decode(),),
                    )[0][0]
                )
            else:
                count = sum(row[2] for row in matching)
            feeds = {feed for row in matching for feed in orjson.loads(row[4])}
            facts = self._source_facts()
        record = find(ecosystem)
        kind = record.kind if record is not None else "language"
        dates = [facts[feed][1] for feed in feeds if feed in facts and facts[feed][1]]
        if not dates:  # sources recorded before their dates were kept; cannot happen with this format
            dates = [_rfc3339(row[3]) for row in matching if row[3] >= PLAUSIBLE_SINCE]
        selection = bool(feeds) and all(facts.get(feed, (False, ""))[0] for feed in feeds)
        result = Coverage(ecosystem, kind, count, feed_date=max(dates, default=""), selection=selection)
        with self._lock:
            self._coverage[ecosystem] = result
        return result

    def _source_facts(self) -> dict[str, tuple[bool, str]]:
        """Per source: (holds a selection of its feed, feed date); read once per instance. Call with the lock."""
        if self._sources is None:
            rows = self._query("SELECT name, selection, feed_date FROM sources")
            self._sources = {name: (bool(selection), feed_date) for name, selection, feed_date in rows}
        return self._sources

    def describe(self) -> dict[str, Any]:
        """Also each advisory ecosystem (`Debian:12`, `PyPI`) with its record count, the sources its records come
        from, their newest feed date and whether they are all selections."""
        with self._lock:
            meta = dict(self._query("SELECT key, value FROM meta"))
            source_rows = self._query(
                "SELECT name, kind, location, imported_at, record_count, skipped_count, last_modified, selection, "
                "feed_date FROM sources ORDER BY name"
            )
            total, withdrawn = self._query("SELECT count(*), count(withdrawn) FROM records")[0]
            kev_count = self._query("SELECT count(*) FROM kev")[0][0]
            epss_count = self._query("SELECT count(*) FROM epss")[0][0]
            coverage_rows: list[tuple[str, str, int, str]] = self._query(
                "SELECT base_ecosystem, ecosystem, records, feeds FROM coverage ORDER BY base_ecosystem, ecosystem"
            )
        sources = [
            {
                "name": name,
                "kind": kind,
                "location": location,
                "imported_at": imported_at,
                "record_count": record_count,
                "skipped_count": skipped_count,
                "last_modified": last_modified,
                "selection": bool(selection),
                "feed_date": feed_date,
            }
            for name, kind, location, imported_at, record_count, skipped_count, last_modified, selection, feed_date in (
                source_rows
            )
        ]
        by_name = {s["name"]: s for s in sources}
        ecosystems: dict[str, dict[str, Any]] = {}
        for base, ecosystem, records, feeds in coverage_rows:
            entry = ecosystems.setdefault(
                ecosystem, {"ecosystem": ecosystem, "base": base, "records": 0, "sources": []}
            )
            entry["records"] += records  # a record has one source: the rows of one ecosystem add up exactly
            entry["sources"] = sorted({*entry["sources"], *orjson.loads(feeds)})
        for entry in ecosystems.values():
            known = [by_name[name] for name in entry["sources"] if name in by_name]
            entry["feed_date"] = max((s["feed_date"] for s in known), default="")
            entry["selection"] = bool(known) and all(s["selection"] for s in known)
        return {
            "path": str(self.path),
            "format_version": FORMAT_VERSION,
            "osv_schema_sha256": meta.get("osv_schema_sha256", ""),
            "sources": sources,
            "ecosystems": list(ecosystems.values()),
            "total_records": total,
            "withdrawn_records": withdrawn,
            "kev": {
                "catalog_version": meta.get("kev_catalog_version", ""),
                "date_released": meta.get("kev_date_released", ""),
                "imported_at": meta.get("kev_imported_at", ""),
                "entries": kev_count,
            },
            "epss": {
                "score_date": meta.get("epss_score_date", ""),
                "model_version": meta.get("epss_model_version", ""),
                "imported_at": meta.get("epss_imported_at", ""),
                "scores": epss_count,
            },
        }
