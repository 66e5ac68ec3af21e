"""rpm's NDB backend (`Packages.db`, SUSE), after rpm's lib/backend/ndb/rpmpkg.c.

All integers little-endian. The file starts with a 32-byte header (magic "RpmP", version 0, generation,
number of slot pages, next package index), which occupies the first two 16-byte slots of the slot area:
`slot pages` x 4096 bytes of slots (magic "Slot", package index, block offset, block count; a zero block
offset marks a free slot). Blocks are 16 bytes. A package's blocks hold a blob header (magic "BlbS",
package index, timestamp, blob length), the rpm header blob, zero padding, and a 12-byte tail (Adler-32,
blob length, magic "BlbE").

Every slot is checked against the file size and against the other slots: blocks of two packages may not
overlap (rpm itself refuses to write such a file), which also keeps the total work linear in the size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from scanner.inventory.detectors.rpm.records import Blob, Problem, Record


def _magic(text: bytes) -> int:
    return int.from_bytes(text, "little")


_DB_MAGIC = _magic(b"RpmP")
_SLOT_MAGIC = _magic(b"Slot")
_BLOB_HEAD_MAGIC = _magic(b"BlbS")
_BLOB_TAIL_MAGIC = _magic(b"BlbE")
_DB_VERSION = 0

_HEADER = struct.Struct("<IIII")  # magic, version, generation, slot pages (then next index, padding)
_SLOT = struct.Struct("<IIII")  # magic, package index, block offset, block count
_BLOB_HEAD = struct.Struct("<IIII")  # magic, package index, timestamp, blob length
_BLOB_TAIL = struct.Struct("<III")  # adler32, blob length, magic
_DB_HEADER_SIZE = 32
_PAGE_SIZE = 4096
_BLOCK_SIZE = 16
_SLOT_SIZE = _SLOT.size
# go-rpmdb's bound; 2048 slot pages are over 500,000 packages.
_MAX_SLOT_PAGES = 2048


@dataclass(frozen=True)
class _Slot:
    pkgidx: int
    block: int
    blocks: int


def _slots(data: bytes, slot_pages: int) -> Iterator[_Slot | Problem]:
    file_blocks = len(data) // _BLOCK_SIZE
    # Blobs start after the slot pages (rpmpkgReadSlots' minblkoff).
    first_blob_block = slot_pages * _PAGE_SIZE // _BLOCK_SIZE
    for offset in range(_DB_HEADER_SIZE, slot_pages * _PAGE_SIZE, _SLOT_SIZE):
        magic, pkgidx, block, blocks = _SLOT.unpack_from(data, offset)
        slot_no = offset // _SLOT_SIZE
        if magic != _SLOT_MAGIC:
            yield Problem(f"slot {slot_no}: bad magic")
            continue
        if block == 0:
            continue  # a free slot
        if pkgidx == 0 or blocks == 0 or block < first_blob_block or block + blocks > file_blocks:
            yield Problem(f"slot {slot_no}: package {pkgidx} at block {block} (+{blocks}) is invalid")
            continue
        yield _Slot(pkgidx, block, blocks)


def _blob(data: bytes, slot: _Slot) -> bytes | str:
    """The header blob a slot points at, checked as rpmpkgReadBlob does."""
    start = slot.block * _BLOCK_SIZE
    end = start + slot.blocks * _BLOCK_SIZE  # inside the file: checked with the slot
    if end - start < _BLOB_HEAD.size + _BLOB_TAIL.size:
        return f"package {slot.pkgidx}: {slot.blocks} blocks cannot hold a blob"
    magic, pkgidx, _, length = _BLOB_HEAD.unpack_from(data, start)
    if magic != _BLOB_HEAD_MAGIC or pkgidx != slot.pkgidx:
        return f"package {slot.pkgidx}: no blob at block {slot.block}"
    if slot.blocks != -(-(_BLOB_HEAD.size + length + _BLOB_TAIL.size) // _BLOCK_SIZE):
        return f"package {slot.pkgidx}: blob length {length} does not fill its {slot.blocks} blocks"
    _, tail_length, tail_magic = _BLOB_TAIL.unpack_from(data, end - _BLOB_TAIL.size)
    if tail_magic != _BLOB_TAIL_MAGIC or tail_length != length:
        return f"package {slot.pkgidx}: blob tail is damaged"
    # rpm does not verify the Adler-32 when it reads a package (only when moving blobs), nor do we:
    # the header parser checks everything it relies on.
    blob_start = start + _BLOB_HEAD.size
    return data[blob_start : blob_start + length]


def read_ndb(data: bytes) -> Iterator[Record]:
    """Header blobs from an NDB `Packages.db`, in package-index (install) order."""
    if len(data) < _PAGE_SIZE:
        yield Problem(f"{len(data)} bytes is too short for an NDB database", fatal=True)
        return
    magic, version, _, slot_pages = _HEADER.unpack_from(data, 0)
    if magic != _DB_MAGIC:
        yield Problem("not an NDB database (bad magic)", fatal=True)
        return
    if version != _DB_VERSION:
        yield Problem(f"unsupported NDB version {version}", fatal=True)
        return
    if slot_pages == 0 or slot_pages > _MAX_SLOT_PAGES or slot_pages * _PAGE_SIZE > len(data):
        yield Problem(f"invalid slot page count {slot_pages} for {len(data)} bytes", fatal=True)
        return
    slots: list[_Slot] = []
    for found in _slots(data, slot_pages):
        if isinstance(found, Problem):
            yield found
        else:
            slots.append(found)
    # Overlapping blocks would let a small file hand out the same bytes many times over.
    slots.sort(key=lambda s: s.block)
    sound: list[_Slot] = []
    previous_end = 0
    for slot in slots:
        if slot.block < previous_end:
            yield Problem(f"package {slot.pkgidx}: its blocks overlap another package's")
            continue
        sound.append(slot)
        previous_end = slot.block + slot.blocks
    # rpm lists packages in block order; package index order is install order, the same order the
    # sqlite and BDB backends give (hnum), so one image's inventory does not depend on the backend.
    seen: set[int] = set()
    for slot in sorted(sound, key=lambda s: s.pkgidx):
        if slot.pkgidx in seen:
            yield Problem(f"package {slot.pkgidx} has more than one slot; only the first is read")
            continue
        seen.add(slot.pkgidx)
        blob = _blob(data, slot)
        if isinstance(blob, str):
            yield Problem(blob)
        else:
            yield Blob(slot.pkgidx, blob)
