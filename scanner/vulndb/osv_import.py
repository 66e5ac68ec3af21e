"""`acrguard db import`: OSV records, Alpine/Wolfi/Chainguard secdb documents, Amazon Linux updateinfo and Oracle
OVAL feeds, CVE JSON 5 records and NVD's CVE records (their CVSS only, `cve5`, `nvd`), from directories, zips, files
and URLs.

Every OSV record is validated against the OSV schema; one that fails (or does not parse) is skipped, counted and
named in the result's warnings, and the import goes on. Records acrguard converts from vendor feeds (`converted`)
name ecosystems OSV does not know, so they are checked by `converted.check_record` instead and written directly.
A source that cannot be read as a whole (missing, a corrupt zip, a failed download) raises `FeedError` and its
transaction is rolled back; sources imported before it stay.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from scanner.vulndb import cve5, exploitation, nvd, secdb
from scanner.vulndb.converted import Converted, check_record
from scanner.vulndb.db_writer import DatabaseWriter, SourceRow, SourceSession, utc_now, writer_lock
from scanner.vulndb.download import fetch, is_url
from scanner.vulndb.errors import FeedError
from scanner.vulndb.readers import (
    MAX_DOCUMENT_BYTES,
    Document,
    Item,
    Unreadable,
    is_json_feed,
    iter_tree,
    iter_zip,
    looks_like_xml_feed,
    read_file,
    read_json_feed,
    read_xml,
    sniff_document,
)
from scanner.vulndb.schema import OsvValidator, osv_validator
from scanner.vulndb.sqlite_db import modified_key

WARNING_CAP = 50  # per source: enough to see what is wrong, not a flood when a whole feed is bad
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class SourceSpec:
    location: str  # a directory, a zip or JSON/YAML file, or an http(s) URL
    name: str | None = None  # as listed in `db info`; default: the absolute path or the URL
    selection: bool = False  # holds only a selection of its feed: finding nothing in it proves nothing
    feed_date: str | None = None  # RFC 3339, when the caller knows the feed's date (db_writer says the rule)


@dataclass
class ImportResult:
    name: str
    kind: str
    location: str
    records: int = 0  # valid OSV and converted vendor records read, plus ALPINE-<CVE> records of its secdb rows
    skipped: int = 0
    written: int = 0
    kept: int = 0  # a newer copy was already in the database
    removed: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    more_warnings: int = 0  # beyond WARNING_CAP

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.warn(reason)

    def warn(self, reason: str) -> None:
        if len(self.warnings) < WARNING_CAP:
            self.warnings.append(reason)
        else:
            self.more_warnings += 1


@dataclass(frozen=True)
class Opened:
    kind: str  # directory | zip | file | url
    location: str
    items: Iterable[Item]
    etag: str | None = None
    last_modified: str | None = None


def _http_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return None


def download_items(url: str, path: Path, last_modified: str | None, release_hint: str | None = None) -> Iterator[Item]:
    with path.open("rb") as head:
        magic = head.read(4)
    if magic in ZIP_MAGIC:
        yield from iter_zip(path, url)
        return
    member = PurePosixPath(urlsplit(url).path)
    if is_json_feed(member.name, path.stat().st_size):
        yield read_json_feed(path, member.name or url)
        return
    if looks_like_xml_feed(path):
        yield read_xml(path, member.name or url, release_hint)
        return
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        yield Unreadable(member.name, f"over the {MAX_DOCUMENT_BYTES} byte limit of one document")
        return
    try:
        data = sniff_document(member.name, path.read_bytes())
    except ValueError as exc:
        yield Unreadable(member.name, str(exc))
        return
    yield Document(member.name or url, data, member.parent.name, member.stem, _http_date(last_modified) or utc_now())


@contextmanager
def open_source(location: str, scratch_dir: Path) -> Iterator[Opened]:
    """The items of a source, whatever its form; downloads go to `scratch_dir` and are deleted afterwards."""
    if is_url(location):
        with fetch(location, scratch_dir) as fetched:
            assert fetched.path is not None  # an unconditional request never gets 304
            yield Opened(
                "url",
                location,
                download_items(location, fetched.path, fetched.last_modified),
                fetched.etag,
                fetched.last_modified,
            )
        return
    path = Path(location).expanduser()
    if path.is_dir():
        yield Opened("directory", str(path.resolve()), iter_tree(path))
        return
    if not path.is_file():
        raise FeedError(f"{location}: no such file, directory or URL")
    try:
        with path.open("rb") as head:
            magic = head.read(4)
    except OSError as exc:
        raise FeedError(f"{location}: {exc.strerror or exc}") from exc
    if magic in ZIP_MAGIC or path.suffix.lower() == ".zip":
        yield Opened("zip", str(path.resolve()), iter_zip(path, location))
    else:
        yield Opened("file", str(path.resolve()), [read_file(path, path.name)])


class Importer:
    """Reads sources into a `DatabaseWriter`, one transaction each."""

    def __init__(self, writer: DatabaseWriter, validator: OsvValidator | None = None) -> None:
        self.writer = writer
        self.validator = validator or osv_validator()
        writer.set_meta("osv_schema_sha256", self.validator.info.sha256)

    def import_source(self, spec: SourceSpec, scratch_dir: Path) -> ImportResult:
        path = Path(spec.location).expanduser()
        kind = None if is_url(spec.location) or not path.is_file() else exploitation.sniff(path)
        if kind is not None:
            return self.import_exploitation(kind, path, spec.name)
        with open_source(spec.location, scratch_dir) as opened:
            return self.import_items(
                spec.name or opened.location,
                opened.kind,
                opened.location,
                opened.items,
                etag=opened.etag,
                last_modified=opened.last_modified,
                selection=spec.selection,
                feed_date=spec.feed_date,
            )

    def import_items(
        self,
        name: str,
        kind: str,
        location: str,
        items: Iterable[Item],
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        selection: bool = False,
        feed_date: str | None = None,
    ) -> ImportResult:
        started = time.perf_counter()
        result = ImportResult(name, kind, location)
        with self.writer.source(name) as session:
            for item in items:
                session.note_item(None if isinstance(item, Unreadable) else item.date)
                self._ingest(session, item, result)
            session.finish()
            stats = session.stats
            result.records += stats.secdb_records
            result.written, result.kept, result.removed = stats.written, stats.kept, stats.removed
            self.writer.record_source(
                SourceRow(
                    name, kind, location, result.records, result.skipped, etag, last_modified, selection, feed_date
                )
            )
        result.seconds = time.perf_counter() - started
        return result

    def import_exploitation(self, kind: exploitation.Kind, path: Path, name: str | None = None) -> ImportResult:
        """A KEV catalog or an EPSS file: replaces the whole stored set, or raises FeedError and changes nothing."""
        started = time.perf_counter()
        result = ImportResult(name or str(path.resolve()), kind, str(path.resolve()))
        if kind == "kev":
            catalog = exploitation.parse_kev(exploitation.read_bounded(path, exploitation.MAX_KEV_BYTES), str(path))
            self.writer.replace_kev(catalog)
            result.records = result.written = len(catalog.entries)
        else:
            scores = exploitation.parse_epss(exploitation.read_bounded(path, exploitation.MAX_EPSS_BYTES), str(path))
            self.writer.replace_epss(scores)
            result.records = result.written = len(scores.rows)
        result.seconds = time.perf_counter() - started
        return result

    def _ingest(self, session: SourceSession, item: Item, result: ImportResult) -> None:
        if isinstance(item, Unreadable):
            result.skip(f"{item.origin}: {item.reason}")
            return
        data = item.data
        if isinstance(data, Converted):
            self._converted(session, data, item.origin, result)
            return
        if cve5.is_cve_record(data):
            self._converted(session, cve5.convert(data, item.origin), item.origin, result)
            return
        if nvd.is_document(data):
            self._converted(session, nvd.convert_document(data, item.origin), item.origin, result)
            return
        distribution = secdb.apk_distribution(data) if secdb.is_secdb(data) else None
        if distribution is not None:
            try:
                converted = secdb.convert_rolling(
                    data, distribution, origin=item.origin, modified=item.date or utc_now()
                )
            except ValueError as exc:
                result.skip(str(exc))
                return
            self._converted(session, converted, item.origin, result)
            return
        if secdb.is_secdb(data):
            try:
                doc = secdb.parse_secdb(data, origin=item.origin, parent_name=item.parent_name, stem=item.stem)
            except ValueError as exc:
                result.skip(str(exc))
                return
            session.set_secdb_unit(doc, item.date or utc_now())
            result.skipped += doc.skipped
            for warning in doc.warnings:
                result.warn(warning)
            return
        if isinstance(data, list):  # some publishers put several records in one file (curl's vuln.json)
            for index, record in enumerate(data):
                self._record(session, record, f"{item.origin}[{index}]", result)
        else:
            self._record(session, data, item.origin, result)

    def _converted(self, session: SourceSession, converted: Converted, origin: str, result: ImportResult) -> None:
        """Records acrguard converted from a vendor feed: checked (not OSV-validated), then written."""
        result.skipped += converted.skipped
        for warning in converted.warnings:
            result.warn(warning)
        for record in converted.records:
            label = f"{record.get('id')} ({origin})"
            # CVE and NVD records have, by design, no affected entries
            error = cve5.check(record) if converted.kind in (cve5.KIND, nvd.KIND) else check_record(record)
            key = modified_key(record["modified"]) if error is None else None
            if error is not None or key is None:
                result.skip(f"{label}: not written: {error or 'bad modified time'}")
                continue
            session.add_record(record, key)
            result.records += 1

    def _record(self, session: SourceSession, record: Any, origin: str, result: ImportResult) -> None:
        if not isinstance(record, dict):
            result.skip(f"{origin}: neither an OSV record nor an Alpine secdb document")
            return
        error = self.validator.error(record)
        record_id = record.get("id")
        label = f"{record_id} ({origin})" if isinstance(record_id, str) else origin
        if error is not None:
            result.skip(f"{label}: not a valid OSV record: {error}")
            return
        key = modified_key(record["modified"])
        if key is None:
            result.skip(f"{label}: modified {record['modified']!r} is not an RFC 3339 UTC time")
            return
        session.add_record(record, key)
        result.records += 1


def import_sources(
    db_path: Path,
    sources: Sequence[str | SourceSpec],
    *,
    selection: bool = False,
    starting: Callable[[int, str], None] | None = None,
) -> list[ImportResult]:
    """Import each source into the database at `db_path` (created if missing), in order, one transaction each;
    `selection` marks the sources given as locations as selections of their feeds. `starting(index, location)` is
    told before each source (the CLI's progress display)."""
    specs = [s if isinstance(s, SourceSpec) else SourceSpec(s, selection=selection) for s in sources]
    results: list[ImportResult] = []
    with writer_lock(db_path), DatabaseWriter(db_path) as writer:
        importer = Importer(writer)
        for index, spec in enumerate(specs):
            if starting is not None:
                starting(index, str(spec.location))
            results.append(importer.import_source(spec, db_path.parent))
    return results
