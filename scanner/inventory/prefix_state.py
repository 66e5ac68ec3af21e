"""A replay's state after the first layers of an image, as bytes: what the layer-prefix cache keeps
(`scanner.inventory.prefix_cache`) so that an image sharing those layers replays only the layers above them.

The state is everything `Analysis` carries from one layer to the next: the squashed tree (directories, links,
captured files with their contents, each node's layer), the detectors' last runs and per-file results, the
layer each package was first seen in, the OS so far, the links detectors want, the warnings so far, and the
counters the limits are checked against (bytes and members read, bytes captured). Restored into a fresh
`Analysis`, the replay of the layers above goes exactly as it would have gone in one pass.

One exception keeps states small: a file only per-file detectors want (every program of the image, read
by the Go and Rust detectors), whose result each of them already holds for this very content, is written
as its size alone. Such a detector never reads an unchanged file again; if anything else ever asks for its
bytes (an upper layer hard-linking it somewhere new), `PrefixContentMissing` is raised and the caller
replays from the first layer instead.

Layout: MAGIC, a 4-byte header length and a JSON header (format, layer blob digests, the diff_ids the
replay computed), an 8-byte body length and a JSON body, then the captured contents back to back.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from scanner.image.tree import Content, Tree, Unread
from scanner.image.tree_state import StateError, dump_tree, load_tree
from scanner.inventory.analysis import Analysis, Run
from scanner.inventory.detectors.base import Extraction
from scanner.inventory.detectors.plugins import DetectorRegistry
from scanner.model.types import Evidence, OSInfo, RawPackage, Warning_

MAGIC = b"acrguard-prefix1"
FORMAT = 1
_EVIDENCES = frozenset(get_args(Evidence))
_HEADER_KEYS = {"format", "layers", "diff_ids"}
_BODY_KEYS = {
    "tree",
    "contents",
    "os",
    "runs",
    "first_seen",
    "per_file",
    "wanted_links",
    "warnings",
    "reader_warnings",
    "not_matching_magic",
    "counters",
}
_MAX_HEADER = 1 << 20


class PrefixContentMissing(Exception):
    """A file kept as its size alone was asked for its bytes: the state cannot replay this image.

    Deliberately not a ValueError or OSError: detectors catch those as unreadable files, which would turn a
    state that cannot serve into an Incomplete inventory instead of a full replay."""


@dataclass(frozen=True)
class Header:
    layers: tuple[str, ...]  # the prefix's layer blob digests, in order
    diff_ids: tuple[str, ...]  # the uncompressed digests the replay computed for them


def dump(analysis: Analysis, layers: Sequence[str], diff_ids: Sequence[str]) -> bytes:
    """The state of `analysis` after `len(layers)` layers (call it between layers: nothing touched pending)."""
    contents: list[Content] = []
    numbers: dict[int, int] = {}

    def number(content: Content) -> int:
        found = numbers.get(id(content))
        if found is None:
            found = numbers[id(content)] = len(contents)
            contents.append(content)
        return found

    tree = dump_tree(analysis.tree, number)
    per_file = {
        name: [[path, number(content), _extraction(found)] for path, (content, found) in sorted(cache.items())]
        for name, cache in sorted(analysis.per_file.items())
    }
    size_only = _size_only(analysis)
    blobs: list[bytes] = []
    offset = 0
    table: list[list[Any]] = []
    for content in contents:
        if isinstance(content, Unread):
            table.append(["u", content.size, base64.b64encode(content.head).decode()])
        elif id(content) in size_only:
            table.append(["s", content.size])
        else:
            data = content.read()
            table.append(["d", offset, len(data)])
            blobs.append(data)
            offset += len(data)
    body = {
        "tree": tree,
        "contents": table,
        "os": _os(analysis.os),
        "runs": {name: [_extraction(run.extraction), _os(run.os)] for name, run in sorted(analysis.runs.items())},
        "first_seen": {
            name: [[list(key[:4]), list(key[4]), index] for key, index in seen.items()]
            for name, seen in sorted(analysis.first_seen.items())
        },
        "per_file": per_file,
        "wanted_links": sorted(analysis.wanted_links),
        "warnings": [_warning(w) for w in analysis.warnings],
        "reader_warnings": [_warning(w) for w in analysis.reader.warnings],
        "not_matching_magic": sorted(analysis.reader.not_matching_magic),
        "counters": [analysis.budget.bytes, analysis.budget.members, analysis.store.captured_bytes],
    }
    header = json.dumps({"format": FORMAT, "layers": list(layers), "diff_ids": list(diff_ids)}).encode()
    body_bytes = json.dumps(body, separators=(",", ":")).encode()
    return b"".join(
        [MAGIC, struct.pack(">I", len(header)), header, struct.pack(">Q", len(body_bytes)), body_bytes, *blobs]
    )


def _size_only(analysis: Analysis) -> set[int]:
    """Contents whose every wanted path (a file, or a wanted link to it) is held by per-file detectors alone,
    each of them with its result for that very content. A path no detector wants is nobody's to read."""
    paths_of: dict[int, list[tuple[str, str, Content]]] = {}
    for path, node in analysis.tree.files.items():
        paths_of.setdefault(id(node.content), []).append((path, path, node.content))
    for link in analysis.wanted_links:
        real = analysis.tree.resolve(link)
        target = analysis.tree.files.get(real) if real else None
        if real is not None and target is not None:
            paths_of.setdefault(id(target.content), []).append((link, real, target.content))
    return {key for key, paths in paths_of.items() if all(_held_per_file(analysis, p, r, c) for p, r, c in paths)}


