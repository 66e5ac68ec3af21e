"""Random access to the files of an archive or a directory, for local image sources.

The outer archive is as hostile as the layers: member names are only ever dictionary keys here,
links inside the archive are followed a bounded number of times (one leading outside it is refused),
and a compressed outer archive is decompressed into the scratch directory under a generated name,
within the byte budget.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO

from scanner.image.filerange import FileRange
from scanner.image.streams import Budget, LayerStream, Readable
from scanner.model.errors import ImageError
from scanner.model.limits import Limits

MAX_LINK_HOPS = 8


def _clean(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


class Container(ABC):
    label: str

    @abstractmethod
    def names(self) -> set[str]: ...

    @abstractmethod
    def size(self, name: str) -> int: ...

    @abstractmethod
    def open(self, name: str) -> Readable: ...

    def exists(self, name: str) -> bool:
        return _clean(name) in self.names()

    def locate(self, name: str) -> FileRange | None:
        """Where the file's bytes lie, stored plainly in a local file; None where they do not."""
        return None

    def read(self, name: str, max_size: int) -> bytes:
        if self.size(name) > max_size:
            raise ImageError(f"{self.label}: {name} is over the size limit of {max_size} bytes")
        return self.open(name).read(max_size + 1)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class DirContainer(Container):
    """An OCI layout directory the user named. Names are validated; no link leads outside it."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()
        self.label = root
        if not self.root.is_dir():
            raise ImageError(f"{root}: not a directory")

    def _path(self, name: str) -> Path:
        clean = _clean(name)
        if not clean or ".." in clean.split("/"):
            raise ImageError(f"{self.label}: invalid file name '{name}'")
        path = (self.root / clean).resolve()
        if not path.is_relative_to(self.root):
            raise ImageError(f"{self.label}: '{name}' leads outside the layout")
        return path

    def names(self) -> set[str]:
        return {_clean(str(p.relative_to(self.root))) for p in self.root.rglob("*") if p.is_file()}

    def exists(self, name: str) -> bool:
        try:
            return self._path(name).is_file()
        except ImageError:
            return False

    def size(self, name: str) -> int:
        path = self._path(name)
        if not path.is_file():
            raise ImageError(f"{self.label}: missing file {name}")
        return path.stat().st_size

    def open(self, name: str) -> Readable:
        path = self._path(name)
        try:
            return path.open("rb")
        except OSError as exc:
            raise ImageError(f"{self.label}: cannot open {name} ({exc.strerror})") from None

    def locate(self, name: str) -> FileRange | None:
        path = self._path(name)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise ImageError(f"{self.label}: cannot open {name} ({exc.strerror})") from None
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):  # replaced since it was listed: read as a stream, or refused there
            handle.close()
            return None
        return FileRange(handle, 0, status.st_size, owned=True)


class TarContainer(Container):
    """A tar archive (docker save, oci-archive), possibly gzip/zstd/xz-compressed as a whole."""

    def __init__(self, path: str, limits: Limits, scratch_dir: str | None) -> None:
        self.label = path
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        try:
            handle: IO[bytes] = open(path, "rb")  # noqa: SIM115 - kept open for the archive's life
        except OSError as exc:
            raise ImageError(f"{path}: cannot open ({exc.strerror})") from None
        head = handle.read(8)
        handle.seek(0)
        if head[:2] == b"\x1f\x8b" or head[:4] == b"\x28\xb5\x2f\xfd" or head[:6] == b"\xfd7zXZ\x00":
            handle = self._decompress(handle, path, limits, scratch_dir)
        self._handle = handle
        try:
            self._tar = tarfile.open(fileobj=handle, mode="r:")  # noqa: SIM115 - closed in close()
            members = self._index(limits)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ImageError(f"{path}: not a readable tar archive ({exc})") from None
        self._members = members

    def _decompress(self, handle: IO[bytes], path: str, limits: Limits, scratch_dir: str | None) -> IO[bytes]:
        self._tmp = tempfile.TemporaryDirectory(prefix="acrguard-", dir=scratch_dir)
        target = Path(self._tmp.name) / "archive.tar"
        stream = LayerStream(handle, Budget(limits.max_total_bytes, limits.max_members), path)
        with target.open("wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        handle.close()
        return target.open("rb")

    def _index(self, limits: Limits) -> dict[str, tarfile.TarInfo]:
        members: dict[str, tarfile.TarInfo] = {}
        for count, member in enumerate(self._tar, 1):
            if count > limits.max_members:
                raise ImageError(f"{self.label}: more than {limits.max_members} members")
            members[_clean(member.name)] = member  # the last one of a name wins, as on extraction
        return members

    def names(self) -> set[str]:
        return {n for n, m in self._members.items() if m.isfile() or m.issym() or m.islnk()}

    def _regular(self, name: str) -> tarfile.TarInfo:
        clean = _clean(name)
        for _ in range(MAX_LINK_HOPS):
            member = self._members.get(clean)
            if member is None:
                raise ImageError(f"{self.label}: missing member {name}")
            if member.isfile():
                return member
            if member.issym():
                # Relative to the link's directory, as extraction would resolve it.
                base = clean.rsplit("/", 1)[0] if "/" in clean else ""
                target = None if member.linkname.startswith("/") else _inside(f"{base}/{member.linkname}")
            elif member.islnk():
                target = None if member.linkname.startswith("/") else _inside(member.linkname)  # archive-relative
            else:
                raise ImageError(f"{self.label}: member {name} is not a regular file")
            if target is None:
                # Extracted, it would reach outside the archive: never reinterpreted as a member.
                raise ImageError(f"{self.label}: member {clean} links outside the archive ({member.linkname})")
            clean = target
        raise ImageError(f"{self.label}: member {name}: too many links")

    def size(self, name: str) -> int:
        return self._regular(name).size

    def locate(self, name: str) -> FileRange | None:
        member = self._regular(name)
        return None if member.sparse else FileRange(self._handle, member.offset_data, member.size)

    def open(self, name: str) -> Readable:
        handle = self._tar.extractfile(self._regular(name))
        if handle is None:
            raise ImageError(f"{self.label}: member {name} cannot be read")
        return handle

    def close(self) -> None:
        self._tar.close()
        self._handle.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def _inside(path: str) -> str | None:
    """`path` with `.` and `..` resolved, or None when a `..` climbs above the archive's root."""
    out: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if not out:
                return None
            out.pop()
        elif part not in ("", "."):
            out.append(part)
    return "/".join(out)


def open_container(path: str, limits: Limits, scratch_dir: str | None) -> Container:
    if os.path.isdir(path):
        return DirContainer(path)
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file or directory")
    return TarContainer(path, limits, scratch_dir)
