"""rpm's Berkeley DB backend (`Packages`, rpm < 4.16): a BDB hash database, read without libdb.

Layout (libdb dbinc/db_page.h): fixed-size pages; page 0 is the hash metadata page (magic 0x061561, page
size, last page number). Hash pages (types P_HASH and P_HASH_UNSORTED) hold an array of 2-byte item
offsets after the 26-byte page header; items alternate key, value. rpm's key is the package number
(4 bytes, in the file's byte order); its value is the header, usually too large for a hash page and so
stored as an H_OFFPAGE item pointing at a chain of overflow pages. Every page is walked in file order,
as go-rpmdb does, rather than following bucket chains: a damaged bucket chain then loses nothing.

All numbers are in the byte order of the machine that wrote the file; the metadata magic tells which.
Every page number, offset and length is checked; an overflow chain that loops, leaves the file or
disagrees with its declared length is reported and skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from scanner.inventory.detectors.rpm.records import BUDGET_EXHAUSTED, Blob, ByteBudget, Problem, Record

_HASH_MAGIC = 0x061561
_BTREE_MAGIC = 0x053162
_VALID_PAGE_SIZES = frozenset(1 << n for n in range(9, 17))  # 512 .. 65536, as libdb allows

# Page types (db_page.h).
_P_HASH_UNSORTED = 2  # hash pages written by old libdb (RHEL/CentOS 5)
_P_OVERFLOW = 7
_P_HASHMETA = 8
_P_HASH = 13

# Hash item types (first byte of an item).
_H_KEYDATA = 1
_H_OFFPAGE = 3

_PAGE_HEADER_SIZE = 26
# With checksums on (DBMETA_CHKSUM in the metadata flags) every page header carries 20 more bytes.
_CHECKSUM_SIZE = 20
_DBMETA_CHKSUM = 0x01

_HOFFPAGE_SIZE = 12  # type, 3 unused bytes, first overflow page, total length
# rpm's first record (key 0) holds the next package number, not a header.
_COUNTER_KEY = 0
# Records collected (to be sorted) before any is read: far above any real database, and a bound on the
# memory a file of tiny hash items could claim.
_MAX_RECORDS = 500_000


@dataclass(frozen=True)
class _Layout:
    order: str  # struct byte-order prefix: "<" or ">"
    page_size: int
    page_count: int  # pages present in the file and covered by the metadata
    header_size: int  # page header plus checksum, where the item array / overflow data starts


@dataclass(frozen=True, slots=True)
class _ValueRef:
    """Where one value lives: inline on a hash page (start, length) or in an overflow chain."""

    key: int
    page: int
    start: int
    length: int
    overflow: bool


def _layout(data: bytes) -> _Layout | str:
    """The file's geometry from its metadata page, or why it is not a readable BDB hash database."""
    if len(data) < 512:
        return f"{len(data)} bytes is too short for a Berkeley DB file"
    magics = {struct.unpack_from(order + "I", data, 12)[0]: order for order in ("<", ">")}
    if _HASH_MAGIC not in magics:
        if _BTREE_MAGIC in magics:
            return "a Berkeley DB btree database; only the hash format rpm uses for Packages is read"
        return "not a Berkeley DB hash database (bad magic)"
    order = magics[_HASH_MAGIC]
    page_size = struct.unpack_from(order + "I", data, 20)[0]
    encryption, page_type, meta_flags = data[24], data[25], data[26]
    last_page = struct.unpack_from(order + "I", data, 32)[0]
    if page_size not in _VALID_PAGE_SIZES:
        return f"invalid page size {page_size}"
    if page_type != _P_HASHMETA:
        return f"page 0 has type {page_type}, not hash metadata"
    if encryption:
        return "encrypted Berkeley DB databases are not supported"
    header_size = _PAGE_HEADER_SIZE + (_CHECKSUM_SIZE if meta_flags & _DBMETA_CHKSUM else 0)
    # Pages past the end of a truncated file are simply not there; last_page bounds the walk otherwise.
    page_count = min(last_page + 1, len(data) // page_size)
    return _Layout(order, page_size, page_count, header_size)


def _page_header(data: bytes, layout: _Layout, page: int) -> tuple[int, int, int, int, int]:
    """(own page number, next page, entries, high free offset, type) of a page inside the file."""
    base = page * layout.page_size
    number, _, next_page, entries, hf_offset = struct.unpack_from(layout.order + "IIIHH", data, base + 8)
    return number, next_page, entries, hf_offset, data[base + 25]


def _hash_page_values(data: bytes, layout: _Layout, page: int) -> Iterator[_ValueRef | Problem]:
    _, _, entries, _, _ = _page_header(data, layout, page)
    base = page * layout.page_size
    size = layout.page_size
    index_end = layout.header_size + 2 * entries
    if index_end > size:
        yield Problem(f"page {page}: {entries} items do not fit in the page")
        return
    if entries % 2:
        yield Problem(f"page {page}: odd item count {entries}; the last item is ignored")
    offsets = struct.unpack_from(f"{layout.order}{entries}H", data, base + layout.header_size)

    def item(i: int) -> tuple[int, int] | None:
        # An item runs from its offset to the start of the previous item (items fill the page from its
        # end downwards); that is libdb's LEN_HITEM.
        start = offsets[i]
        end = size if i == 0 else offsets[i - 1]
        if start < index_end or start >= end or end > size:
            return None
        return start, end - start

    for i in range(0, entries - 1, 2):
        key_item, value_item = item(i), item(i + 1)
        if key_item is None or value_item is None:
            yield Problem(f"page {page}: item {i // 2} lies outside the page's data area")
            continue
        k_start, k_len = key_item
        v_start, v_len = value_item
        key = -1
        if data[base + k_start] == _H_KEYDATA and k_len == 5:
            key = struct.unpack_from(layout.order + "I", data, base + k_start + 1)[0]
        value_type = data[base + v_start]
        if value_type == _H_OFFPAGE:
            if v_len < _HOFFPAGE_SIZE:
                yield Problem(f"page {page}: item {i // 2} is too short for an overflow reference")
                continue
            first, total = struct.unpack_from(layout.order + "II", data, base + v_start + 4)
            yield _ValueRef(key, first, 0, total, overflow=True)
        elif value_type == _H_KEYDATA:
            # Small values stay on the hash page; the only one rpm writes is the key 0 counter.
            if key != _COUNTER_KEY:
                yield _ValueRef(key, page, v_start + 1, v_len - 1, overflow=False)
        else:
            yield Problem(f"page {page}: item {i // 2} has unsupported type {value_type}")


def _all_values(data: bytes, layout: _Layout) -> Iterator[_ValueRef | Problem]:
    for page in range(1, layout.page_count):
        if data[page * layout.page_size + 25] in (_P_HASH, _P_HASH_UNSORTED):
            yield from _hash_page_values(data, layout, page)


def _overflow_value(data: bytes, layout: _Layout, ref: _ValueRef) -> bytes | str:
    """Concatenate an overflow chain, or say why it cannot be trusted."""
    if ref.length > len(data):
        return f"record {ref.key} claims {ref.length} bytes, more than the file holds"
    chunks: list[bytes] = []
    collected = 0
    seen: set[int] = set()
    page = ref.page
    usable = layout.page_size - layout.header_size
    # Each page joins the chain at most once, so this ends after at most page_count steps.
    while page != 0:
        if page >= layout.page_count:
            return f"record {ref.key}: overflow page {page} is outside the file"
        if page in seen:
            return f"record {ref.key}: overflow chain loops back to page {page}"
        seen.add(page)
        number, next_page, _, on_page, page_type = _page_header(data, layout, page)
        # A page records its own number; rpm's reader checks it too, and a mismatch means garbage.
        if page_type != _P_OVERFLOW or number != page:
            return f"record {ref.key}: page {page} in its overflow chain is not an overflow page"
        if on_page > usable or collected + on_page > ref.length:
            return f"record {ref.key}: overflow page {page} holds more than the declared length"
        start = page * layout.page_size + layout.header_size
        chunks.append(data[start : start + on_page])
        collected += on_page
        page = next_page
    if collected != ref.length:
        return f"record {ref.key}: overflow chain holds {collected} of {ref.length} bytes"
    return b"".join(chunks)


def read_bdb(data: bytes) -> Iterator[Record]:
    """Header blobs from a Berkeley DB hash `Packages` file, in package-number (install) order."""
    layout = _layout(data)
    if isinstance(layout, str):
        yield Problem(layout, fatal=True)
        return
    refs: list[_ValueRef] = []
    for found in _all_values(data, layout):
        if isinstance(found, Problem):
            yield found
        elif len(refs) < _MAX_RECORDS:
            refs.append(found)
        else:
            yield Problem(f"more than {_MAX_RECORDS} records; the rest are ignored", bound=True)
            break
    # Hash order is arbitrary; package numbers grow with each install, like sqlite's hnum.
    refs.sort(key=lambda r: r.key)
    budget = ByteBudget(len(data))
    for ref in refs:
        if ref.overflow:
            value = _overflow_value(data, layout, ref)
        else:
            start = ref.page * layout.page_size + ref.start
            value = data[start : start + ref.length]
        if isinstance(value, str):
            yield Problem(value)
        elif not budget.take(len(value)):
            yield Problem(BUDGET_EXHAUSTED, bound=True)
            return
        else:
            yield Blob(ref.key, value)
