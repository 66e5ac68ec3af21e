"""The scan job's scratch directories (the fetched image's OCI layout): made under a prefix of their own,
removed after each attempt, and those of attempts that never finished (a SIGKILLed job, a crashed worker)
removed when serve or a worker starts.

An attempt holds an exclusive flock(2) on its directory for as long as it runs; the kernel releases it when
the process dies, however it dies. The start-up sweep removes only directories that carry the prefix, are
real directories (never a symbolic link, opened with O_NOFOLLOW), belong to this uid, and whose lock it can
take: a scan running in another process (a second worker sharing TMPDIR) keeps its directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "acrguard-job-"
_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def scratch_directory(parent: str | None = None) -> Iterator[Path]:
    """A fresh directory under `parent` (default: the system's temporary directory), locked while in use and
    removed afterwards, whatever happened inside."""
    while True:
        path = tempfile.mkdtemp(prefix=PREFIX, dir=parent)
        fd = os.open(path, _OPEN_DIRECTORY)
        # Blocking: a sweep that opened the directory between mkdtemp and here holds the lock while it
        # removes it; once it is released, the check below sees the directory is gone and makes another.
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _still_there(path, fd):
            break
        os.close(fd)
    try:
        yield Path(path)
    finally:
        try:
            remove_tree(Path(path))
        except OSError as err:  # the attempt's own outcome matters more; the next start-up sweep retries
            log.warning("scratch: cannot remove %s: %s", path, err)
        finally:
            os.close(fd)


def sweep_abandoned(parent: str | None = None) -> int:
    """Removes the scratch directories of attempts that are no longer running; how many it removed."""
    where = Path(parent or tempfile.gettempdir())
    removed = 0
    try:
        entries = list(os.scandir(where))
    except OSError as err:
        log.warning("scratch: cannot list %s: %s", where, err)
        return 0
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            fd = os.open(entry.path, _OPEN_DIRECTORY)  # a symbolic link (or anything but a directory) fails
        except OSError:
            continue
        try:
            if os.fstat(fd).st_uid != os.getuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a scan in progress holds it
            if not _still_there(entry.path, fd):
                continue
            remove_tree(Path(entry.path))
            removed += 1
        except OSError as err:
            log.warning("scratch: cannot remove %s: %s", entry.path, err)
        finally:
            os.close(fd)
    if removed:
        log.info("scratch: removed %d directories of scans that did not finish, under %s", removed, where)
    return removed


def remove_tree(root: Path) -> None:
    """Removes `root` and everything under it without following a symbolic link. The layout is made read-only
    for the sandbox, so each directory gets its owner's write bit back first, through its own descriptor
    (os.fwalk never follows a link, and chmod through a path would)."""
    if not root.is_dir() or root.is_symlink():
        return
    for _, _, _, fd in os.fwalk(root, follow_symlinks=False):
        with contextlib.suppress(OSError):
            os.fchmod(fd, stat.S_IRWXU)
    shutil.rmtree(root)


def _still_there(path: str, fd: int) -> bool:
    """Whether `path` still names the directory open as `fd` (a sweep may have removed it meanwhile)."""
    try:
        return os.path.samestat(os.stat(path, follow_symlinks=False), os.fstat(fd))
    except FileNotFoundError:
        return False
