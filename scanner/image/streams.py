"""Byte streams for blobs: digest and size verification while streaming, and bounded decompression.

The compression of a layer is read from its first bytes, not trusted from the media type (docker save
writes plain tars under gzip media types and vice versa). Every decompressor is asked for bounded
output per call, so a decompression bomb is stopped by the image's byte budget, not by memory.
"""

from __future__ import annotations

import bz2
import contextlib
import hashlib
import lzma
import queue
import threading
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType
from typing import Any, Protocol, TypeVar

import zstandard

from scanner.model.errors import DigestMismatchError, LayerError, LimitExceededError

inflate: ModuleType
try:  # ISA-L: 2.2x zlib's inflate speed on the benchmark layer (zlib-ng: 1.85x), the same bytes out, and like zlib it
    # releases the GIL, so the layer is inflated in the background while the tar stream is parsed
    from isal import isal_zlib as inflate
except ImportError:  # a platform without its wheel: the standard library's
    inflate = zlib
# What corrupt or truncated layer data raises, whichever library decompresses it.
DATA_ERRORS: tuple[type[Exception], ...] = (
    zlib.error,
    inflate.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    zstandard.ZstdError,
)

CHUNK = 1 << 20
# Uncompressed bytes per decompressor call: each piece handed between the threads costs GIL hand-overs,
# so pieces are large; the queue between them holds QUEUED of them (bounded memory whatever the layer).
PIECE = 4 << 20
QUEUED = 4
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _hasher(digest: str) -> hashlib._Hash | None:
    algorithm = digest.partition(":")[0]
    if algorithm in ("sha256", "sha512"):
        return hashlib.new(algorithm)
    return None


class VerifyingReader:
    """Reads chunks from an iterator, hashing and counting them; `verify()` checks digest and size.

    `digest` may be "" where the source has no content address (legacy docker save layers).
    Reading past `expected_size` (or `max_size` when the size is unknown) is an error at once, so a
    registry that streams forever cannot exhaust memory or disk.
    """

    def __init__(self, chunks: Iterable[bytes], digest: str, expected_size: int, max_size: int, what: str):
        self._chunks: Iterator[bytes] = iter(chunks)
        self._digest = digest
        self._hash = _hasher(digest) if digest else None
        if digest and self._hash is None:
            raise DigestMismatchError(f"{what}: unsupported digest algorithm in '{digest}'")
        self._expected = expected_size
        self._max = expected_size if expected_size >= 0 else max_size
        self._what = what
        self._buf = bytearray()
        self._eof = False
        self.count = 0
        self.on_chunk: Callable[[int], None] | None = None  # progress reporting

    @property
    def checked_digest(self) -> str:
        """The digest `verify()` checks the content against; "" when there is none to check."""
        return self._digest if self._hash is not None else ""

    def _pull(self) -> bool:
        chunk = self._next_chunk()
        if chunk is None:
            return False
        self._buf += chunk
        return True

    def _next_chunk(self) -> bytes | None:
        """The next chunk, counted and hashed; None at the end."""
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._eof = True
            return None
        self.count += len(chunk)
        if self.count > self._max:
            if self._expected >= 0:
                raise DigestMismatchError(f"{self._what}: blob is larger than its declared size {self._expected}")
            raise LimitExceededError(f"{self._what}: blob exceeds the limit of {self._max} bytes")
        if self._hash is not None:
            self._hash.update(chunk)
        if self.on_chunk is not None:
            self.on_chunk(len(chunk))
        return chunk

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            while self._pull():
                pass
            out = bytes(self._buf)
            self._buf.clear()
            return out
        if not self._buf and not self._eof:  # the common case: whole chunks, passed on without copying
            first = self._next_chunk()
            if first is None or len(first) >= size:
                if first is not None and len(first) > size:
                    self._buf += first[size:]
                return first[:size] if first is not None else b""
            self._buf += first
        while len(self._buf) < size and not self._eof and self._pull():
            pass
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def verify(self) -> None:
        """Drain what is left and check size and digest; raises DigestMismatchError."""
        while self._pull():
            self._buf.clear()
        if self._expected >= 0 and self.count != self._expected:
            raise DigestMismatchError(
                f"{self._what}: blob has {self.count} bytes, the manifest declares {self._expected}"
            )
        if self._hash is not None:
            actual = f"{self._digest.partition(':')[0]}:{self._hash.hexdigest()}"
            if actual != self._digest:
                raise DigestMismatchError(f"{self._what}: content digest {actual} does not match {self._digest}")


def file_chunks(handle: Readable, chunk_size: int = CHUNK) -> Iterator[bytes]:
    while True:
        chunk = handle.read(chunk_size)
        if not chunk:
            return
        yield chunk


