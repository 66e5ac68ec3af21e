"""Reading advisory documents (OSV records, Alpine/Wolfi secdb, yum updateinfo, OVAL) out of directory trees,
zips and single files.

Each reader yields `Document`s (parsed JSON or YAML with where it came from; for the XML feeds, the `Converted`
records of the whole document) or `Unreadable`s (a file that does not parse: skipped and counted by the importer,
never fatal). A container that cannot be read at all (a corrupt zip, an unreadable directory) raises `FeedError`:
that aborts the source.

XML feeds (`updateinfo.xml`, `.xml.gz`; OVAL `.xml`, `.xml.bz2`) are told apart by their root element and read as
a bounded, defused stream (`xmlstream`); their size bound is `MAX_XML_BYTES` decompressed, since Oracle's OVAL of
one release is far larger than any one JSON document.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import yaml

from scanner.vulndb import nvd
from scanner.vulndb.alas import parse_updateinfo
from scanner.vulndb.converted import Converted
from scanner.vulndb.errors import FeedError
from scanner.vulndb.oval import parse_oval
from scanner.vulndb.xmlstream import BZIP2_MAGIC, GZIP_MAGIC, MAX_XML_BYTES, BoundedStream, XmlFeedError, events, local

JSON_SUFFIXES = (".json",)
YAML_SUFFIXES = (".yaml", ".yml")
XML_SUFFIXES = (".xml", ".xml.gz", ".xml.bz2")
# One advisory document is a few kB; the largest osv.dev records are a few MB. Anything far larger in a zip is
# a bomb or a mistake, and reading it would only exhaust memory.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

_BaseSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _NoDatesLoader(_BaseSafeLoader):  # type: ignore[valid-type, misc]
    """Safe YAML without implicit timestamps: OSV's `modified: 2021-07-05T00:01:25Z` stays the string the author
    wrote (as osv.dev's own NoDatesSafeLoader does); a datetime would fail the schema's `type: string`."""


_NoDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseSafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Document:
    origin: str  # shown in warnings: a path relative to the source, or a zip member name
    data: Any
    # Where Alpine secdb documents say nothing about themselves, the layout does: `v3.11/main.yaml`.
    parent_name: str
    stem: str
    date: str | None  # RFC 3339 (UTC) time of the document: file mtime or zip entry time


@dataclass(frozen=True)
class Unreadable:
    origin: str
    reason: str


Item = Document | Unreadable


def parse_document(name: str, raw: bytes) -> Any:
    """JSON or YAML by file suffix (XML feeds: their `Converted` records); raises ValueError (json, yaml, XML and
    decoding errors alike)."""
    if is_xml_feed(name):
        return convert_xml(io.BytesIO(raw), name)
    if name.lower().endswith(YAML_SUFFIXES):
        try:
            return yaml.load(raw, Loader=_NoDatesLoader)
        except yaml.YAMLError as exc:
            raise ValueError(f"YAML: {' '.join(str(exc).split())}") from exc
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"JSON: {exc}") from exc


def sniff_document(name: str, raw: bytes) -> Any:
    """For downloads whose name may not say: JSON if it parses as JSON, else YAML."""
    if name.lower().endswith(YAML_SUFFIXES + JSON_SUFFIXES):
        return parse_document(name, raw)
    try:
        return parse_document("download.json", raw)
    except ValueError:
        return parse_document("download.yaml", raw)


def _rfc3339(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_advisory_file(name: str) -> bool:
    suffixes = JSON_SUFFIXES + YAML_SUFFIXES + XML_SUFFIXES + nvd.FEED_SUFFIXES
    return name.lower().endswith(suffixes) and not PurePosixPath(name).name.startswith(".")


def is_xml_feed(name: str) -> bool:
    return name.lower().endswith(XML_SUFFIXES)


def looks_like_xml_feed(path: Path) -> bool:
    """A download whose name may not say: gzip or bzip2 data, or text starting with `<`."""
    with path.open("rb") as handle:
        head = handle.read(256)
    return head.startswith((GZIP_MAGIC, BZIP2_MAGIC)) or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def convert_xml(raw: BinaryIO, origin: str, release_hint: str | None = None) -> Converted:
    """The records of an updateinfo or OVAL document (plain, gzip or bzip2). Raises `XmlFeedError` for a document
    that cannot be read to its end (bad compression or XML, over a bound), ValueError for one of another kind."""
    stream = events(BoundedStream(raw))
    for event, root in stream:
        if event != "start":
            continue
        kind = local(root.tag)
        if kind == "updates":
            return parse_updateinfo(stream, root, origin, release_hint)
        if kind == "oval_definitions":
            return parse_oval(stream, root, origin)
        raise ValueError(f"<{kind}> is neither a yum updateinfo nor an OVAL document")
    raise XmlFeedError("empty document")


def read_xml(path: Path, origin: str, release_hint: str | None = None) -> Item:
    """An XML feed file as a `Document` of its converted records, or `Unreadable` saying why in one line."""
    try:
        stat = path.stat()
        if stat.st_size > MAX_XML_BYTES:
            return Unreadable(origin, f"{stat.st_size} bytes, over the {MAX_XML_BYTES} byte limit")
        with path.open("rb") as raw:
            converted = convert_xml(raw, origin, release_hint)
    except OSError as exc:
        return Unreadable(origin, exc.strerror or str(exc))
    except ValueError as exc:  # XmlFeedError included
        return Unreadable(origin, str(exc))
    return Document(origin, converted, path.parent.name, path.stem, _rfc3339(stat.st_mtime))


def is_json_feed(name: str, size: int) -> bool:
    """A file streamed as an NVD feed (`nvd.read_feed`): gzip-compressed JSON, or JSON too large for one document."""
    lower = name.lower()
    return lower.endswith(nvd.FEED_SUFFIXES) or (lower.endswith(JSON_SUFFIXES) and size > MAX_DOCUMENT_BYTES)


def read_json_feed(path: Path, origin: str) -> Item:
    """A large or compressed JSON file as a `Document` of its NVD records, or `Unreadable` saying why in one line."""
    try:
        stat = path.stat()
        converted = nvd.read_feed_file(path, origin)
    except OSError as exc:
        return Unreadable(origin, exc.strerror or str(exc))
    except ValueError as exc:  # XmlFeedError included: the compression and size bounds
        big = not path.name.lower().endswith(nvd.FEED_SUFFIXES)
        prefix = f"over the {MAX_DOCUMENT_BYTES} byte limit of one document, and not an NVD feed: " if big else ""
        return Unreadable(origin, prefix + str(exc))
    return Document(origin, converted, path.parent.name, path.stem, _rfc3339(stat.st_mtime))


def read_file(path: Path, origin: str) -> Item:
    if is_xml_feed(path.name):
        return read_xml(path, origin)
    try:
        stat = path.stat()
        if is_json_feed(path.name, stat.st_size):
            return read_json_feed(path, origin)
        if stat.st_size > MAX_DOCUMENT_BYTES:
            return Unreadable(origin, f"{stat.st_size} bytes, over the {MAX_DOCUMENT_BYTES} byte limit")
        data = parse_document(path.name, path.read_bytes())
    except OSError as exc:
        return Unreadable(origin, exc.strerror or str(exc))
    except ValueError as exc:
        return Unreadable(origin, str(exc))
    return Document(origin, data, path.parent.name, path.stem, _rfc3339(stat.st_mtime))


def iter_tree(root: Path) -> Iterator[Item]:
    """Every JSON/YAML file under `root`, any depth, in a stable order; links to directories are not followed
    (a tree that links to itself would never end)."""

    def fail(exc: OSError) -> None:
        raise FeedError(f"{exc.filename}: {exc.strerror}") from exc

    for directory, subdirs, files in os.walk(root, onerror=fail):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if is_advisory_file(name):
                path = Path(directory, name)
                yield read_file(path, path.relative_to(root).as_posix())


def iter_zip(path: Path, label: str) -> Iterator[Item]:
    """The JSON/YAML members of an osv.dev-style `all.zip` (one record per member, at the root or below)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise FeedError(f"{label}: not a readable zip archive ({exc})") from exc
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not is_advisory_file(info.filename):
                continue
            member = PurePosixPath(info.filename)
            date = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format(*info.date_time)
            if is_json_feed(info.filename, info.file_size):  # NVD's nvdcve-2.0-<year>.json.zip holds one
                try:
                    with archive.open(info) as stream:
                        converted = nvd.read_feed(stream, info.filename)  # type: ignore[arg-type]
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
                    raise FeedError(f"{label}: corrupt zip member {info.filename} ({exc})") from exc
                except ValueError as exc:
                    yield Unreadable(info.filename, str(exc))
                    continue
                yield Document(info.filename, converted, member.parent.name, member.stem, date)
                continue
            if info.file_size > MAX_DOCUMENT_BYTES:
                yield Unreadable(info.filename, f"{info.file_size} bytes, over the {MAX_DOCUMENT_BYTES} byte limit")
                continue
            try:
                raw = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
                # A damaged archive (truncated download, bad CRC) is not a bad record: stop the whole source.
                raise FeedError(f"{label}: corrupt zip member {info.filename} ({exc})") from exc
            try:
                data = parse_document(info.filename, raw)
            except ValueError as exc:
                yield Unreadable(info.filename, str(exc))
                continue
            yield Document(info.filename, data, member.parent.name, member.stem, date)
