"""Blob verification and bounded decompression."""

from __future__ import annotations

import gzip
import io
import lzma
import threading
import zlib
from collections.abc import Callable

import pytest
import zstandard

from scanner.image.streams import Budget, LayerStream, VerifyingReader, inflate, opened_ahead
from scanner.model.errors import DigestMismatchError, LayerError, LimitExceededError

DATA = b"layer bytes " * 50_000


def sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_verifying_reader_accepts_matching_blob() -> None:
    reader = VerifyingReader(iter([DATA[:10], DATA[10:]]), sha256(DATA), len(DATA), 10**9, "blob")
    assert reader.read(-1) == DATA
    reader.verify()


def test_digest_mismatch_is_named() -> None:
    reader = VerifyingReader(iter([DATA + b"!"]), sha256(DATA), -1, 10**9, "layer sha256:abc")
    reader.read(-1)
    with pytest.raises(DigestMismatchError, match="layer sha256:abc: content digest"):
        reader.verify()


def test_size_mismatch_and_overlong_blob() -> None:
    short = VerifyingReader(iter([DATA]), sha256(DATA), len(DATA) + 1, 10**9, "blob")
    with pytest.raises(DigestMismatchError, match="declares"):
        short.verify()
    longer = VerifyingReader(iter([DATA]), sha256(DATA), 10, 10**9, "blob")
    with pytest.raises(DigestMismatchError, match="larger than its declared size"):
        longer.read(-1)


@pytest.mark.parametrize(
    "blob,kind",
    [
        (gzip.compress(DATA), "gzip"),
        (gzip.compress(DATA[:100]) + gzip.compress(DATA[100:]), "gzip"),  # multi-member (eStargz, pigz)
        (zstandard.ZstdCompressor().compress(DATA), "zstd"),
        (lzma.compress(DATA), "xz"),
        (DATA, "none"),
    ],
)
def test_decompression_by_magic(blob: bytes, kind: str) -> None:
    stream = LayerStream(io.BytesIO(blob), Budget(10**9, 10), "layer")
    assert stream.compression == kind
    assert stream.read(-1) == DATA
    assert "sha256:" + stream.diff_hash.hexdigest() == sha256(DATA)


@pytest.mark.parametrize(
    "blob",
    [gzip.compress(DATA)[:-50], zstandard.ZstdCompressor().compress(DATA)[:-5], b"\x1f\x8b" + b"\x00" * 64],
)
def test_truncated_or_corrupt_streams_fail_with_layer_error(blob: bytes) -> None:
    stream = LayerStream(io.BytesIO(blob), Budget(10**9, 10), "layer sha256:feed")
    with pytest.raises(LayerError, match="layer sha256:feed: corrupt or truncated"):
        stream.read(-1)


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.ZstdCompressor(level=19).compress])
def test_decompression_bomb_stops_at_budget(compress: object) -> None:
    bomb = compress(b"\0" * 200_000_000)  # type: ignore[operator]
    assert len(bomb) < 300_000
    stream = LayerStream(io.BytesIO(bomb), Budget(20_000_000, 10), "layer bomb")
    with pytest.raises(LimitExceededError, match="decompression bomb"):
        stream.read(-1)
    assert stream.count <= 20_000_000 + 64 * 1024 * 1024


def test_opened_ahead_opens_the_next_while_the_current_is_used() -> None:
    started = [threading.Event() for _ in range(3)]

    def opener(i: int) -> Callable[[], int]:
        def run() -> int:
            started[i].set()
            return i

        return run

    opened = opened_ahead([opener(i) for i in range(3)], lambda _: None)
    assert next(opened) == 0
    assert started[1].wait(30)  # opened while 0 is in use
    assert not started[2].is_set()
    assert list(opened) == [1, 2]


def test_opened_ahead_raises_an_openers_error_in_its_turn_and_discards_what_was_not_used() -> None:
    def failing() -> int:
        raise LayerError("layer 1: broken")

    opened = opened_ahead([lambda: 0, failing], lambda _: None)
    assert next(opened) == 0
    with pytest.raises(LayerError, match="layer 1: broken"):
        next(opened)
    discarded: list[int] = []
    second = threading.Event()

    def one() -> int:
        second.set()
        return 1

    stopped = opened_ahead([lambda: 0, one, lambda: 2], discarded.append)
    assert next(stopped) == 0
    assert second.wait(30)  # under way (one not yet started would just be cancelled)
    stopped.close()
    assert discarded == [1]


def test_opened_in_turn_when_not_ahead() -> None:
    calls: list[int] = []

    def opener(i: int) -> Callable[[], int]:
        return lambda: calls.append(i) or i

    opened = opened_ahead([opener(i) for i in range(3)], lambda _: None, ahead=False)
    assert next(opened) == 0 and calls == [0]
    assert list(opened) == [1, 2] and calls == [0, 1, 2]


def test_gzip_layers_are_inflated_by_isa_l_with_the_standard_librarys_output() -> None:
    # ISA-L is a dependency: a regression to the slower fallback would pass every other test unnoticed
    assert inflate.__name__ == "isal.isal_zlib"
    layer = b"".join(bytes([i % 251]) * (i % 4000) + DATA for i in range(300))
    for level in (1, 6, 9):
        blob = gzip.compress(layer, level)
        stream = LayerStream(io.BytesIO(blob), Budget(10**9, 10), "layer")
        assert stream.read(-1) == zlib.decompress(blob, wbits=31) == layer


def _gzip_with_header_fields(data: bytes) -> bytes:
    """A gzip member with FEXTRA and FCOMMENT set (eStargz and other writers use header fields)."""
    header = b"\x1f\x8b\x08" + bytes([0x04 | 0x10]) + b"\0\0\0\0\0\xff" + (4).to_bytes(2, "little") + b"AB\0\0"
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    return header + b"comment\0" + body + zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little")


def test_gzip_header_fields_are_read_past() -> None:
    stream = LayerStream(io.BytesIO(_gzip_with_header_fields(DATA)), Budget(10**9, 10), "layer")
    assert stream.read(-1) == DATA


@pytest.mark.parametrize("at", [-6, -2])  # the trailer's CRC-32, then its length
def test_a_gzip_trailer_that_does_not_match_the_data_fails(at: int) -> None:
    blob = bytearray(gzip.compress(DATA))
    blob[at] ^= 1
    stream = LayerStream(io.BytesIO(bytes(blob)), Budget(10**9, 10), "layer sha256:feed")
    with pytest.raises(LayerError, match="layer sha256:feed: corrupt or truncated"):
        stream.read(-1)