class Budget:
    """Uncompressed bytes and tar members read for one image, across its layers."""

    def __init__(self, max_bytes: int, max_members: int) -> None:
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.bytes = 0
        self.members = 0
        self._lock = threading.Lock()  # two layers' decompressing threads count at once (see `opened_ahead`)

    def add_bytes(self, n: int, what: str) -> None:
        with self._lock:
            self.bytes += n
            total = self.bytes
        if total > self.max_bytes:
            raise LimitExceededError(
                f"{what}: more than {self.max_bytes} uncompressed bytes (decompression bomb?); "
                "raise limit max_total_bytes if the image is genuine"
            )

    def add_member(self, what: str) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise LimitExceededError(
                f"{what}: more than {self.max_members} tar members; raise limit max_members if genuine"
            )


class _Decoder(Protocol):
    def feed(self, data: bytes, max_out: int) -> bytes: ...
    def needs_input(self) -> bool: ...
    def finished(self) -> bool: ...


class _Zlib:
    """gzip, including multi-member streams (eStargz, pigz) and zero padding after the last member."""

    def __init__(self) -> None:
        self._d = inflate.decompressobj(wbits=31)
        self._done = False

    def feed(self, data: bytes, max_out: int) -> bytes:
        if self._done:
            if data.strip(b"\0"):
                if not data.startswith(GZIP_MAGIC):
                    raise zlib.error("trailing garbage after gzip stream")
                self._d, self._done = inflate.decompressobj(wbits=31), False
            else:
                return b""
        out: bytes = self._d.decompress(self._d.unconsumed_tail + data if data else self._d.unconsumed_tail, max_out)
        if self._d.eof:
            rest = self._d.unused_data
            self._done = True
            if rest:
                out += self.feed(rest, max(max_out - len(out), 1))
        return out

    def needs_input(self) -> bool:
        return self._done or not self._d.unconsumed_tail

    def finished(self) -> bool:
        return self._done


class _Zstd:
    """zstd, multi-frame. python-zstandard's decompressobj has no output bound, so input is fed in
    small slices: one 2 KiB slice can expand to at most 64 MiB (RLE blocks), which the budget then sees.
    """

    SLICE = 2048

    def __init__(self) -> None:
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._input = b""
        self._pos = 0
        self._done = False

    def feed(self, data: bytes, max_out: int) -> bytes:
        if data:
            self._input, self._pos = self._input[self._pos :] + data, 0
        out = bytearray()
        while self._pos < len(self._input) and len(out) < max_out:
            piece = self._input[self._pos : self._pos + self.SLICE]
            self._pos += len(piece)
            if self._done:
                if not piece.strip(b"\0"):
                    continue
                self._d, self._done = zstandard.ZstdDecompressor().decompressobj(), False
            out += self._d.decompress(piece)
            if self._d.eof:
                self._done = True
                rest = self._d.unused_data
                if rest:
                    self._input, self._pos = rest + self._input[self._pos :], 0
        return bytes(out)

    def needs_input(self) -> bool:
        return self._pos >= len(self._input)

    def finished(self) -> bool:
        return self._done


class _Generic:
    """xz and bzip2 through the stdlib's max_length-aware decompressors."""

    def __init__(self, kind: str) -> None:
        self._d: lzma.LZMADecompressor | bz2.BZ2Decompressor = (
            lzma.LZMADecompressor() if kind == "xz" else bz2.BZ2Decompressor()
        )

    def feed(self, data: bytes, max_out: int) -> bytes:
        if self._d.eof:
            return b""
        return self._d.decompress(data, max_out)

    def needs_input(self) -> bool:
        return self._d.eof or self._d.needs_input

    def finished(self) -> bool:
        return self._d.eof


