"""TarStream against Python's tarfile in stream mode: the same members (every header field), the same file
contents, the same end (or the same error) and the same verdict on data after the end, on the real layers
of the image fixtures, on the hostile corpus, on hand-made archives of every header format, and on
truncated and corrupted copies of all of them, read in pieces of several sizes."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import tracemalloc
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import zstandard

from scanner.image.tarstream import MAX_HEADER_BYTES, TarStream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PIECE_SIZES = (1 << 20, 4096, 700, 512, 1)
Outcome = tuple[list[tuple[Any, ...]], str, bool]
# NUL, a whitespace only str.strip() strips, space, "-", "/", "0", "7", "8", "_", base-256 markers.
BYTE_CHANGES = (0, 0x1C, 0x20, 0x2D, 0x2F, 0x30, 0x37, 0x38, 0x5F, 0x80, 0xFF)


def _fields(member: tarfile.TarInfo) -> tuple[Any, ...]:
    return (
        member.name,
        member.linkname,
        member.type,
        member.size,
        member.mode,
        member.uid,
        member.gid,
        member.mtime,
        member.uname,
        member.gname,
        member.devmajor,
        member.devminor,
        member.offset,
        member.offset_data,
        member.pax_headers,
        member.sparse,
    )


def reference(data: bytes, every_other: bool = False) -> Outcome:
    """What acrguard's layer reader saw with tarfile.open(mode="r|"): members, end, data after the end. With
    `every_other`, only the content of every other member is read (the others' is None)."""
    members: list[tuple[Any, ...]] = []
    source = io.BytesIO(data)
    try:
        with tarfile.open(fileobj=source, mode="r|") as archive:  # type: ignore[call-overload]
            for i, member in enumerate(archive):
                read = member.isreg() and (not every_other or i % 2 == 0)
                handle = archive.extractfile(member) if read else None
                members.append((*_fields(member), handle.read() if handle is not None else None))
            read_ahead = bytes(getattr(archive.fileobj, "buf", b""))
    except tarfile.TarError as exc:
        return members, f"{type(exc).__name__}: {exc}", False
    return members, "end", bool(read_ahead.strip(b"\0") or source.read().strip(b"\0"))


def ours(data: bytes, piece_size: int) -> Outcome:
    pieces: Iterator[bytes] = (data[i : i + piece_size] for i in range(0, len(data), piece_size))
    archive = TarStream(lambda: next(pieces, b""))
    members: list[tuple[Any, ...]] = []
    try:
        for member in archive.members():
            handle = archive.extractfile(member) if member.isreg() else None
            members.append((*_fields(member), handle.read() if handle is not None else None))
    except tarfile.TarError as exc:
        return members, f"{type(exc).__name__}: {exc}", False
    return members, "end", archive.drain()


class Skipping:
    """Pieces of `data` from a position the reader can move on without reading (a layer read in place)."""

    def __init__(self, data: bytes, piece_size: int) -> None:
        self.data, self.piece_size, self.pos, self.skipped = data, piece_size, 0, 0

    def next_piece(self) -> bytes:
        piece = self.data[self.pos : self.pos + self.piece_size]
        self.pos += len(piece)
        return piece

    def skip(self, size: int) -> int:
        skipped = max(0, min(size, len(self.data) - self.pos))
        self.pos += skipped
        self.skipped += skipped
        return skipped


def ours_skipping(data: bytes, piece_size: int) -> tuple[Outcome, int]:
    """`ours` over a source that can skip, reading the content of every other regular member only (the others'
    content is None); and how many bytes the source skipped unread."""
    source = Skipping(data, piece_size)
    archive = TarStream(source.next_piece, source.skip)
    members: list[tuple[Any, ...]] = []
    try:
        for i, member in enumerate(archive.members()):
            handle = archive.extractfile(member) if member.isreg() and i % 2 == 0 else None
            members.append((*_fields(member), handle.read() if handle is not None else None))
    except tarfile.TarError as exc:
        return (members, f"{type(exc).__name__}: {exc}", False), source.skipped
    return (members, "end", archive.drain()), source.skipped


def _unpacked(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _is_tar(data: bytes) -> bool:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            return archive.next() is not None
    except tarfile.TarError:
        return False


@cache
def fixture_tars() -> dict[str, bytes]:
    """The hostile corpus and image archives, and every layer (decompressed) inside them."""
    found: dict[str, bytes] = {}
    paths = sorted((FIXTURES / "hostile").rglob("*.tar")) + sorted((FIXTURES / "images").rglob("*.tar*"))
    for path in paths:
        outer = _unpacked(path.read_bytes())
        name = str(path.relative_to(FIXTURES))
        found[name] = outer
        if not _is_tar(outer):
            continue
        with tarfile.open(fileobj=io.BytesIO(outer), mode="r:") as archive:
            for member in archive:
                handle = archive.extractfile(member) if member.isreg() else None
                inner = _unpacked(handle.read()) if handle is not None else b""
                if inner and _is_tar(inner):
                    found[f"{name}!{member.name}"] = inner
    return found


def _archive(fmt: int, members: list[tuple[tarfile.TarInfo, bytes]], pax: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, pax_headers=pax) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    return info


def _with_checksum(header: bytearray) -> bytearray:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return header


def _gnu_sparse() -> bytes:
    """An old-GNU sparse member (type S: 2 data runs of 512 bytes in a 4096-byte file), then a plain file."""
    header = bytearray(tarfile.TarInfo("sparse/file").tobuf(tarfile.GNU_FORMAT))
    header[156:157] = b"S"
    header[124:136] = b"%011o\0" % 1024  # stored bytes
    header[386:410] = b"%011o\0%011o\0" % (0, 512)
    header[410:434] = b"%011o\0%011o\0" % (3584, 512)
    header[483:495] = b"%011o\0" % 4096  # real size
    plain = _archive(tarfile.GNU_FORMAT, [(_info("after", size=3), b"abc")])
    return bytes(_with_checksum(header)) + b"A" * 512 + b"B" * 512 + plain


def _v7_and_prefix() -> bytes:
    """A V7 directory (regular type, trailing slash), a ustar name split into prefix and name, a
    directory with redundant slashes, and an unknown type flag (read as a regular file)."""
    long_dir = "p" * 90 + "/" + "q" * 90
    blocks = [
        _with_checksum(bytearray(_info("v7dir/", tarfile.AREGTYPE).tobuf(tarfile.USTAR_FORMAT))),
        bytearray(_info(long_dir + "/file", size=5).tobuf(tarfile.USTAR_FORMAT)) + b"hello".ljust(512, b"\0"),
        bytearray(_info("slashes///", tarfile.DIRTYPE).tobuf(tarfile.GNU_FORMAT)),
    ]
    unknown = bytearray(_info("odd", size=2).tobuf(tarfile.USTAR_FORMAT))
    unknown[156:157] = b"Z"
    blocks.append(_with_checksum(unknown) + b"zz".ljust(512, b"\0"))
    return b"".join(bytes(b) for b in blocks) + b"\0" * 1024


def made_archives() -> dict[str, bytes]:
    long_name = "deep/" * 40 + "file.txt"
    mixed = [
        (_info(long_name, size=11), b"hello world"),
        (_info("d/", tarfile.DIRTYPE), b""),
        (_info("link-" + "x" * 120, tarfile.SYMTYPE, linkname="target/" * 30), b""),
        (_info("hard", tarfile.LNKTYPE, linkname=long_name), b""),
        (_info("dev/sda", tarfile.BLKTYPE), b""),
        (_info("fifo", tarfile.FIFOTYPE), b""),
        (_info("zero", size=0), b""),
        (_info("big", size=5000), bytes(range(256)) * 19 + b"!" * 136),
        (_info("caf\u00e9/\udcff-name", size=1), b"x"),
    ]
    return {
        "gnu": _archive(tarfile.GNU_FORMAT, mixed),
        "pax": _archive(tarfile.PAX_FORMAT, mixed),
        "pax-global": _archive(tarfile.PAX_FORMAT, mixed[:3], pax={"comment": "global", "path": "renamed"}),
        "ustar": _archive(tarfile.USTAR_FORMAT, [m for m in mixed if max(len(m[0].name), len(m[0].linkname)) < 100]),
        "gnu-sparse": _gnu_sparse(),
        "v7-and-prefix": _v7_and_prefix(),
        "concatenated": _archive(tarfile.PAX_FORMAT, mixed[:2]) + _archive(tarfile.PAX_FORMAT, mixed[2:4]),
        "trailing-garbage": _archive(tarfile.GNU_FORMAT, mixed[:2]) + b"garbage",
        "empty": b"",
        "zeros": b"\0" * 10240,
        "not-tar": b"x" * 2048,
    }


def all_archives() -> dict[str, bytes]:
    return {**fixture_tars(), **made_archives()}


def test_the_corpus_is_real() -> None:
    names = fixture_tars()
    assert sum("!" in n for n in names) >= 20  # layers inside the image archives
    assert sum(len(reference(data)[0]) for data in names.values()) > 1000


@pytest.mark.parametrize("name", sorted(all_archives()))
def test_members_contents_and_end_match_tarfile(name: str) -> None:
    data = all_archives()[name]
    expected = reference(data)
    for size in PIECE_SIZES if len(data) < 1 << 20 else PIECE_SIZES[:2]:
        assert ours(data, size) == expected, f"{name} in pieces of {size}"
        assert ours_skipping(data, size)[0] == reference(data, every_other=True), f"{name}, skipping, pieces of {size}"


def _mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Truncations (around block boundaries and at random) and byte changes in headers."""
    cuts = {1, 100, 511, 512, 513, 1023, 1024, 1536, len(data) - 1, len(data) - 513}
    cuts.update(rng.randrange(len(data)) for _ in range(6))
    for cut in sorted(c for c in cuts if 0 < c < len(data)):
        yield f"cut at {cut}", data[:cut]
    headers = [m[12] for m in reference(data)[0]] or [0]
    for _ in range(40):
        field = rng.choice([0, 99, 100, 108, 116, 124, 130, 136, 142, 148, 155, 156, 157, 257, 265, 329, 337, 345, 500])
        at = rng.choice(headers) + field + rng.randrange(8)
        if at < len(data):
            changed = bytearray(data)
            changed[at] = rng.choice([*BYTE_CHANGES, rng.randrange(256)])
            yield f"byte {at} = {changed[at]}", bytes(changed)
    yield "doubled", data + data


def _small(archives: dict[str, bytes]) -> list[str]:
    return sorted(n for n, d in archives.items() if 0 < len(d) <= 256 << 10)


@pytest.mark.parametrize("name", _small(all_archives()))
def test_truncated_and_corrupted_copies_match_tarfile(name: str) -> None:
    data = all_archives()[name]
    rng = random.Random(name)
    for what, mutated in _mutations(data, rng):
        expected, skipped = reference(mutated), reference(mutated, every_other=True)
        for size in (4096, 512, 333):
            assert ours(mutated, size) == expected, f"{name}, {what}, in pieces of {size}"
            assert ours_skipping(mutated, size)[0] == skipped, f"{name}, {what}, skipping, in pieces of {size}"


def test_skipped_data_is_not_copied() -> None:
    """Skipping a member drops whole pieces: skipping 64 MiB allocates next to nothing."""
    header = _info("huge", size=64 << 20).tobuf(tarfile.PAX_FORMAT)
    piece = b"\1" * (1 << 20)
    source = iter([header, *[piece] * 64, _archive(tarfile.PAX_FORMAT, [(_info("after", size=2), b"ok")])])
    archive = TarStream(lambda: next(source, b""))
    tracemalloc.start()
    try:
        names = []
        for member in archive.members():
            names.append(member.name)
            if member.name == "after":
                handle = archive.extractfile(member)
                assert handle is not None and handle.read() == b"ok"
        assert not archive.drain()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert names == ["huge", "after"]
    assert peak < 256 << 10


def test_a_source_that_can_skip_is_not_read_for_skipped_data() -> None:
    """With a source that skips (a layer read where it lies in a file), a member's data the reader does not
    want is passed over without being produced: only the headers and the wanted content are read."""
    big = b"\1" * (8 << 20)
    data = _archive(tarfile.GNU_FORMAT, [(_info("big", size=len(big)), big), (_info("small", size=2), b"ok")])
    source = Skipping(data, 64 << 10)
    archive = TarStream(source.next_piece, source.skip)
    contents = {}
    for member in archive.members():
        if member.name == "small":
            handle = archive.extractfile(member)
            assert handle is not None
            contents[member.name] = handle.read()
    assert contents == {"small": b"ok"} and not archive.drain()
    assert source.skipped >= len(big) - (64 << 10)


def test_reads_past_a_short_member_fail_as_tarfile_does() -> None:
    data = _archive(tarfile.PAX_FORMAT, [(_info("f", size=3000), b"y" * 3000)])[:2000]
    expected = reference(data)
    assert expected[1] == "ReadError: unexpected end of data"
    assert ours(data, 512) == expected


def test_backwards_seek_is_refused_as_tarfile_does() -> None:
    """A pax size below zero moves the next header before the current position: tarfile's StreamError."""
    info = _info("neg", size=0)
    info.pax_headers = {"size": "-2048"}
    data = _archive(tarfile.PAX_FORMAT, [(info, b""), (_info("next", size=1), b"n")])
    expected = reference(data)
    assert expected[1] == "StreamError: seeking backwards is not allowed"
    assert ours(data, 512) == expected


def test_plain_headers_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparisons above cover both paths: plain ustar/GNU headers are read here, the rest by tarfile."""
    calls: list[int] = []
    original = tarfile.TarInfo.fromtarfile.__func__  # type: ignore[attr-defined]

    def counted(cls: type[tarfile.TarInfo], archive: tarfile.TarFile) -> tarfile.TarInfo:
        calls.append(1)
        return original(cls, archive)  # type: ignore[no-any-return]

    monkeypatch.setattr(tarfile.TarInfo, "fromtarfile", classmethod(counted))
    layers = [data for name, data in fixture_tars().items() if "!" in name]
    members = sum(len(ours(data, 4096)[0]) for data in layers)
    assert members > 1000 and len(calls) < members // 10
    calls.clear()
    # 9 members, 4 of them behind pax headers: tarfile reads each of those and the header after it (8 calls),
    # and the end-of-archive block (1); the 5 plain ones are read here.
    assert len(ours(made_archives()["pax"], 4096)[0]) == len(calls) == 9


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK])
def test_header_records_are_bounded(kind: bytes) -> None:
    """A 64 MiB pax record or GNU long name (tarfile would read it all into memory) is refused in one line."""
    header = bytearray(_info("././@LongLink", size=64 << 20).tobuf(tarfile.GNU_FORMAT))
    header[156:157] = kind
    size = 64 << 20

    def pieces() -> Iterator[bytes]:
        yield bytes(_with_checksum(header))
        for _ in range(size // (64 << 10)):
            yield b"9" * (64 << 10)  # made as they are read: nothing holds the 64 MiB

    source = pieces()
    archive = TarStream(lambda: next(source, b""))
    tracemalloc.start()
    try:
        with pytest.raises(tarfile.ReadError, match=f"tar header records over {MAX_HEADER_BYTES} bytes"):
            list(archive.members())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_HEADER_BYTES


def test_header_records_under_the_bound_are_read() -> None:
    info = _info("p", size=1)
    info.pax_headers = {"comment": "c" * (MAX_HEADER_BYTES - 4096)}
    data = _archive(tarfile.PAX_FORMAT, [(info, b"1")])
    assert ours(data, 4096) == reference(data)
    assert ours(data, 4096)[0][0][14]["comment"] == "c" * (MAX_HEADER_BYTES - 4096)