def _held_per_file(analysis: Analysis, path: str, real: str, content: Content) -> bool:
    for detector in analysis.detectors:
        if not detector.required(path) or (path != real and detector.required(real)):
            continue  # a link to a file the detector reads under its own path is not read again (`_fileset`)
        held = analysis.per_file.get(detector.name, {}).get(path)
        if not detector.per_file or held is None or held[0] is not content:
            return False
    return True


def read_header(data: bytes) -> Header:
    """The header alone (what a cache lookup checks); StateError if it is not a state."""
    header, _ = _split(data)
    return header


def _split(data: bytes) -> tuple[Header, int]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise StateError("not a prefix state")
    (length,) = struct.unpack_from(">I", data, len(MAGIC))
    start = len(MAGIC) + 4
    if length > _MAX_HEADER or start + length + 8 > len(data):
        raise StateError("header: truncated")
    try:
        doc = json.loads(data[start : start + length])
    except (ValueError, RecursionError):
        raise StateError("header: not JSON") from None
    if not isinstance(doc, dict) or set(doc) != _HEADER_KEYS or doc["format"] != FORMAT:
        raise StateError("header: not this format")
    layers = _strings(doc["layers"], "header.layers")
    diff_ids = _strings(doc["diff_ids"], "header.diff_ids")
    if len(layers) != len(diff_ids) or not layers:
        raise StateError("header: layers and diff_ids differ in number")
    return Header(tuple(layers), tuple(diff_ids)), start + length


@dataclass
class Decoded:
    """A checked state, ready to be put into an `Analysis` (`restore`); `built` once `build` has made its
    detector results into objects."""

    header: Header
    body: dict[str, Any]
    contents: list[Content]
    built: _Built | None = None


@dataclass
class _Built:
    runs: dict[str, Run]
    first_seen: dict[str, dict[tuple[str, str, str, str, tuple[str, ...]], int]]
    per_file: dict[str, dict[str, tuple[Content, Extraction]]]


def build(decoded: Decoded) -> Decoded:
    """Make the state's detector results into the objects `restore` puts in place (a Debian base's are some
    thousands of packages and their owned files): a warm sandboxed child does it while it waits for its job. The
    objects go to one `Analysis`: restore a built state once."""
    body = decoded.body
    decoded.built = _Built(
        runs={name: Run(_extraction_from(e), _os_from(o)) for name, (e, o) in body["runs"].items()},
        first_seen={
            name: {(k[0], k[1], k[2], k[3], tuple(locations)): index for k, locations, index in seen}
            for name, seen in body["first_seen"].items()
        },
        per_file={
            name: {path: (decoded.contents[n], _extraction_from(e)) for path, n, e in entries}
            for name, entries in body["per_file"].items()
        },
    )
    return decoded