class LayerStream:
    """Uncompressed view of a layer blob with `read(n)`, for tarfile's stream mode.

    Counts bytes against the image budget and hashes them, so the diff_id can be checked.
    """

    def __init__(self, raw: Readable, budget: Budget, what: str) -> None:
        self._raw = raw
        self._budget = budget
        self._what = what
        self._buf = bytearray()
        self._eof = False
        self._diff_hash = hashlib.sha256()
        self.count = 0
        head = raw.read(CHUNK)
        self.compression = sniff_compression(head)
        self._pending = head
        self._decoder: _Decoder | None = None
        self._thread: threading.Thread | None = None
        self._hasher: threading.Thread | None = None
        if self.compression == "gzip":
            self._decoder = _Zlib()
        elif self.compression == "zstd":
            self._decoder = _Zstd()
        elif self.compression in ("xz", "bzip2"):
            self._decoder = _Generic(self.compression)

    def _produce(self) -> bytes:
        """Next piece of uncompressed output; b"" at the end of the stream."""
        if self.compression == "none":  # the source's chunks as they come: joining them would copy every byte
            data, self._pending = (self._pending or self._raw.read(CHUNK)), b""
            return data
        assert self._decoder is not None
        while True:
            data = b""
            if self._decoder.needs_input():
                data, self._pending = (self._pending or self._raw.read(CHUNK)), b""
                if not data:
                    if not self._decoder.finished():
                        raise EOFError(f"truncated {self.compression} stream")
                    return b""
            out = self._decoder.feed(data, PIECE)
            if out:
                return out

    def _next_piece(self) -> bytes:
        """One piece of uncompressed output, counted and hashed; b"" at the end of the stream."""
        try:
            out = self._produce()
        except DATA_ERRORS as exc:
            raise LayerError(f"{self._what}: corrupt or truncated {self.compression} data ({exc})") from None
        if out:
            self.count += len(out)
            self._budget.add_bytes(len(out), self._what)
        return out

    def start_background(self) -> None:
        """Fetch, verify and decompress in one thread and hash the output in another, while the caller
        parses the tar stream.

        ISA-L, zlib, zstd and hashlib release the GIL, so on two cores decompression, hashing and tar
        parsing overlap. Each queue holds at most QUEUED pieces, so memory stays bounded whatever the layer.
        """
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=QUEUED)
        self._hash_queue: queue.Queue[bytes] = queue.Queue(maxsize=QUEUED)
        self._stop = threading.Event()
        self._hasher = threading.Thread(target=self._hash_pieces, name="acrguard-layer-hash", daemon=True)
        self._hasher.start()
        self._thread = threading.Thread(target=self._pump, name="acrguard-layer", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                piece = self._next_piece()
                self._put(self._hash_queue, piece)
                self._put(self._queue, piece)
                if not piece:
                    return
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(self._queue, exc)

    def _hash_pieces(self) -> None:
        while piece := self._hash_queue.get():
            self._diff_hash.update(piece)

    def _put(self, into: queue.Queue[Any], item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                into.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _fetch(self) -> bytes:
        if self._thread is None:
            piece = self._next_piece()
            if self._hasher is None:
                self._diff_hash.update(piece)
            return piece
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    @property
    def diff_hash(self) -> hashlib._Hash:
        """The SHA-256 of the uncompressed bytes produced so far (stops the background threads, if any)."""
        self.close()
        return self._diff_hash

    def next_piece(self) -> bytes:
        """The next piece of uncompressed data, whatever its size, without copying it; b"" at the end."""
        if self._buf:
            out = bytes(self._buf)
            self._buf.clear()
            return out
        if self._eof:
            return b""
        out = self._fetch()
        if not out:
            self._eof = True
        return out

    def close(self) -> None:
        """Stop the background threads, if any (safe to call more than once)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._hasher is not None and self._hasher.is_alive():
            self._hash_queue.put(b"")  # the producer has stopped: the hasher empties the queue, then ends
            self._hasher.join()

    def read(self, size: int = -1, /) -> bytes:
        want = size if size is not None and size >= 0 else 1 << 62
        while len(self._buf) < want and not self._eof:
            out = self._fetch()
            if not out:
                self._eof = True
                break
            self._buf += out
        out = bytes(self._buf[:want])
        del self._buf[:want]
        return out

    def drain(self) -> bool:
        """Read to the end (for digests); True if non-zero data was found after the tar's end."""
        extra = False
        while True:
            chunk = self.read(CHUNK)
            if not chunk:
                return extra
            if not extra and chunk.strip(b"\0"):
                extra = True


T = TypeVar("T")


def opened_ahead(
    openers: Sequence[Callable[[], T]], discard: Callable[[T], None], *, ahead: bool = True
) -> Generator[T, None, None]:
    """What each opener returns, in order; with `ahead`, the next one runs in a thread while the caller uses
    the current one (the next layer is requested, and starts decompressing, while this one is parsed). An
    opener's exception is raised when its turn comes, as if it had run then. Closing the iterator early hands
    what the pending opener returned to `discard`. Without `ahead` (sources whose blobs share one file
    handle), each opener runs when its turn comes."""
    if not ahead:
        for opener in openers:
            yield opener()
        return
    with ThreadPoolExecutor(1, thread_name_prefix="acrguard-open") as pool:
        pending: Future[T] | None = pool.submit(openers[0]) if openers else None
        try:
            for i in range(len(openers)):
                assert pending is not None
                current = pending.result()
                pending = pool.submit(openers[i + 1]) if i + 1 < len(openers) else None
                yield current
        finally:
            if pending is not None and not pending.cancel():
                # Its failure no longer matters: the caller stopped before its turn.
                with contextlib.suppress(Exception):
                    discard(pending.result())


def sniff_compression(head: bytes) -> str:
    """gzip, zstd, xz, bzip2 or none, from a blob's first bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(BZIP2_MAGIC) and len(head) > 3 and head[3:4].isdigit():
        return "bzip2"
    return "none"
