"""A tar stream read member by member over pieces of uncompressed data, skipping unwanted file data by
dropping whole pieces instead of copying it through buffers.

Headers (ustar, GNU long names and sparse files, pax) are parsed by the standard library's own
`tarfile.TarInfo.fromtarfile`, the member loop follows `tarfile.TarFile.next` step by step and file data is
read through `tarfile.ExFileObject`, so the members, their metadata, their content and the errors raised are
those of `tarfile.open(mode="r|")` on the same bytes; only the buffering underneath differs (tarfile's
stream mode copies every byte of the layer, wanted or not, through 64 KiB Python buffers), and one bound is
added: a member's header records (pax, GNU long names, sparse maps) may take MAX_HEADER_BYTES, where tarfile
would read any size into memory.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from typing import cast

from scanner.image.streams import Readable

# tarfile's header errors, which typeshed does not declare: which one TarInfo.fromtarfile raises decides,
# as in TarFile.next, whether the stream ends quietly or is an error.
_HEADER_ERRORS: dict[str, type[Exception]] = {
    name: vars(tarfile)[name]
    for name in (
        "EOFHeaderError",
        "InvalidHeaderError",
        "TruncatedHeaderError",
        "EmptyHeaderError",
        "SubsequentHeaderError",
    )
}
_EOF_HEADER = _HEADER_ERRORS["EOFHeaderError"]
_BAD_HEADER = (_HEADER_ERRORS["InvalidHeaderError"], _HEADER_ERRORS["TruncatedHeaderError"])
_EMPTY_HEADER = _HEADER_ERRORS["EmptyHeaderError"]
_SUBSEQUENT_HEADER = _HEADER_ERRORS["SubsequentHeaderError"]


BLOCK = tarfile.BLOCKSIZE
# The most one member's header records may take (pax records, GNU long names, sparse maps), as Go's archive/tar
# (which Docker uses) allows: tarfile would read any size into memory, up to the whole layer.
MAX_HEADER_BYTES = 1 << 20
# Type flags whose header needs nothing but its own block (no pax, GNU long name or sparse records).
_PLAIN_TYPES = frozenset(b"01234567\0")
# (start, end) of mode, uid, gid, size, mtime, chksum, devmajor, devminor.
_NUMBER_FIELDS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (148, 156), (329, 337), (337, 345))


def _numbers(block: bytes) -> list[int] | None:
    """The number fields as tarfile's `nti` reads them, or None where this reading might differ from it.

    `nti` decodes the field up to its first NUL as ASCII, strips str whitespace and reads octal. Here the bytes
    go to int() as they are: it refuses every non-ASCII byte (so base-256 fields and what the ASCII decoding
    refuses), and bytes.strip() strips less than str.strip(), so whatever int() accepts here reads the same
    there. Negative numbers are left to tarfile too."""
    numbers = []
    for start, end in _NUMBER_FIELDS:
        field = block[start:end]
        nul = field.find(b"\0")
        try:
            value = int((field if nul < 0 else field[:nul]).strip() or b"0", 8)
        except ValueError:
            return None
        if value < 0:
            return None
        numbers.append(value)
    return numbers


def _text(block: bytes, start: int, end: int) -> str:
    field = block[start:end]
    nul = field.find(b"\0")
    return (field if nul < 0 else field[:nul]).decode(tarfile.ENCODING, "surrogateescape")


class PieceReader:
    """A forward-only file object (read, tell, seek forward) over pieces from `next_piece` (b"" at the end).

    `skip(n)`, where the source has it, moves the source on by up to n bytes without producing them and
    returns how many it skipped (a layer read where it lies in a file: skipped data is never read)."""

    def __init__(self, next_piece: Callable[[], bytes], skip: Callable[[int], int] | None = None) -> None:
        self._next_piece = next_piece
        self._skip = skip
        self._piece = b""
        self._at = 0  # offset of the next unread byte in _piece
        self._pos = 0  # offset of the next unread byte in the stream
        self._eof = False
        self.limit: int | None = None  # reading past this offset is an error (while tarfile reads a header)

    def _fill(self) -> bool:
        """Make the current piece hold unread bytes; False at the end of the stream."""
        while self._at >= len(self._piece):
            if self._eof:
                return False
            piece = self._next_piece()
            if not piece:
                self._eof, self._piece, self._at = True, b"", 0
                return False
            self._piece, self._at = piece, 0
        return True

    def read(self, size: int = -1, /) -> bytes:
        if self.limit is not None and (size < 0 or self._pos + size > self.limit):
            raise tarfile.ReadError(
                f"tar header records over {MAX_HEADER_BYTES} bytes (pax, GNU long name or sparse map)"
            )
        at = self._at
        if 0 <= size <= len(self._piece) - at:  # the common case: inside the current piece
            self._at = at + size
            self._pos += size
            return self._piece[at : at + size]
        parts: list[bytes] = []
        left = size if size >= 0 else 1 << 62
        while left > 0 and self._fill():
            take = min(left, len(self._piece) - self._at)
            parts.append(self._piece[self._at : self._at + take])
            self._at += take
            self._pos += take
            left -= take
        return b"".join(parts)

    def tell(self) -> int:
        return self._pos

    def peek_block(self) -> bytes:
        """The next BLOCK bytes (fewer at the end of the stream), not consumed."""
        at = self._at
        if len(self._piece) - at >= BLOCK:
            return self._piece[at : at + BLOCK]
        rest = self._piece[at:]
        while len(rest) < BLOCK and not self._eof:  # a header across pieces: rare, joined once
            piece = self._next_piece()
            if not piece:
                self._eof = True
            rest += piece
        self._piece, self._at = rest, 0
        return rest[:BLOCK]

    def skip_block(self) -> None:
        """Consume the block `peek_block` returned (which was a whole one)."""
        self._at += BLOCK
        self._pos += BLOCK

    def seek(self, pos: int, whence: int = 0, /) -> int:
        """Forward only (as tarfile's stream mode): skipped pieces are dropped, never copied."""
        if whence != 0 or pos < self._pos:
            raise tarfile.StreamError("seeking backwards is not allowed")
        skip = pos - self._pos
        if skip > len(self._piece) - self._at and self._skip is not None and not self._eof:
            # Past the current piece: drop its rest, then let the source skip the remainder unread.
            skip -= len(self._piece) - self._at
            self._pos += len(self._piece) - self._at
            self._piece, self._at = b"", 0
            skipped = self._skip(skip)
            self._pos += skipped
            skip -= skipped
        while skip > 0 and self._fill():
            take = min(skip, len(self._piece) - self._at)
            self._at += take
            self._pos += take
            skip -= take
        return self._pos

    def drain(self) -> bool:
        """Read to the end of the stream; True if any of what was left holds a non-zero byte."""
        extra = False
        while self._fill():
            if not extra and self._piece[self._at :].strip(b"\0"):
                extra = True
            self._pos += len(self._piece) - self._at
            self._at = len(self._piece)
        return extra


class _MemberReader:
    """A non-sparse member's data: `tarfile._FileInFile` for a single data block, without the BufferedReader
    around it (whose read-ahead would copy every piece once more)."""

    def __init__(self, fileobj: PieceReader, offset: int, size: int) -> None:
        self._fileobj = fileobj
        self._offset = offset
        self._size = size
        self._position = 0

    def read(self, size: int = -1, /) -> bytes:
        left = self._size - self._position
        length = left if size < 0 else min(size, left)
        if length <= 0:
            return b""
        self._fileobj.seek(self._offset + self._position)
        data = self._fileobj.read(length)
        if len(data) != length:
            raise tarfile.ReadError("unexpected end of data")
        self._position += length
        return data


class _Archive:
    """What `TarInfo.fromtarfile` and `ExFileObject` use of a TarFile opened for reading."""

    def __init__(self, fileobj: PieceReader) -> None:
        self.fileobj = fileobj
        self.encoding = tarfile.ENCODING
        self.errors = "surrogateescape"
        self.pax_headers: dict[str, str] = {}
        self.offset = 0  # where the next member's header starts


class TarStream:
    """The members of one tar stream, in order, as `tarfile.open(fileobj=..., mode="r|")` yields them."""

    def __init__(self, next_piece: Callable[[], bytes], skip: Callable[[int], int] | None = None) -> None:
        self.fileobj = PieceReader(next_piece, skip)
        self._archive = _Archive(self.fileobj)
        self._tarfile = cast(tarfile.TarFile, self._archive)

    def members(self) -> Iterator[tarfile.TarInfo]:
        """Each member in turn; the stream stops where tarfile stops (end marker, or a bad header after
        the first). Raises tarfile.ReadError (or StreamError) where tarfile would."""
        while (member := self._next()) is not None:
            yield member

    def _next(self) -> tarfile.TarInfo | None:
        """`TarFile.next` without ignore_zeros, member list or debug output."""
        archive, fileobj = self._archive, self.fileobj
        if archive.offset != fileobj.tell():
            if archive.offset == 0:
                return None
            fileobj.seek(archive.offset - 1)
            if not fileobj.read(1):
                raise tarfile.ReadError("unexpected end of data")
        member = self._plain_member() if not archive.pax_headers else None
        if member is not None:
            return member
        fileobj.limit = fileobj.tell() + BLOCK + MAX_HEADER_BYTES
        try:
            return tarfile.TarInfo.fromtarfile(self._tarfile)
        except _EOF_HEADER:
            return None
        except _BAD_HEADER as exc:
            if archive.offset == 0:
                raise tarfile.ReadError(str(exc)) from None
            return None
        except _EMPTY_HEADER:
            if archive.offset == 0:
                raise tarfile.ReadError("empty file") from None
            return None
        except _SUBSEQUENT_HEADER as exc:
            raise tarfile.ReadError(str(exc)) from None
        finally:
            fileobj.limit = None

    def _plain_member(self) -> tarfile.TarInfo | None:
        """The next member when its header is one plain block (the common case), read as `TarInfo.frombuf`
        and `_proc_builtin` read it; None (nothing consumed) for anything else, which tarfile then reads."""
        block = self.fileobj.peek_block()
        if len(block) != BLOCK or block[156] not in _PLAIN_TYPES:
            return None
        numbers = _numbers(block)
        if numbers is None:
            return None
        mode, uid, gid, size, mtime, chksum, devmajor, devminor = numbers
        if chksum != 256 + sum(block) - sum(block[148:156]):
            return None  # maybe the signed checksum, maybe a bad header: tarfile decides
        self.fileobj.skip_block()
        member = tarfile.TarInfo(_text(block, 0, 100))
        member.mode, member.uid, member.gid, member.size, member.mtime = mode, uid, gid, size, mtime
        member.chksum = chksum
        member.type = block[156:157]
        member.linkname = _text(block, 157, 257)
        member.uname = _text(block, 265, 297)
        member.gname = _text(block, 297, 329)
        member.devmajor, member.devminor = devmajor, devminor
        prefix = _text(block, 345, 500)
        if member.type == tarfile.AREGTYPE and member.name.endswith("/"):
            member.type = tarfile.DIRTYPE
        if member.isdir():
            member.name = member.name.rstrip("/")
        if prefix:
            member.name = prefix + "/" + member.name
        member.offset_data = self.fileobj.tell()
        member.offset = member.offset_data - BLOCK
        self._archive.offset = member.offset_data
        if member.isreg():
            self._archive.offset += -(-member.size // BLOCK) * BLOCK
        if member.isdir():
            member.name = member.name.rstrip("/")
        return member

    def extractfile(self, member: tarfile.TarInfo) -> Readable | None:
        """The content of a regular member (or one of an unknown type), read in order; None otherwise."""
        if not (member.isreg() or member.type not in tarfile.SUPPORTED_TYPES):
            return None
        if member.sparse is not None:  # holes to fill in: tarfile's own reader
            return tarfile.ExFileObject(self._tarfile, member)
        return _MemberReader(self.fileobj, member.offset_data, member.size)

    def drain(self) -> bool:
        """Read the rest of the stream (for its digest); True if non-zero data follows the tar's end."""
        return self.fileobj.drain()