def decode(data: bytes, registry: DetectorRegistry, max_symlink_depth: int) -> Decoded:
    """Check every part of `data` (it may come from a sandboxed child); StateError naming the first defect."""
    header, at = _split(data)
    (length,) = struct.unpack_from(">Q", data, at)
    at += 8
    if at + length > len(data):
        raise StateError("body: truncated")
    try:
        body = json.loads(data[at : at + length])
    except (ValueError, RecursionError):
        raise StateError("body: not JSON") from None
    blobs = memoryview(data)[at + length :]
    if not isinstance(body, dict) or set(body) != _BODY_KEYS:
        raise StateError("body: not this format")
    contents = [_content(entry, blobs, f"contents[{i}]") for i, entry in enumerate(_list(body["contents"], "contents"))]
    names = {d.name for d in registry}
    tree = load_tree(body["tree"], contents, max_symlink_depth)
    _check_body(body, names, len(contents))
    body["tree"] = tree
    return Decoded(header, body, contents)


def restore(analysis: Analysis, decoded: Decoded) -> None:
    """Put a decoded state into a fresh `analysis` (no layer read yet)."""
    body = decoded.body
    tree: Tree = body["tree"]
    analysis.tree = tree
    analysis.reader.tree = tree
    analysis.os = _os_from(body["os"])
    built = decoded.built or build(decoded).built
    assert built is not None
    analysis.runs, analysis.first_seen, analysis.per_file = built.runs, built.first_seen, built.per_file
    decoded.built = None  # the objects now belong to `analysis`
    analysis.wanted_links = set(body["wanted_links"])
    analysis.warnings = [Warning_(w, m) for w, m in body["warnings"]]
    analysis.reader.warnings = [Warning_(w, m) for w, m in body["reader_warnings"]]
    analysis.reader.not_matching_magic = set(body["not_matching_magic"])
    analysis.budget.bytes, analysis.budget.members, analysis.store.captured_bytes = body["counters"]


# -- writing ----------------------------------------------------------------------------------------------


def _warning(w: Warning_) -> list[str]:
    return [w.where, w.message]


def _os(os_info: OSInfo | None) -> list[Any] | None:
    if os_info is None:
        return None
    return [
        os_info.id,
        os_info.version,
        os_info.codename,
        os_info.name,
        os_info.pretty_name,
        list(os_info.id_like),
        os_info.source,
        os_info.cpe,
    ]


def _package(p: RawPackage) -> list[Any]:
    return [
        p.name,
        p.version,
        p.ecosystem,
        p.purl,
        p.source_name,
        p.source_version,
        p.arch,
        list(p.locations),
        p.kind,
        [list(pair) for pair in p.metadata],
        p.evidence,
        sorted(p.owned_files),
    ]


def _extraction(e: Extraction) -> list[Any]:
    return [
        [_package(p) for p in e.packages],
        _os(e.os),
        [_warning(w) for w in e.warnings],
        [_warning(w) for w in e.incomplete],
    ]


# -- reading (every value checked) ------------------------------------------------------------------------


def _size_only_reader(size: int) -> Content:
    def gone() -> bytes:
        raise PrefixContentMissing(f"a file of {size} bytes was kept as its size alone in the prefix state")

    return Content(size, reader=gone)


def _content(entry: Any, blobs: memoryview, where: str) -> Content:
    if not isinstance(entry, list) or not entry:
        raise StateError(f"{where}: must be a list")
    kind = entry[0]
    if kind == "d" and len(entry) == 3:
        offset, length = _count(entry[1], where), _count(entry[2], where)
        if offset + length > len(blobs):
            raise StateError(f"{where}: past the end of the contents")
        data = bytes(blobs[offset : offset + length])
        return Content(len(data), data=data)
    if kind == "u" and len(entry) == 3:
        try:
            head = base64.b64decode(_text(entry[2], where), validate=True)
        except ValueError:
            raise StateError(f"{where}: head is not base64") from None
        return Unread(_count(entry[1], where), head[: Unread.HEAD])
    if kind == "s" and len(entry) == 2:
        return _size_only_reader(_count(entry[1], where))
    raise StateError(f"{where}: not a content entry")


