"""An uncompressed layer stored plainly in a local file (a `docker save` archive's member, an OCI layout's
blob), read where it lies instead of streamed.

Streamed, every byte of such a layer passes through Python twice (the archive's reader, then the tar walk),
and every program a detector wants is copied into the scratch file. Here the tar walk reads headers and the
small files it keeps with `pread` and skips everything else without reading it; large files and programs are
captured in place (`ContentStore.capture_range`: read or mapped from this file when a detector asks, the file
kept open until the analysis ends); the layer's SHA-256 (its diff_id, and its digest where the source names
one) is computed on a thread of its own through a map of the same range, outside the interpreter lock.

The file is checked as a streamed blob would be (digest, size, the image's byte budget). It is the user's own
local image, or a layout the trusted side of a scan job wrote: a file cut short while it is read is an error
where it is read with `pread`, and ends the process (SIGBUS) where it is mapped, never a silently short read.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from scanner.image.streams import Budget
from scanner.model.errors import DigestMismatchError, LayerError

# Bytes a piece of the tar walk reads at a time: enough for the headers and small files of a run of
# members in one call, small enough that a large file the walk skips is mostly never read.
PIECE = 64 << 10
# Bytes the digest thread hashes at a time through the map, each chunk's pages released after it.
HASH_CHUNK = 4 << 20


@dataclass(frozen=True)
class FileRange:
    """`size` bytes at `offset` of an open file; `owned`: the range's reader closes the file."""

    file: IO[bytes]
    offset: int
    size: int
    owned: bool = False

    def pread(self, size: int, at: int) -> bytes:
        """Up to `size` bytes at offset `at` of the range (fewer only at its end or where the file ended early)."""
        size = max(0, min(size, self.size - at))
        return os.pread(self.file.fileno(), size, self.offset + at) if size else b""

    def sub(self, at: int, size: int) -> FileRange:
        """The part of this range at `at`, `size` bytes long (the caller checked it lies inside)."""
        return FileRange(self.file, self.offset + at, size)

    def mapped(self) -> tuple[mmap.mmap, int]:
        """A read-only map of the file from the page boundary at or below the range's start (where a map must
        begin), and where the range starts in it. Raises what mmap raises: OSError, OverflowError, and
        ValueError where the file is shorter than the range."""
        delta = self.offset % mmap.ALLOCATIONGRANULARITY
        size = delta + self.size
        return mmap.mmap(self.file.fileno(), size, access=mmap.ACCESS_READ, offset=self.offset - delta), delta

    def release(self) -> None:
        """Close the file if the range owns it (a range no one will read)."""
        if self.owned:
            self.file.close()


class RangeLayer:
    """A layer's uncompressed tar in a file range, with the interface the layer reader and the replay use of a
    streamed layer (`next_piece`, `close`, `diff_hash`, `verify`) plus `skip` and `at`.

    `digest` is the blob digest to check ("" where the source names none); it is a sha256 digest, since the
    blob is its own uncompressed content."""

    def __init__(
        self,
        data: FileRange,
        digest: str,
        expected_size: int,
        budget: Budget,
        what: str,
        on_chunk: Callable[[int], None] | None = None,
    ) -> None:
        self._data = data
        self._owns_file = data.owned
        self._on_chunk = on_chunk  # progress, called from the digest thread
        self._digest = digest
        self._what = what
        self._pos = 0
        self._hash = hashlib.sha256()
        self._error: BaseException | None = None
        if expected_size >= 0 and expected_size != data.size:
            raise DigestMismatchError(f"{what}: blob has {data.size} bytes, the manifest declares {expected_size}")
        budget.add_bytes(data.size, what)  # counted at once: its size is known before a byte is read
        self._thread: threading.Thread | None = threading.Thread(
            target=self._hash_range, name="acrguard-layer-hash", daemon=True
        )
        self._thread.start()

    def _hash_range(self) -> None:
        if not self._data.size:
            return  # an empty layer: the digest of nothing (and a map of nothing cannot be made)
        try:
            self._hash_mapped()
        except (OSError, ValueError, LayerError) as exc:
            self._error = exc

    def _hash_mapped(self) -> None:
        """Hash the range through a read-only map of the file, a chunk at a time, each chunk's pages released
        once hashed (a map's pages count as the process's memory): no copy, and hashlib leaves the interpreter
        lock for each chunk."""
        if os.fstat(self._data.file.fileno()).st_size < self._data.offset + self._data.size:
            raise LayerError(f"{self._what}: the file ends before the end of the layer")
        mapped, at = self._data.mapped()
        end = at + self._data.size
        with mapped:
            view = memoryview(mapped)
            try:
                while at < end:
                    stop = min(at + HASH_CHUNK, end)
                    self._hash.update(view[at:stop])
                    mapped.madvise(mmap.MADV_DONTNEED, at - at % mmap.PAGESIZE, stop - at + at % mmap.PAGESIZE)
                    if self._on_chunk is not None:
                        self._on_chunk(stop - at)
                    at = stop
            finally:
                view.release()

    def next_piece(self) -> bytes:
        """The next bytes of the tar from the walk's position; b"" at the end."""
        piece = self._data.pread(PIECE, self._pos)
        self._pos += len(piece)
        return piece

    def skip(self, size: int) -> int:
        """Move the walk's position `size` bytes on without reading them (not past the end); bytes skipped."""
        skipped = max(0, min(size, self._data.size - self._pos))
        self._pos += skipped
        return skipped

    def at(self, offset: int, size: int) -> FileRange | None:
        """Where `size` bytes at `offset` of the tar lie in the file (None if not wholly inside the layer)."""
        if offset < 0 or size < 0 or offset + size > self._data.size:
            return None
        return self._data.sub(offset, size)

    @property
    def file(self) -> IO[bytes]:
        return self._data.file

    def hand_over_file(self) -> IO[bytes] | None:
        """The file if the range owns it, for the content store to keep open (and close) once contents refer
        to it: the layer no longer closes it."""
        owned, self._owns_file = self._owns_file, False
        return self._data.file if owned else None

    def close(self) -> None:
        """Wait for the digest (safe to call more than once); close the file if the range owns it and has not
        handed it on."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._owns_file:
                self._data.file.close()

    @property
    def diff_hash(self) -> hashlib._Hash:
        """The SHA-256 of the whole range; raises LayerError if the file could not be read to its end."""
        self.close()
        if self._error is not None:
            raise LayerError(f"{self._what}: cannot read the layer ({self._error})") from None
        return self._hash

    def verify(self) -> None:
        """Check the blob digest the source names, if any (the size was checked at once)."""
        actual = "sha256:" + self.diff_hash.hexdigest()
        if self._digest and actual != self._digest:
            raise DigestMismatchError(f"{self._what}: content digest {actual} does not match {self._digest}")
