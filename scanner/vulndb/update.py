"""`acrguard db update`: the osv.dev ecosystem archives (`<base>/<Ecosystem>/all.zip`) and the vendor feeds osv.dev
does not carry (`VENDOR_FEEDS`: Amazon Linux ALAS, Oracle Linux ELSA, Wolfi and Chainguard secdb), fetched
conditionally.

Amazon publishes its advisories per repository, as yum metadata: the repository's mirror list names mirrors, each
mirror's `repodata/repomd.xml` names the `updateinfo` file (its name carries its checksum), as yum itself and
trivy's vuln-list-update read them. The mirror list and repomd.xml are small and fetched every time; the
updateinfo file, like every other feed, conditionally.

The ETag and Last-Modified of each archive imported are kept in the `sources` table and sent back
(If-None-Match, If-Modified-Since): an unchanged feed answers 304 and is neither downloaded nor re-imported.

All or nothing: the first changed feed makes a copy of the database aside (same directory, SQLite backup API, so a
concurrent reader's view is consistent), every changed feed is imported into the copy, and only when all of them
succeeded is the copy renamed over the database (`os.replace`, atomic). A failed download, an HTTP error or a
corrupt archive deletes the copy: the database stays exactly as it was, and scans reading it are never disturbed.

The CVE feeds (`SIGNAL_FEEDS`): CISA's KEV catalog and FIRST's EPSS scores (small, republished daily: fetched by
default) replace the whole set held; the CVE Program's bulk archive (`cve_archive`: ~0.5 GB, a new file every
day) is fetched only when named (`--feed cve`), its records imported as `db import` imports CVE JSON 5 records.
Each has a `sources` row (ETag, Last-Modified, its date) like every other feed.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from scanner.ecosystems.catalog import default_archives
from scanner.vulndb import cve_archive, exploitation
from scanner.vulndb.db_writer import DatabaseWriter, SourceRow, writer_lock
from scanner.vulndb.download import fetch
from scanner.vulndb.errors import FeedError
from scanner.vulndb.osv_import import Importer, ImportResult, download_items
from scanner.vulndb.readers import Item, Unreadable, is_advisory_file, iter_zip
from scanner.vulndb.sqlite_db import OutdatedFormatError, check_format
from scanner.vulndb.xmlstream import local

DEFAULT_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
# The archives of the ecosystems whose records name one (scanner.ecosystems), in their order.
DEFAULT_ECOSYSTEMS = default_archives()
SOURCE_KIND = "osv-archive"
VENDOR_KIND = "vendor-feed"
MIRROR_LIST = "yum-mirrorlist"  # `url` is a yum mirror list; the feed is the updateinfo of the first mirror serving it
DOCUMENT = "document"  # `url` is the feed itself
MAX_METADATA_BYTES = 16 << 20  # a mirror list or repomd.xml (both a few kB)
MAX_MIRRORS = 8
CVE_KIND = "cve-archive"


@dataclass(frozen=True)
class VendorFeed:
    name: str  # the source's name in the database (`db info`): `alas:2`, `elsa:8`, `secdb:wolfi`
    url: str
    kind: str = DOCUMENT
    release: str | None = None  # the release the feed is of, for advisories whose id does not say


VENDOR_FEEDS: tuple[VendorFeed, ...] = (
    VendorFeed("alas:2", "https://cdn.amazonlinux.com/2/core/latest/x86_64/mirror.list", MIRROR_LIST, "2"),
    VendorFeed(
        "alas:2023", "https://cdn.amazonlinux.com/al2023/core/mirrors/latest/x86_64/mirror.list", MIRROR_LIST, "2023"
    ),
    *(
        VendorFeed(f"elsa:{n}", f"https://linux.oracle.com/security/oval/com.oracle.elsa-ol{n}.xml.bz2")
        for n in (7, 8, 9)
    ),
    VendorFeed("secdb:wolfi", "https://packages.wolfi.dev/os/security.json"),
    VendorFeed("secdb:chainguard", "https://packages.cgr.dev/chainguard/security.json"),
)


DEFAULT_KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
DEFAULT_EPSS_URL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
SIGNAL_FEEDS = ("kev", "epss", "cve")  # their names, as `--feed` and the `sources` table say them
# The bulk CVE archive is not a default: hundreds of MB downloaded again every day (its name changes daily, so no
# conditional request saves it) and ~300,000 records imported, for a rating OSV's records mostly carry already.
DEFAULT_SIGNAL_FEEDS = ("kev", "epss")


@dataclass(frozen=True)
class SignalUrls:
    """Where the CVE feeds are fetched from (None: the public one), for tests and air-gapped mirrors."""

    kev: str | None = None
    epss: str | None = None
    cve_release: str | None = None  # the GitHub release document naming the bulk archive

    def of(self, name: str) -> str:
        chosen = {"kev": self.kev, "epss": self.epss, "cve": self.cve_release}[name]
        default = {"kev": DEFAULT_KEV_URL, "epss": DEFAULT_EPSS_URL, "cve": cve_archive.DEFAULT_RELEASE_URL}[name]
        return chosen or default


@dataclass(frozen=True)
class FeedOutcome:
    ecosystem: str  # the osv.dev ecosystem, or the vendor feed's name
    url: str
    result: ImportResult | None  # None: 304 Not Modified
    downloaded_bytes: int = 0
    source: str = ""  # the source's name in the database

    @property
    def name(self) -> str:
        return self.source or source_name(self.ecosystem)


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


@dataclass(frozen=True)
class Held:
    etag: str | None = None
    last_modified: str | None = None
    count: int = 0
    location: str = ""


def _held(db_path: Path) -> dict[str, Held]:
    """Per source: ETag, Last-Modified, record count and URL of the copy in the database (nothing if no database)."""
    if not db_path.is_file():
        return {}
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise FeedError(f"{db_path}: cannot open vulnerability database ({exc})") from exc
    try:
        check_format(conn, db_path)
        rows = conn.execute("SELECT name, etag, last_modified, record_count, location FROM sources").fetchall()
    except sqlite3.Error as exc:
        raise FeedError(f"{db_path}: vulnerability database unreadable ({exc})") from exc
    finally:
        conn.close()
    return {name: Held(etag, last_modified, count, location) for name, etag, last_modified, count, location in rows}


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


def _small(url: str, directory: Path) -> bytes:
    with fetch(url, directory, max_bytes=MAX_METADATA_BYTES) as fetched:
        assert fetched.path is not None  # an unconditional request never gets 304
        return fetched.path.read_bytes()


def _repomd_updateinfo(raw: bytes, url: str) -> str:
    """The `updateinfo` location of a repomd.xml: a path relative to the mirror (never another host)."""
    try:
        root = fromstring(raw, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise FeedError(f"{url}: not a readable repomd.xml ({type(exc).__name__}: {exc})") from exc
    for data in root:
        if local(data.tag) == "data" and data.get("type") == "updateinfo":
            location = next((c for c in data if local(c.tag) == "location"), None)
            href = location.get("href", "") if location is not None else ""
            parts = urlsplit(href)
            if not href or parts.scheme or parts.netloc or ".." in href.split("/") or href.startswith("/"):
                raise FeedError(f"{url}: updateinfo location {href[:200]!r} is not a path in the repository")
            return href
    raise FeedError(f"{url}: no updateinfo in the repository metadata")


def updateinfo_url(mirror_list_url: str, directory: Path) -> str:
    """The updateinfo file of a yum repository: mirror list → the first mirror whose repomd.xml names one."""
    raw = _small(mirror_list_url, directory)
    mirrors = [
        line.strip()
        for line in raw.decode("utf-8", "replace").splitlines()
        if line.strip().startswith(("http://", "https://"))
    ][:MAX_MIRRORS]
    if not mirrors:
        raise FeedError(f"{mirror_list_url}: the mirror list names no mirror")
    failures: list[str] = []
    for mirror in mirrors:
        base = mirror.rstrip("/")
        repomd = f"{base}/repodata/repomd.xml"
        try:
            return f"{base}/{_repomd_updateinfo(_small(repomd, directory), repomd)}"
        except FeedError as exc:
            failures.append(str(exc))
    raise FeedError(f"{mirror_list_url}: no mirror serves an updateinfo ({failures[-1]})")


def _vendor_items(url: str, path: Path, last_modified: str | None, feed: VendorFeed) -> list[Item]:
    items = list(download_items(url, path, last_modified, feed.release))
    for item in items:
        if isinstance(item, Unreadable):
            # A vendor feed is one document: unreadable, it is a broken feed, not a bad record.
            raise FeedError(f"{url}: {item.origin}: {item.reason}")
    return items


@dataclass
class _Run:
    """The update under way: the copy aside and its writer, made when the first feed changed."""

    db_path: Path
    rebuild: bool = False  # the file is of an older format: start from an empty database, not a copy
    aside: Path | None = None
    writer: DatabaseWriter | None = None

    def open(self) -> DatabaseWriter:
        if self.writer is None:
            self.aside = _copy_aside(self.db_path, fresh=self.rebuild)
            self.writer = DatabaseWriter(self.aside, scratch=True)
        return self.writer

    def importer(self) -> Importer:
        return Importer(self.open())


def update(
    db_path: Path,
    ecosystems: Sequence[str] | None = None,
    *,
    base: str | None = None,
    feeds: Sequence[VendorFeed] | None = None,
    signals: Sequence[str] | None = None,
    signal_urls: SignalUrls | None = None,
    progress: Callable[[FeedOutcome], None] | None = None,
) -> UpdateReport:
    """Bring the osv.dev archives of `ecosystems`, the vendor `feeds` and the CVE feeds named in `signals`
    (SIGNAL_FEEDS) in `db_path` up to date. None named: DEFAULT_ECOSYSTEMS, VENDOR_FEEDS and DEFAULT_SIGNAL_FEEDS;
    some named: only those."""
    if ecosystems is None and feeds is None and signals is None:
        ecosystems, feeds, signals = DEFAULT_ECOSYSTEMS, VENDOR_FEEDS, DEFAULT_SIGNAL_FEEDS
    unknown = [name for name in signals or () if name not in SIGNAL_FEEDS]
    if unknown:
        raise FeedError(f"unknown feed {unknown[0][:40]!r} (CVE feeds: {', '.join(SIGNAL_FEEDS)})")
    urls = signal_urls or SignalUrls()
    root = base_url(base)
    report = UpdateReport(db_path)
    with writer_lock(db_path):
        try:
            held, rebuild = _held(db_path), False
        except OutdatedFormatError:  # written by an older acrguard: rebuilt from the feeds, as if new
            held, rebuild = {}, True
        run = _Run(db_path, rebuild)
        try:
            for outcome in _archives(run, held, root, dict.fromkeys(ecosystems or ())):
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)
            for outcome in _vendor(run, held, {f.name: f for f in feeds or ()}.values()):
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)
            for name in dict.fromkeys(signals or ()):
                try:
                    outcome = _signal(run, held.get(name, Held()), name, urls.of(name))
                except FeedError as exc:
                    raise FeedError(f"feed {name}: {exc}") from exc
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)
            if run.writer is not None and run.aside is not None:
                run.writer.close()
                run.writer = None
                try:
                    _fsync(run.aside)
                    os.replace(run.aside, db_path)
                    run.aside = None
                    _fsync(db_path.parent)  # the rename itself survives a crash
                except OSError as exc:
                    raise FeedError(f"{db_path}: cannot replace the database ({exc.strerror or exc})") from exc
                report.replaced = True
        finally:
            if run.writer is not None:
                run.writer.close()
            if run.aside is not None:
                run.aside.unlink(missing_ok=True)
    return report


def _archives(run: _Run, held: dict[str, Held], root: str, ecosystems: Iterable[str]) -> Iterable[FeedOutcome]:
    for ecosystem in ecosystems:
        name, url = source_name(ecosystem), feed_url(root, ecosystem)
        have = held.get(name, Held())
        with fetch(url, run.db_path.parent, etag=have.etag, last_modified=have.last_modified) as fetched:
            if fetched.path is None:
                yield FeedOutcome(ecosystem, url, None, source=name)
                continue
            if have.count and not _advisory_members(fetched.path, url):
                # An empty archive would remove every record of the ecosystem: a publishing accident
                # is far likelier than an ecosystem without a single advisory.
                raise FeedError(f"{url}: archive holds no records; keeping the {have.count} held")
            result = run.importer().import_items(
                name,
                SOURCE_KIND,
                url,
                iter_zip(fetched.path, url),
                etag=fetched.etag,
                last_modified=fetched.last_modified,
            )
            outcome = FeedOutcome(ecosystem, url, result, fetched.size, source=name)
        yield outcome


def _vendor(run: _Run, held: dict[str, Held], feeds: Iterable[VendorFeed]) -> Iterable[FeedOutcome]:
    for feed in feeds:
        url = updateinfo_url(feed.url, run.db_path.parent) if feed.kind == MIRROR_LIST else feed.url
        have = held.get(feed.name, Held())
        # Validators only for the same file: a new updateinfo has a new name, and its date says nothing of it.
        etag, last_modified = (have.etag, have.last_modified) if have.location == url else (None, None)
        with fetch(url, run.db_path.parent, etag=etag, last_modified=last_modified) as fetched:
            if fetched.path is None:
                yield FeedOutcome(feed.name, url, None, source=feed.name)
                continue
            items = _vendor_items(url, fetched.path, fetched.last_modified, feed)
            result = run.importer().import_items(
                feed.name, VENDOR_KIND, url, items, etag=fetched.etag, last_modified=fetched.last_modified
            )
            if have.count and not result.records:
                # As for an empty archive: a feed that suddenly converts to nothing is broken, not all fixed.
                raise FeedError(f"{url}: feed holds no advisories; keeping the {have.count} held")
            outcome = FeedOutcome(feed.name, url, result, fetched.size, source=feed.name)
        yield outcome


def _signal(run: _Run, have: Held, name: str, url: str) -> FeedOutcome:
    if name == "cve":
        return _cve(run, have, url)
    limit = exploitation.MAX_KEV_BYTES if name == "kev" else exploitation.MAX_EPSS_BYTES
    # Validators only for the same server: a mirror newly configured owes nothing to the old one's ETag.
    etag, last_modified = (have.etag, have.last_modified) if have.location == url else (None, None)
    with fetch(url, run.db_path.parent, etag=etag, last_modified=last_modified, max_bytes=limit) as got:
        if got.path is None:
            return FeedOutcome(name, url, None, source=name)
        raw = exploitation.read_bounded(got.path, limit)
    started = time.perf_counter()
    # Parsed whole before the database is touched: a broken file never even makes the copy aside.
    parsed = exploitation.parse_kev(raw, url) if name == "kev" else exploitation.parse_epss(raw, url)
    if isinstance(parsed, exploitation.KevCatalog):
        count, date = len(parsed.entries), parsed.released
    else:
        count, date = len(parsed.rows), f"{parsed.score_date}T00:00:00Z"
    if have.count and not count:  # as for an empty archive: a publishing accident, not every CVE harmless
        raise FeedError(f"{url}: the file lists nothing; keeping the {have.count} held")
    writer = run.open()
    if isinstance(parsed, exploitation.KevCatalog):
        writer.replace_kev(parsed)
    else:
        writer.replace_epss(parsed)
    # The `sources` row, for the validators and the feed's date (`db info`). Its own transaction: the copy aside
    # is all or nothing anyway.
    with writer.source(name) as session:
        session.finish()
        writer.record_source(SourceRow(name, name, url, count, 0, got.etag, got.last_modified, feed_date=date))
    result = ImportResult(name, name, url, records=count, written=count, seconds=time.perf_counter() - started)
    return FeedOutcome(name, url, result, got.size, source=name)


def _cve(run: _Run, have: Held, release_url: str) -> FeedOutcome:
    directory = run.db_path.parent
    asset = cve_archive.latest_asset(_small(release_url, directory), release_url)
    # Validators only for the same file: the next day's archive has a new name.
    etag, last_modified = (have.etag, have.last_modified) if have.location == asset.url else (None, None)
    with fetch(
        asset.url, directory, etag=etag, last_modified=last_modified, max_bytes=cve_archive.MAX_ARCHIVE_BYTES
    ) as got:
        if got.path is None:
            return FeedOutcome("cve", asset.url, None, source="cve")
        with cve_archive.archive_records(got.path, asset.url, directory) as items:
            result = run.importer().import_items(
                "cve",
                CVE_KIND,
                asset.url,
                items,
                etag=got.etag,
                last_modified=got.last_modified,
                feed_date=f"{asset.date}T00:00:00Z",
            )
        if have.count and not result.records:
            raise FeedError(f"{asset.url}: archive holds no CVE records; keeping the {have.count} held")
        return FeedOutcome("cve", asset.url, result, got.size, source="cve")
