"""The rpm header blob as the package databases store it ("header image" format), parsed defensively.

Layout (all integers big-endian): `il` (index entry count), `dl` (data store length), `il` index entries
of 16 bytes (tag, type, offset, count), then `dl` bytes of data. An installed header normally starts with a
region entry (HEADERIMMUTABLE): its offset points at a 16-byte trailer in the data store whose negated
offset gives the number of entries inside the region; entries after the region ("dribble" entries, added
at install time) replace region entries with the same tag, as rpm's own headerImport does.

Content is hostile. Every count and offset is checked against the bytes actually present before anything
is read or allocated; all index entries get cheap checks up front, and the data of a tag is only decoded
when a caller asks for it, so the work per header is linear in its size times the handful of tags used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Tags (rpmtag.h). Only those this scanner reads.
TAG_HEADERIMAGE = 61
TAG_HEADERSIGNATURES = 62
TAG_HEADERIMMUTABLE = 63
TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_VENDOR = 1011
TAG_LICENSE = 1014
TAG_ARCH = 1022
TAG_OLDFILENAMES = 1027
TAG_SOURCERPM = 1044
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118
TAG_MODULARITYLABEL = 5096

_REGION_TAGS = frozenset({TAG_HEADERIMAGE, TAG_HEADERSIGNATURES, TAG_HEADERIMMUTABLE})

# Types (rpmtag.h rpmTagType_e).
TYPE_NULL = 0
TYPE_CHAR = 1
TYPE_INT8 = 2
TYPE_INT16 = 3
TYPE_INT32 = 4
TYPE_INT64 = 5
TYPE_STRING = 6
TYPE_BIN = 7
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9

# Bytes per element of the fixed-size types; string types are variable.
_FIXED_SIZES = {TYPE_CHAR: 1, TYPE_INT8: 1, TYPE_INT16: 2, TYPE_INT32: 4, TYPE_INT64: 8, TYPE_BIN: 1}
_STRING_TYPES = frozenset({TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING})

_PREAMBLE = struct.Struct(">II")
_ENTRY = struct.Struct(">iIiI")
ENTRY_SIZE = _ENTRY.size  # 16; also the size of the region trailer and the region tag's count

# rpm's own sanity limits (header.c hdrchkTags / headerMaxbytes), applied before the index is touched.
MAX_TAGS = 0xFFFF
MAX_HEADER_BYTES = 256 * 1024 * 1024


class HeaderError(Exception):
    """A header that cannot be parsed safely; the caller skips it and reports why."""


@dataclass(frozen=True)
class _Entry:
    type: int
    offset: int
    count: int


class Header:
    """A validated header index with on-demand, bounds-checked access to tag data."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < _PREAMBLE.size:
            raise HeaderError(f"{len(blob)} bytes is too short for a header")
        il, dl = _PREAMBLE.unpack_from(blob, 0)
        # Checked in this order so a hostile il (e.g. 2**31) is rejected by arithmetic alone.
        if il < 1 or il > MAX_TAGS:
            raise HeaderError(f"header has {il} index entries")
        needed = _PREAMBLE.size + il * ENTRY_SIZE + dl
        if needed > len(blob):
            claim = f"index count {il}, data length {dl}"
            raise HeaderError(f"header claims {needed} bytes ({claim}) but has {len(blob)}")
        if needed >= MAX_HEADER_BYTES:
            raise HeaderError(f"header of {needed} bytes is larger than rpm allows")
        self._il = il
        self._data_start = _PREAMBLE.size + il * ENTRY_SIZE
        self._dl = dl
        self._blob = blob
        raw = [_ENTRY.unpack_from(blob, _PREAMBLE.size + i * ENTRY_SIZE) for i in range(il)]
        self._entries = self._index(raw)

    def _index(self, raw: list[tuple[int, int, int, int]]) -> dict[int, _Entry]:
        if raw[0][0] in _REGION_TAGS:
            self._check_region(raw[0])
            ordinary = raw[1:]
        else:
            # No region (a legacy v3 header): every entry is an ordinary tag.
            ordinary = raw
        entries: dict[int, _Entry] = {}
        # Later entries win: dribble entries follow the region and replace its copies of a tag.
        for tag, type_, offset, count in ordinary:
            entries[tag] = self._checked(tag, type_, offset, count)
        return entries

    def _check_region(self, region: tuple[int, int, int, int]) -> None:
        """The region tag and its trailer must agree, as rpm's hdrblobVerifyRegion requires; a header
        whose region is inconsistent has been damaged and its other offsets cannot be trusted either."""
        tag, type_, offset, count = region
        if type_ != TYPE_BIN or count != ENTRY_SIZE:
            raise HeaderError(f"region tag {tag} has type {type_} count {count}")
        if offset < 0 or offset + ENTRY_SIZE > self._dl:
            raise HeaderError(f"region tag {tag} trailer offset {offset} is outside the data ({self._dl})")
        t_tag, t_type, t_offset, t_count = _ENTRY.unpack_from(self._blob, self._data_start + offset)
        # Some old packages carry HEADERIMAGE in the signature region trailer; rpm accepts that.
        if tag == TAG_HEADERSIGNATURES and t_tag == TAG_HEADERIMAGE:
            t_tag = TAG_HEADERSIGNATURES
        if t_tag != tag or t_type != TYPE_BIN or t_count != ENTRY_SIZE:
            raise HeaderError(f"region tag {tag} trailer does not match (tag {t_tag}, type {t_type})")
        # The trailer's offset is negative: minus the size of the region's part of the index.
        size = -t_offset
        if size <= 0 or size % ENTRY_SIZE or size // ENTRY_SIZE > self._il:
            raise HeaderError(f"region tag {tag} covers {size} bytes of index, header has {self._il} entries")

    def _checked(self, tag: int, type_: int, offset: int, count: int) -> _Entry:
        """Checks that cost O(1): type known, offset inside the data store and aligned, fixed-size data
        fitting. String data is only scanned when asked for (see `_strings`)."""
        if type_ not in _FIXED_SIZES and type_ not in _STRING_TYPES:
            raise HeaderError(f"tag {tag} has unknown type {type_}")
        if offset < 0 or offset >= self._dl:
            raise HeaderError(f"tag {tag} offset {offset} is outside the data ({self._dl} bytes)")
        if count < 1:
            raise HeaderError(f"tag {tag} has count {count}")
        size = _FIXED_SIZES.get(type_)
        if size is not None:
            if offset % size:
                raise HeaderError(f"tag {tag} offset {offset} is misaligned for type {type_}")
            if offset + size * count > self._dl:
                raise HeaderError(f"tag {tag} data ({count} x {size} bytes at {offset}) overruns the data")
        elif count > self._dl - offset:
            # Each string takes at least its terminating NUL.
            raise HeaderError(f"tag {tag} claims {count} strings in {self._dl - offset} bytes")
        elif type_ == TYPE_STRING and count != 1:
            raise HeaderError(f"tag {tag} is a single string with count {count}")
        return _Entry(type_, offset, count)

    def count(self, tag: int) -> int:
        """Number of elements a tag claims (0 if absent): lets a caller refuse a huge array before it is
        decoded."""
        entry = self._entries.get(tag)
        return entry.count if entry else 0

    def _strings(self, tag: int, limit: int | None = None) -> list[bytes]:
        entry = self._entries[tag]
        if entry.type not in _STRING_TYPES:
            raise HeaderError(f"tag {tag} has type {entry.type}, expected a string type")
        end = self._data_start + self._dl
        pos = self._data_start + entry.offset
        out: list[bytes] = []
        # Bounded: count <= dl (checked above) and every string ends inside the data store.
        for _ in range(entry.count if limit is None else min(limit, entry.count)):
            nul = self._blob.find(b"\0", pos, end)
            if nul < 0:
                raise HeaderError(f"tag {tag} string is not terminated inside the data")
            out.append(self._blob[pos:nul])
            pos = nul + 1
        return out

    def string(self, tag: int, default: str = "") -> str:
        """A STRING (or the first of a STRING_ARRAY / I18NSTRING), decoded leniently for display."""
        if tag not in self._entries:
            return default
        # Only the first (untranslated) string of an array is wanted; the others are not scanned.
        return self._strings(tag, limit=1)[0].decode("utf-8", errors="replace")

    def string_array(self, tag: int) -> list[bytes]:
        """Raw bytes of every string of a STRING_ARRAY (file names may be in any encoding)."""
        if tag not in self._entries:
            return []
        if self._entries[tag].type != TYPE_STRING_ARRAY:
            raise HeaderError(f"tag {tag} has type {self._entries[tag].type}, expected a string array")
        return self._strings(tag)

    def int32_array(self, tag: int) -> list[int]:
        if tag not in self._entries:
            return []
        entry = self._entries[tag]
        if entry.type != TYPE_INT32:
            raise HeaderError(f"tag {tag} has type {entry.type}, expected int32")
        return list(struct.unpack_from(f">{entry.count}I", self._blob, self._data_start + entry.offset))
