"""Where captured file contents live: small ones in memory, large ones in one scratch file.

Spilled contents are appended to a single unnamed scratch file and read back by offset (or mapped, for the
detectors of programs): no name taken from the image ever reaches the file system, so hostile member paths
cannot place anything outside the scratch area, and an image with hundreds of programs costs one file
creation instead of hundreds (creating a file costs about half a millisecond on an ordinary disk, more than
copying a small program into it).

A file of a layer read where it lies in a local file (`filerange.RangeLayer`) is not copied at all when it is
large or a program: its content is read (or mapped) from that file when a detector asks, so the programs of a
Debian image, which its OS packages own and no detector reads past their headers, cost nothing to capture.
Such a file stays open until the store is closed; past MAX_FILES_IN_PLACE of them, contents are copied
into the scratch file as streamed ones are.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from functools import partial
from typing import IO, BinaryIO

from scanner.image.filerange import FileRange
from scanner.image.streams import Readable
from scanner.image.tree import ByteView, Content
from scanner.model.errors import LayerError, LimitExceededError
from scanner.model.limits import Limits


def _read_all(data: FileRange) -> bytes:
    """The range's bytes; pread returns at most about 2 GiB at a time, so a larger content takes several calls.
    Read through the file object, not a descriptor number: once the file is closed, `fileno()` raises instead of
    reading whatever file reused the number."""
    parts: list[bytes] = []
    size, offset = data.size, data.offset
    while size:
        part = os.pread(data.file.fileno(), size, offset)
        if not part:
            raise OSError(f"file ended {size} bytes early at offset {offset}")
        parts.append(part)
        size -= len(part)
        offset += len(part)
    return b"".join(parts) if len(parts) != 1 else parts[0]


def _view(data: FileRange) -> ByteView:
    """The range without copying it: a read-only map (a view into one where the range does not start on a page
    boundary); read like `_read_all` where the kernel refuses the map (an address-space limit, a file now shorter
    than the range)."""
    if data.size == 0:
        return b""
    try:
        mapped, delta = data.mapped()
    except (OSError, OverflowError, ValueError):
        return _read_all(data)
    return mapped if delta == 0 else memoryview(mapped)[delta:]


def _in(data: FileRange) -> Content:
    """A content that lies in `data` (the scratch file, or a layer's file read in place), read when asked for."""
    return Content(data.size, reader=partial(_read_all, data), viewer=partial(_view, data))


# Files whose contents may be captured in place at once (each stays open until the store closes).
MAX_FILES_IN_PLACE = 64


class _RangeReader:
    """A file range read from its start, for `capture`."""

    def __init__(self, data: FileRange) -> None:
        self._data = data
        self._at = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._data.pread(self._data.size - self._at if size < 0 else size, self._at)
        self._at += len(chunk)
        return chunk


class ContentStore:
    def __init__(self, limits: Limits, scratch_dir: str | None = None) -> None:
        self._limits = limits
        self._parent = scratch_dir
        self._file: BinaryIO | None = None
        self._end = 0
        self.captured_bytes = 0
        self._kept: list[IO[bytes]] = []  # files this store closes
        self._in_place: dict[int, IO[bytes]] = {}  # the files contents captured in place are read from, by id

    def _scratch(self) -> BinaryIO:
        if self._file is None:
            # Unnamed where the kernel allows it (O_TMPFILE), unlinked at once otherwise; buffering off: each
            # content is written in large chunks and read back with pread, which must see every byte.
            self._file = tempfile.TemporaryFile(prefix="acrguard-", dir=self._parent, buffering=0)  # noqa: SIM115 (closed by close())
        return self._file

    def _count(self, size: int, what: str) -> None:
        self.captured_bytes += size
        if self.captured_bytes > self._limits.max_captured_bytes:
            raise LimitExceededError(
                f"{what}: captured files exceed {self._limits.max_captured_bytes} bytes (limit max_captured_bytes)"
            )

    def _spilled(self, start: int, written: int) -> Content:
        self._end = start + written
        return _in(FileRange(self._scratch(), start, written))

    def _next_start(self) -> int:
        """Where the next spilled content starts: on a page boundary, where a map of it may begin (the gap
        stays a hole)."""
        return -(-self._end // mmap.ALLOCATIONGRANULARITY) * mmap.ALLOCATIONGRANULARITY

    def capture(self, handle: Readable, size: int, what: str, *, spill: bool = False) -> Content:
        """Read `size` bytes of one file; the caller has checked `size` against max_file_size. `spill` keeps it
        in the scratch file whatever its size: files wanted by kind (every program of the image) would
        otherwise make memory grow with the image."""
        self._count(size, what)
        if size <= self._limits.spill_threshold and not spill:
            data = handle.read(size)
            return Content(len(data), data=data)
        out = self._scratch()
        start = self._next_start()
        if start != self._end:
            out.seek(start)
        written = 0
        while written < size:
            chunk = handle.read(min(1 << 20, size - written))
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                done = out.write(view)
                view = view[done or 0 :]
            written += len(chunk)
        return self._spilled(start, written)

    def capture_range(self, data: FileRange, what: str, *, spill: bool = False) -> Content:
        """`capture` of a file that lies in a file range: a small one read now, the others (what `capture` would
        spill) read or mapped from the range when asked for; the caller keeps the range's file open
        (`keep_open`) as long as this store is."""
        self._count(data.size, what)
        if data.size <= self._limits.spill_threshold and not spill:
            try:
                return Content(data.size, data=_read_all(data))
            except OSError as exc:
                raise LayerError(f"{what}: {exc}") from None
        if id(data.file) not in self._in_place:
            if len(self._in_place) >= MAX_FILES_IN_PLACE:
                # Every file referred to stays open: past the bound (a sandboxed child's descriptors are few, an
                # image may have hundreds of plain layers), contents are copied as streamed ones are.
                return self.capture(_RangeReader(data), data.size, what, spill=True)
            self._in_place[id(data.file)] = data.file
        return _in(data)

    def refers_to(self, file: IO[bytes]) -> bool:
        """Whether contents captured in place are read from `file` (which must then stay open)."""
        return id(file) in self._in_place

    def keep_open(self, file: IO[bytes]) -> None:
        """Close `file` with the store: contents captured in place are read from it."""
        self._kept.append(file)

    def close(self) -> None:
        for file in self._kept:
            file.close()
        self._kept.clear()
        self._in_place.clear()
        if self._file is not None:
            self._file.close()
            self._file = None
