"""Safe reading of one layer's tar stream into the squashed tree.

Nothing from the image is ever written to the host filesystem under a name the image chose, and no
link is ever followed outside the image root (see tree.py). Member-level problems (escaping paths,
device files, loops) are contained: the member is skipped and a warning names the layer and member.
Stream-level problems (corrupt compression, truncation, limits) raise LayerError.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable

from scanner.image.content import ContentStore
from scanner.image.filerange import RangeLayer
from scanner.image.streams import Budget, LayerStream, Readable
from scanner.image.tarstream import TarStream
from scanner.image.tree import Dir, File, Link, PathError, Tree, Unread, join
from scanner.model.errors import LayerError, LimitExceededError
from scanner.model.limits import Limits
from scanner.model.types import Warning_

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def display(name: str) -> str:
    """A member name as one printable line (non-UTF-8 bytes and control characters escaped)."""
    raw = name.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def normalise(name: str) -> list[str] | None:
    """Member name → path components inside the root; None if `..` climbs above the root."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return parts


def _climbs_out(base: list[str], target: str) -> bool:
    depth = 0 if target.startswith("/") else len(base)
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


class _Prefixed:
    """A file's first bytes, already read, then the rest of it."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            data, self._head = self._head + self._rest.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data + self._rest.read(size - len(data)) if len(data) < size else data


class LayerReader:
    """Replays layers into a Tree, capturing the files `wanted(path)` accepts."""

    def __init__(
        self,
        tree: Tree,
        wanted: Callable[[str], bool],
        store: ContentStore,
        budget: Budget,
        limits: Limits,
        *,
        magic: Callable[[str], bytes] | None = None,
    ) -> None:
        self.tree = tree
        self.wanted = wanted
        # The prefix a wanted file must start with to be kept ("" or None: any content).
        self.magic = magic
        self.store = store
        self.budget = budget
        self.limits = limits
        self.warnings: list[Warning_] = []
        # Files not kept because they lack their detectors' magic: a hard link to one is not worth a warning.
        self.not_matching_magic: set[str] = set()
        self._in_file: RangeLayer | None = None  # the layer being read, when it lies in a local file

    def read(self, stream: LayerStream | RangeLayer, index: int, label: str) -> None:
        """Apply one layer. `label` names the layer in messages (its digest)."""
        self._in_file = stream if isinstance(stream, RangeLayer) else None
        archive = TarStream(stream.next_piece, self._in_file.skip if self._in_file is not None else None)
        self._members(archive, index, label)
        # Files captured in place are read from the layer's file when a detector asks: it stays open with the store.
        layer = self._in_file
        if layer is not None and self.store.refers_to(layer.file) and (owned := layer.hand_over_file()) is not None:
            self.store.keep_open(owned)

    def _members(self, archive: TarStream, index: int, label: str) -> None:
        current = ""
        try:
            for member in archive.members():
                current = member.name
                self.budget.add_member(f"layer {label}")
                self._member(archive, member, index, label)
        except (tarfile.TarError, EOFError) as exc:
            where = f" after member '{display(current)}'" if current else ""
            raise LayerError(f"layer {label}: not a valid tar stream{where} ({exc})") from None
        except LimitExceededError:
            raise
        except LayerError as exc:
            where = f" at member '{display(current)}'" if current else ""
            raise LayerError(f"{exc}{where}") from None
        if archive.drain():
            self._warn(label, "", "data after the end of the tar archive was ignored")

    def _warn(self, label: str, member: str, message: str) -> None:
        where = f"layer {label}" + (f" member '{display(member)}'" if member else "")
        self.warnings.append(Warning_(where, message))

    def _member(self, archive: TarStream, member: tarfile.TarInfo, index: int, label: str) -> None:
        name = member.name
        if len(name) > self.limits.max_path_length:
            self._warn(label, name[:80] + "…", f"path longer than {self.limits.max_path_length}: skipped")
            return
        parts = normalise(name)
        if parts is None:
            self._warn(label, name, "path escapes the image root: skipped")
            return
        if not parts:
            return  # the root directory itself
        base = parts[-1]
        try:
            if base.startswith(WHITEOUT):
                self._whiteout(parts, index, label, name)
            elif member.isdir():
                self.tree.put(parts, Dir(index), index)
            elif member.issym():
                self._symlink(parts, member, index, label)
            elif member.islnk():
                self._hardlink(parts, member, index, label)
            elif member.isreg():
                self._regular(archive, parts, member, index, label)
            elif member.ischr() or member.isblk() or member.isfifo():
                self.tree.put(parts, None, index)
                self._warn(label, name, "device or fifo member: not created, content not read")
            else:
                self._warn(label, name, f"unsupported tar member type {member.type!r}: skipped")
        except PathError as exc:
            self._warn(label, name, f"{exc}: skipped")

    def _whiteout(self, parts: list[str], index: int, label: str, name: str) -> None:
        base = parts[-1]
        if base == OPAQUE:
            self.tree.make_opaque(parts[:-1], index)
            return
        target = base[len(WHITEOUT) :]
        if target.startswith(WHITEOUT) or target in ("", ".", ".."):
            return  # aufs metadata (.wh..wh.plnk and similar), not a whiteout of a file
        self.tree.remove([*parts[:-1], target], index)

    def _symlink(self, parts: list[str], member: tarfile.TarInfo, index: int, label: str) -> None:
        target = member.linkname
        if not target or len(target) > self.limits.max_path_length or "\0" in target:
            self._warn(label, member.name, "symlink with an empty or oversized target: skipped")
            self.tree.put(parts, None, index)
            return
        if _climbs_out(parts[:-1], target):
            self._warn(label, member.name, "symlink target climbs above the image root; resolved inside it")
        self.tree.put(parts, Link(index, target), index)

    def _hardlink(self, parts: list[str], member: tarfile.TarInfo, index: int, label: str) -> None:
        target_parts = normalise(member.linkname)
        if not target_parts:
            self._warn(label, member.name, "hard link target escapes the image root: skipped")
            return
        real_parent, parent = self.tree.parent_for_write(parts, index)
        path = join([*real_parent, parts[-1]])
        node = self.tree.lookup(join(target_parts))
        if isinstance(node, File):
            self.tree.place(real_parent, parent, parts[-1], File(index, node.content), index)
            return
        self.tree.place(real_parent, parent, parts[-1], None, index)
        if self.wanted(path) and join(target_parts) not in self.not_matching_magic:
            self._warn(label, member.name, "hard link to a file whose content was not kept: not read")

    def _regular(self, archive: TarStream, parts: list[str], member: tarfile.TarInfo, index: int, label: str) -> None:
        real_parent, parent = self.tree.parent_for_write(parts, index)
        path = join([*real_parent, parts[-1]])
        if not self.wanted(path):
            self.tree.place(real_parent, parent, parts[-1], None, index)
            return
        if member.size > self.limits.max_file_size:
            # Kept as unread (size and first bytes), not as absent: the detector that wanted it must be able
            # to say that it could not read it, or a padded database would hide the one below it.
            handle = archive.extractfile(member)
            head = handle.read(Unread.HEAD) if handle is not None else b""
            self.tree.place(real_parent, parent, parts[-1], File(index, Unread(member.size, head)), index)
            self._warn(label, member.name, f"{member.size} bytes is over max_file_size: not read")
            return
        magic = self.magic(path) if self.magic is not None else b""
        what = f"layer {label} member '{display(member.name)}'"
        # In a local file, the content is read where it lies and the walk then skips its data unread.
        located = self._in_file.at(member.offset_data, member.size) if self._in_file and not member.sparse else None
        extracted: Readable | None = None
        if located is not None:
            head = located.pread(len(magic), 0)
        elif (extracted := archive.extractfile(member)) is not None:
            head = extracted.read(len(magic)) if magic else b""
        else:
            return
        if head != magic:
            self.tree.place(real_parent, parent, parts[-1], None, index)  # not what its detectors read
            self.not_matching_magic.add(path)
            return
        if located is not None:
            content = self.store.capture_range(located, what, spill=bool(magic))
        else:
            assert extracted is not None
            # A streamed archive cannot seek back: the magic already read goes first.
            content = self.store.capture(_Prefixed(head, extracted), member.size, what, spill=bool(magic))
        self.tree.place(real_parent, parent, parts[-1], File(index, content), index)
