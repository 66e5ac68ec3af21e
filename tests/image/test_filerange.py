"""Layers read where they lie in a local file: what goes wrong fails as it does when the same layer is streamed
(a digest or size that does not match, a tar cut short, a budget exceeded, data after the tar's end), a file
that ends early is an error rather than a short read, and contents captured in place read as their bytes."""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.image import content as content_module
from scanner.image.content import ContentStore
from scanner.image.filerange import FileRange, RangeLayer
from scanner.image.local import DockerArchiveSource, OCILayoutSource
from scanner.image.streams import Budget
from scanner.inventory.build import ScanOptions, inventory
from scanner.model.codec import inventory_to_dict
from scanner.model.errors import AcrguardError, DigestMismatchError, ImageError, LayerError, LimitExceededError
from scanner.model.limits import Limits
from tests import ocibuild

E = ocibuild.Entry
STATUS = b"Package: tool\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
ENTRIES = [
    E("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
    E("var/lib/dpkg/status", STATUS),
    E("usr/bin/big", b"\x7fELF" + b"\0" * 300_000),
]


def _layout(root: Path, tar: bytes, **layer: object) -> str:
    ocibuild.write_layout(root, [ocibuild.Image([ocibuild.Layer(tar, compression="none", **layer)])])  # type: ignore[arg-type]
    return f"oci:{root}"


def _both(reference: str, options: ScanOptions | None = None) -> tuple[object, object]:
    """The outcome (inventory JSON, or the error's type and message) read in place, then streamed."""

    def outcome() -> object:
        try:
            return json.dumps(inventory_to_dict(inventory(reference, options)[0]), sort_keys=True)
        except AcrguardError as exc:
            return type(exc), str(exc)

    in_place = outcome()
    with pytest.MonkeyPatch.context() as streamed_only:
        for source in (OCILayoutSource, DockerArchiveSource):
            streamed_only.setattr(source, "blob_range", lambda self, descriptor: None)
        return in_place, outcome()


def _blob(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / digest.split(":")[1]


def test_a_good_layer_reads_the_same_both_ways(tmp_path: Path) -> None:
    in_place, streamed = _both(_layout(tmp_path, ocibuild.layer_tar(ENTRIES)))
    assert in_place == streamed and isinstance(in_place, str) and '"tool"' in in_place


def test_changed_content_fails_its_digest_both_ways(tmp_path: Path) -> None:
    tar = ocibuild.layer_tar(ENTRIES)
    ref = _layout(tmp_path, tar)
    blob = _blob(tmp_path, ocibuild.sha(tar))
    data = bytearray(blob.read_bytes())
    data[data.index(b"Version: 1.0") + 9] = ord("2")  # the same size, other bytes
    blob.write_bytes(bytes(data))
    in_place, streamed = _both(ref)
    assert in_place == streamed
    assert in_place[0] is DigestMismatchError and "does not match" in in_place[1]  # type: ignore[index]


def test_a_layout_its_writer_verified_is_not_hashed_again_but_its_diff_ids_are_checked(tmp_path: Path) -> None:
    # The sandboxed child's input: the job's trusted half checked each blob as it wrote it. Content changed
    # after that (the same size) is still refused, by the diff_id the child computes from what it reads.
    tar = ocibuild.layer_tar(ENTRIES)
    ref = _layout(tmp_path, tar)
    blob = _blob(tmp_path, ocibuild.sha(tar))
    data = bytearray(blob.read_bytes())
    data[data.index(b"Version: 1.0") + 9] = ord("2")
    blob.write_bytes(bytes(data))
    in_place, streamed = _both(ref, ScanOptions(blobs_verified=True))
    assert in_place == streamed
    assert in_place[0] is ImageError and "does not match diff_id" in in_place[1]  # type: ignore[index]
    assert _both(ref)[0][0] is DigestMismatchError  # type: ignore[index]  # read by anyone else: its digest


@pytest.mark.parametrize("change", [1, -1])
def test_a_verified_layouts_declared_sizes_are_still_checked(tmp_path: Path, change: int) -> None:
    tar = ocibuild.layer_tar(ENTRIES)
    ref = _layout(tmp_path, tar, declared_size=len(tar) + change)
    in_place, streamed = _both(ref, ScanOptions(blobs_verified=True))
    assert in_place[0] is streamed[0] is DigestMismatchError  # type: ignore[index]
    assert "the manifest declares" in in_place[1]  # type: ignore[index]


@pytest.mark.parametrize("change", [1, -1])
def test_a_declared_size_that_is_not_the_blobs_fails_both_ways(tmp_path: Path, change: int) -> None:
    tar = ocibuild.layer_tar(ENTRIES)
    in_place, streamed = _both(_layout(tmp_path, tar, declared_size=len(tar) + change))
    assert in_place[0] is streamed[0] is DigestMismatchError  # type: ignore[index]
    if change > 0:  # the stream finds out at its end, and says it the same way
        assert in_place == streamed


@pytest.mark.parametrize("cut", [700, 2000, 10_000, 200_000])
def test_a_tar_cut_short_fails_as_streamed(tmp_path: Path, cut: int) -> None:
    tar = ocibuild.layer_tar(ENTRIES)[:cut]
    in_place, streamed = _both(_layout(tmp_path, tar))
    assert in_place == streamed
    assert in_place[0] is LayerError and "not a valid tar stream" in in_place[1]  # type: ignore[index]


def test_data_after_the_tar_is_the_same_warning(tmp_path: Path) -> None:
    in_place, streamed = _both(_layout(tmp_path, ocibuild.layer_tar(ENTRIES) + b"trailing"))
    assert in_place == streamed and "data after the end of the tar archive was ignored" in str(in_place)


def test_the_byte_budget_holds_in_place(tmp_path: Path) -> None:
    tar = ocibuild.layer_tar(ENTRIES)
    options = ScanOptions(limits=Limits(max_total_bytes=len(tar) - 1))
    before = _open_descriptors()
    in_place, streamed = _both(_layout(tmp_path, tar), options)
    assert in_place[0] is streamed[0] is LimitExceededError  # type: ignore[index]
    assert _open_descriptors() == before  # the refused layer's file is closed


def _file(tmp_path: Path, data: bytes) -> FileRange:
    handle = (tmp_path / "file").open("w+b")
    handle.write(data)
    handle.flush()
    return FileRange(handle, 0, len(data), owned=True)


def test_a_file_that_ends_before_its_range_is_an_error(tmp_path: Path) -> None:
    whole = _file(tmp_path, b"x" * 10_000)
    longer = FileRange(whole.file, 0, 20_000)
    layer = RangeLayer(longer, "", -1, Budget(1 << 30, 1000), "layer sha256:test")
    with pytest.raises(LayerError, match=r"layer sha256:test: cannot read the layer .*ends before the end"):
        layer.verify()
    store = ContentStore(Limits())
    with pytest.raises(LayerError, match="ended 10000 bytes early"):
        store.capture_range(FileRange(whole.file, 5_000, 15_000), "member 'a'")  # small: read at once
    spilled = store.capture_range(FileRange(whole.file, 5_000, 15_000), "member 'b'", spill=True)
    with pytest.raises(OSError, match="ended 10000 bytes early"):
        spilled.read()
    with pytest.raises(OSError, match="ended 10000 bytes early"):
        spilled.view()  # the map is refused (the file is too short): read, which fails the same way
    whole.file.close()


@pytest.mark.parametrize("offset", [0, 512, mmap.ALLOCATIONGRANULARITY, mmap.ALLOCATIONGRANULARITY + 1536])
def test_contents_captured_in_place_read_as_their_bytes(tmp_path: Path, offset: int) -> None:
    data = bytes(range(256)) * 400
    source = _file(tmp_path, b"\0" * offset + data + b"tail")
    store = ContentStore(Limits())
    store.keep_open(source.file)
    content = store.capture_range(source.sub(offset, len(data)), "member", spill=True)
    view = content.view()
    # A map where the content starts on a page boundary, a view into one where it does not: no copy either way.
    assert isinstance(view, mmap.mmap if offset % mmap.ALLOCATIONGRANULARITY == 0 else memoryview)
    assert bytes(view) == content.read() == data and content.size == len(data)
    del view
    store.close()
    with pytest.raises(ValueError):  # the store closed the file: no read of whatever reuses its number
        content.read()


def test_the_digest_thread_reports_progress_and_the_whole_size(tmp_path: Path) -> None:
    data = b"y" * (9 << 20)
    seen: list[int] = []
    budget = Budget(1 << 30, 1000)
    report: Callable[[int], None] = seen.append
    layer = RangeLayer(_file(tmp_path, data), ocibuild.sha(data), len(data), budget, "layer", report)
    layer.verify()
    layer.close()
    assert sum(seen) == len(data) and len(seen) == 3 and budget.bytes == len(data)
    assert layer.hand_over_file() is not None and layer.hand_over_file() is None  # handed over once


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_files_kept_open_for_contents_in_place_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each layer file a content is captured in place from stays open until the analysis ends; past
    MAX_FILES_IN_PLACE files (an image may have hundreds of plain layers, a sandboxed child few descriptors)
    contents are copied instead. A layer nothing was captured in place from is closed at once. The inventory
    is the same either way, and nothing stays open after it."""
    monkeypatch.setattr(content_module, "MAX_FILES_IN_PLACE", 2)
    seen: list[int] = []
    original = content_module.ContentStore.close

    def close(self: ContentStore) -> None:
        seen.append(_open_descriptors())
        original(self)

    monkeypatch.setattr(content_module.ContentStore, "close", close)
    layers = [
        ocibuild.Layer(
            ocibuild.layer_tar([E(f"usr/local/bin/tool{n}", b"\x7fELF" + bytes([n]) * 200_000)]), compression="none"
        )
        for n in range(5)
    ]
    layers.append(ocibuild.Layer(ocibuild.layer_tar(ENTRIES[:2]), compression="none"))  # small files only
    ocibuild.write_layout(tmp_path, [ocibuild.Image(layers)])
    before = _open_descriptors()
    in_place, streamed = _both(f"oci:{tmp_path}")
    assert in_place == streamed and isinstance(in_place, str) and '"tool"' in in_place
    # At the end of the in-place analysis: two layer files kept (the bound), the four others closed.
    assert seen[0] == before + 2 + 1  # and the scratch file the copied programs went to
    assert _open_descriptors() == before


def test_a_copied_content_reads_as_an_in_place_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content_module, "MAX_FILES_IN_PLACE", 1)
    data = bytes(range(256)) * 300
    first, second = _file(tmp_path, data), FileRange((tmp_path / "other").open("w+b"), 0, len(data), owned=True)
    second.file.write(data)
    second.file.flush()
    store = ContentStore(Limits())
    store.keep_open(first.file)
    store.keep_open(second.file)
    kept = store.capture_range(first.sub(512, 4096), "a", spill=True)
    copied = store.capture_range(second.sub(512, 4096), "b", spill=True)
    assert store.refers_to(first.file) and not store.refers_to(second.file)
    assert isinstance(kept.view(), memoryview) and isinstance(copied.view(), mmap.mmap)  # the scratch file's map
    assert kept.read() == copied.read() == data[512 : 512 + 4096]
    store.close()