def _check_body(body: dict[str, Any], names: set[str], contents: int) -> None:
    _os_check(body["os"], "os")
    runs = _dict(body["runs"], "runs", names)
    for name, run in runs.items():
        if not isinstance(run, list) or len(run) != 2:
            raise StateError(f"runs.{name}: must be [extraction, os]")
        _extraction_check(run[0], f"runs.{name}")
        _os_check(run[1], f"runs.{name}.os")
    for name, seen in _dict(body["first_seen"], "first_seen", names).items():
        for i, item in enumerate(_list(seen, f"first_seen.{name}")):
            where = f"first_seen.{name}[{i}]"
            if not isinstance(item, list) or len(item) != 3:
                raise StateError(f"{where}: must be [key, locations, layer]")
            if len(_strings(item[0], where)) != 4:
                raise StateError(f"{where}: key must have 4 parts")
            _strings(item[1], where)
            _count(item[2], where)
    for name, entries in _dict(body["per_file"], "per_file", names).items():
        for i, item in enumerate(_list(entries, f"per_file.{name}")):
            where = f"per_file.{name}[{i}]"
            if not isinstance(item, list) or len(item) != 3:
                raise StateError(f"{where}: must be [path, content, extraction]")
            _text(item[0], where)
            if _count(item[1], where) >= contents:
                raise StateError(f"{where}: content number out of range")
            _extraction_check(item[2], where)
    _strings(body["wanted_links"], "wanted_links")
    _strings(body["not_matching_magic"], "not_matching_magic")
    _warnings_check(body["warnings"], "warnings")
    _warnings_check(body["reader_warnings"], "reader_warnings")
    counters = _list(body["counters"], "counters")
    if len(counters) != 3:
        raise StateError("counters: must be [bytes, members, captured bytes]")
    for value in counters:
        _count(value, "counters")


def _extraction_check(value: Any, where: str) -> None:
    if not isinstance(value, list) or len(value) != 4:
        raise StateError(f"{where}: must be [packages, os, warnings, incomplete]")
    for i, package in enumerate(_list(value[0], where)):
        _package_check(package, f"{where}.packages[{i}]")
    _os_check(value[1], f"{where}.os")
    _warnings_check(value[2], f"{where}.warnings")
    _warnings_check(value[3], f"{where}.incomplete")


def _package_check(value: Any, where: str) -> None:
    if not isinstance(value, list) or len(value) != 12:
        raise StateError(f"{where}: must be a list of 12")
    for i in (0, 1, 2, 3, 4, 5, 6, 8):
        _text(value[i], where)
    _strings(value[7], where)
    for pair in _list(value[9], where):
        if len(_strings(pair, where)) != 2:
            raise StateError(f"{where}: metadata must be pairs")
    if value[10] not in _EVIDENCES:
        raise StateError(f"{where}: unknown evidence")
    _strings(value[11], where)


def _os_check(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, list) or len(value) != 8:
        raise StateError(f"{where}: must be null or a list of 8")
    for i in (0, 1, 2, 3, 4, 6, 7):
        _text(value[i], where)
    _strings(value[5], where)


def _warnings_check(value: Any, where: str) -> None:
    for item in _list(value, where):
        if len(_strings(item, where)) != 2:
            raise StateError(f"{where}: must be [where, message] pairs")


def _os_from(value: list[Any] | None) -> OSInfo | None:
    if value is None:
        return None
    return OSInfo(value[0], value[1], value[2], value[3], value[4], tuple(value[5]), value[6], value[7])


def _package_from(v: list[Any]) -> RawPackage:
    return RawPackage(
        name=v[0],
        version=v[1],
        ecosystem=v[2],
        purl=v[3],
        source_name=v[4],
        source_version=v[5],
        arch=v[6],
        locations=tuple(v[7]),
        kind=v[8],
        metadata=tuple((k, val) for k, val in v[9]),
        evidence=v[10],
        owned_files=frozenset(v[11]),
    )


def _extraction_from(v: list[Any]) -> Extraction:
    return Extraction(
        [_package_from(p) for p in v[0]],
        _os_from(v[1]),
        [Warning_(w, m) for w, m in v[2]],
        [Warning_(w, m) for w, m in v[3]],
    )


def _dict(value: Any, where: str, names: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError(f"{where}: must be an object")
    unknown = set(value) - names
    if unknown:
        raise StateError(f"{where}: unknown detector {sorted(unknown)[0][:40]!r}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise StateError(f"{where}: must be a list")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"{where}: must be a string")
    return value


def _strings(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    for item in items:
        _text(item, where)
    return items


def _count(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
        raise StateError(f"{where}: must be a whole number")
    return value
