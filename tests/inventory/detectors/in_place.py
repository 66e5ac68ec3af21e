"""Files as the detectors of programs see them when their layer was read where it lies in a local file: each
content a view into a map of that file, at an offset that is not on a page boundary (a memoryview, not bytes)."""

from __future__ import annotations

from pathlib import Path

from scanner.image.content import ContentStore
from scanner.image.filerange import FileRange
from scanner.inventory.analysis import TreeFileSet
from scanner.inventory.detectors.base import DetectContext, Detector, Extraction, MemoryFileSet
from scanner.model.limits import Limits


def in_place(files: dict[str, bytes], directory: Path) -> tuple[TreeFileSet, ContentStore]:
    """The files written one after another into one file, each at a 512-byte boundary (as in a tar) that is
    not a page boundary, captured in place; close the store when done."""
    store = ContentStore(Limits())
    handle = (directory / "layer").open("w+b")
    store.keep_open(handle)
    contents = {}
    offset = 512
    for path, data in files.items():
        handle.seek(offset)
        handle.write(data)
        handle.flush()
        contents[path] = store.capture_range(FileRange(handle, offset, len(data)), path, spill=True)
        offset += 512 + -(-len(data) // 512) * 512  # a header's worth of gap, then the next block boundary
        if offset % 4096 == 0:
            offset += 512
    return TreeFileSet(contents), store


def both_ways(detector: Detector, files: dict[str, bytes], directory: Path) -> tuple[Extraction, Extraction]:
    """What `detector` extracts from the files captured in place (each a memoryview), then from their bytes."""
    viewed, store = in_place(files, directory)
    try:
        assert all(isinstance(viewed.view(path), memoryview) for path in files)
        mapped = detector.extract(viewed, DetectContext())
    finally:
        store.close()
    return mapped, detector.extract(MemoryFileSet(files), DetectContext())
