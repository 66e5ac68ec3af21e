"""Where captured file contents live: small ones in memory, large ones in the scratch directory.

Scratch files get generated names (`capture-N`), never a name taken from the image, so hostile member
paths cannot place anything outside the scratch area.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from scanner.image.streams import Readable
from scanner.image.tree import Content
from scanner.model.errors import LimitExceededError
from scanner.model.limits import Limits


class ContentStore:
    def __init__(self, limits: Limits, scratch_dir: str | None = None) -> None:
        self._limits = limits
        self._parent = scratch_dir
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._count = 0
        self.captured_bytes = 0

    def _scratch(self) -> Path:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="acrguard-", dir=self._parent)
        return Path(self._dir.name)

    def capture(self, handle: Readable, size: int, what: str, *, spill: bool = False) -> Content:
        """Read `size` bytes of one file; the caller has checked `size` against max_file_size. `spill` keeps it
        in the scratch directory whatever its size: files wanted by kind (every program of the image) would
        otherwise make memory grow with the image."""
        self.captured_bytes += size
        if self.captured_bytes > self._limits.max_captured_bytes:
            raise LimitExceededError(
                f"{what}: captured files exceed {self._limits.max_captured_bytes} bytes (limit max_captured_bytes)"
            )
        if size <= self._limits.spill_threshold and not spill:
            data = handle.read(size)
            return Content(len(data), data=data)
        self._count += 1
        path = self._scratch() / f"capture-{self._count}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        written = 0
        with os.fdopen(fd, "wb") as out:
            while written < size:
                chunk = handle.read(min(1 << 20, size - written))
                if not chunk:
                    break
                out.write(chunk)
                written += len(chunk)
        return Content(written, reader=path.read_bytes)

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
