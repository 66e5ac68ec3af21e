"""`dir:PATH`: an unpacked root filesystem, read as a single layer.

Links are recorded, never followed on the host: the walk uses lstat and O_NOFOLLOW, so a link in the
tree cannot lead the reader to host files outside PATH.
"""

from __future__ import annotations

import os
import stat

from scanner.image.tree import Content, Dir, File, Link, PathError, Unread
from scanner.inventory.analysis import Analysis
from scanner.model.errors import ImageError, LimitExceededError


def read_rootfs(root: str, analysis: Analysis) -> None:
    if not os.path.isdir(root):
        raise ImageError(f"dir:{root}: not a directory")
    tree, limits = analysis.tree, analysis.limits
    stack: list[tuple[str, list[str]]] = [(root, [])]
    count = 0
    while stack:
        host_dir, parts = stack.pop()
        try:
            entries = list(os.scandir(host_dir))
        except OSError as exc:
            raise ImageError(f"dir:{root}: cannot list {host_dir} ({exc.strerror})") from None
        for entry in entries:
            count += 1
            if count > limits.max_members:
                raise LimitExceededError(f"dir:{root}: more than {limits.max_members} files")
            sub = [*parts, entry.name]
            try:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    tree.put(sub, Dir(0), 0)
                    stack.append((entry.path, sub))
                elif stat.S_ISLNK(info.st_mode):
                    tree.put(sub, Link(0, os.readlink(entry.path)), 0)
                elif stat.S_ISREG(info.st_mode):
                    _regular(analysis, entry.path, sub, info.st_size)
            except PathError:
                continue
            except OSError as exc:
                raise ImageError(f"dir:{root}: cannot read {entry.path} ({exc.strerror})") from None


def _regular(analysis: Analysis, host_path: str, parts: list[str], size: int) -> None:
    tree = analysis.tree
    real_parent, parent = tree.parent_for_write(parts, 0)
    path = "/" + "/".join([*real_parent, parts[-1]])
    if not analysis.wanted(path):
        return
    fd = os.open(host_path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        magic = analysis.magic(path)
        if magic and handle.read(len(magic)) != magic:
            return  # not what the detectors wanting it read (an extensionless file that is no binary)
        handle.seek(0)
        if size > analysis.limits.max_file_size:
            # Kept as unread, not left out: the detector that wanted it says it could not read it.
            content: Content = Unread(size, handle.read(Unread.HEAD))
        else:
            content = analysis.store.capture(handle, size, f"dir file {host_path}", spill=bool(magic))
    tree.place(real_parent, parent, parts[-1], File(0, content), 0)
