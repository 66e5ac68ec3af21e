"""The CVE Program's bulk archive of its list (CVEProject/cvelistV5): found through the repository's latest GitHub
release and read as CVE JSON 5 records.

Every release of cvelistV5 carries the day's baseline as an asset named `<YYYY-MM-DD>_all_CVEs_at_midnight.zip.zip`:
a zip holding one zip (`cves.zip`) of `cves/<year>/<n>xxx/CVE-<year>-<n>.json`. The release document
(`/repos/CVEProject/cvelistV5/releases/latest`) names the asset's `browser_download_url`; that URL is accepted only
on GitHub's hosts over https (or, for a mirror, on the release document's own server), since the release document
is as untrusted as any feed. The inner zip is copied to disk in chunks with a size bound (it is hundreds of MB,
far too large for memory) and its records read one member at a time.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import orjson

from scanner.vulndb import cve5
from scanner.vulndb.errors import FeedError
from scanner.vulndb.readers import MAX_DOCUMENT_BYTES, Document, Item, Unreadable, parse_document

DEFAULT_RELEASE_URL = "https://api.github.com/repos/CVEProject/cvelistV5/releases/latest"
ASSET_HOSTS = frozenset({"github.com", "objects.githubusercontent.com"})
MAX_RELEASE_BYTES = 16 << 20  # the release document: a few kB per asset
MAX_ASSETS = 1000
# The archive is ~0.5 GB today and grows by a few percent a year; the bound leaves room and still stops a runaway.
MAX_ARCHIVE_BYTES = 4 << 30
MAX_INNER_BYTES = 4 << 30
MAX_MEMBERS = 2_000_000  # ~300,000 CVE records today
MAX_RECORD_BYTES = min(MAX_DOCUMENT_BYTES, 16 << 20)  # the largest CVE records are a few hundred kB
CHUNK_BYTES = 1 << 20

_ASSET = re.compile(r"^(\d{4}-\d{2}-\d{2})_all_CVEs_at_midnight\.zip(?:\.zip)?$")
_RECORD = re.compile(r"^CVE-\d{4}-\d{4,}\.json$")


@dataclass(frozen=True)
class Asset:
    name: str
    url: str
    date: str  # YYYY-MM-DD: the midnight (UTC) the archive is of


def _allowed(url: str, release_url: str) -> bool:
    parts, release = urlsplit(url), urlsplit(release_url)
    if parts.scheme == "https" and (parts.hostname or "") in ASSET_HOSTS:
        return True
    # A mirror serves the release document and the archive from the same server (`ACRGUARD_CVE_RELEASE_URL`).
    mirror = urlsplit(DEFAULT_RELEASE_URL).netloc != release.netloc
    return mirror and (parts.scheme, parts.netloc) == (release.scheme, release.netloc)


def latest_asset(raw: bytes, release_url: str) -> Asset:
    """The bulk archive named by a GitHub release document; FeedError naming the problem when there is none."""
    try:
        doc: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FeedError(f"{release_url}: not a GitHub release document: {exc}") from exc
    assets = doc.get("assets") if isinstance(doc, dict) else None
    if not isinstance(assets, list):
        raise FeedError(f"{release_url}: not a GitHub release document: no assets list")
    for asset in assets[:MAX_ASSETS]:
        name = asset.get("name") if isinstance(asset, dict) else None
        if not isinstance(name, str) or (match := _ASSET.match(name)) is None:
            continue
        url = asset.get("browser_download_url")
        if not isinstance(url, str) or not url:
            raise FeedError(f"{release_url}: asset {name} has no browser_download_url")
        if not _allowed(url, release_url):
            raise FeedError(
                f"{release_url}: asset {name} is at {url[:200]!r}, not on {', '.join(sorted(ASSET_HOSTS))} over https"
            )
        return Asset(name, url, match.group(1))
    raise FeedError(f"{release_url}: the release has no <date>_all_CVEs_at_midnight.zip.zip asset")


def _open(path: Path, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise FeedError(f"{label}: not a readable zip archive ({exc})") from exc


def _is_record(name: str) -> bool:
    return _RECORD.match(PurePosixPath(name).name) is not None


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, directory: Path, label: str) -> Path:
    """The inner zip copied to a temporary file in `directory`, in chunks, bounded by MAX_INNER_BYTES."""
    if info.file_size > MAX_INNER_BYTES:
        raise FeedError(f"{label}: {info.filename} is {info.file_size} bytes, over the {MAX_INNER_BYTES} byte limit")
    handle, name = tempfile.mkstemp(prefix=".acrguard-cves-", suffix=".zip", dir=directory)
    path = Path(name)
    try:
        with archive.open(info) as source, open(handle, "wb") as out:
            size = 0
            while chunk := source.read(CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_INNER_BYTES:  # the header may lie: count what really comes out
                    raise FeedError(f"{label}: {info.filename} is over the {MAX_INNER_BYTES} byte limit")
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        path.unlink(missing_ok=True)
        raise FeedError(f"{label}: corrupt zip member {info.filename} ({exc})") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def archive_records(path: Path, label: str, directory: Path) -> Iterator[Iterator[Item]]:
    """The CVE records of a downloaded bulk archive: the zip holding `cves.zip`, or a zip of the `cves/` tree
    itself. The inner zip is extracted into `directory` for the block's duration."""
    with _open(path, label) as outer:
        members = [i for i in outer.infolist() if not i.is_dir()]
        if any(_is_record(i.filename) for i in members):
            inner_path = None
        else:
            zips = [i for i in members if i.filename.lower().endswith(".zip")]
            if len(zips) != 1:
                raise FeedError(f"{label}: neither CVE records nor a single zip of them in the archive")
            inner_path = _extract(outer, zips[0], directory, label)
    try:
        yield _records(inner_path or path, label)
    finally:
        if inner_path is not None:
            inner_path.unlink(missing_ok=True)


def _records(path: Path, label: str) -> Iterator[Item]:
    with _open(path, label) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise FeedError(f"{label}: {len(infos)} members, over the limit of {MAX_MEMBERS}")
        for info in infos:
            if info.is_dir() or not _is_record(info.filename):
                continue  # the tree's delta.json and deltaLog.json, a README: not records
            if info.file_size > MAX_RECORD_BYTES:
                yield Unreadable(info.filename, f"{info.file_size} bytes, over the {MAX_RECORD_BYTES} byte limit")
                continue
            try:
                with archive.open(info) as member:
                    raw = member.read(MAX_RECORD_BYTES + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
                # A damaged archive (truncated download, bad CRC) is not a bad record: stop the whole feed.
                raise FeedError(f"{label}: corrupt zip member {info.filename} ({exc})") from exc
            if len(raw) > MAX_RECORD_BYTES:
                yield Unreadable(info.filename, f"over the {MAX_RECORD_BYTES} byte limit")
                continue
            try:
                data = parse_document(info.filename, raw)
            except ValueError as exc:
                yield Unreadable(info.filename, str(exc))
                continue
            if not cve5.is_cve_record(data):
                # Only CVE records come from this feed: anything else (an OSV record, say) is not imported from it.
                yield Unreadable(info.filename, "not a CVE JSON 5 record (dataType CVE_RECORD)")
                continue
            member_path = PurePosixPath(info.filename)
            date = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format(*info.date_time)
            yield Document(info.filename, data, member_path.parent.name, member_path.stem, date)
