"""The API key `acrguard serve` makes for itself when none is configured, so that it never starts open: made
once (`secrets`), kept in a 0600 file under serve's data directory, and read back on the next start.

The file is created whole or not at all (written aside, then linked into place, which fails when another
serve got there first), and read only when it is a regular file of this user that nobody else can read.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from scanner.model.errors import AcrguardError

KEY_FILE = "api-key"


class KeyFileError(AcrguardError):
    """The key file cannot be made or used; the message is one line naming it."""


@dataclass(frozen=True)
class GeneratedKey:
    key: str
    path: Path
    new: bool  # made by this start (print it) rather than read back


def load_or_create(directory: Path) -> GeneratedKey:
    """The key kept in `directory`, made there first if there is none."""
    path = directory / KEY_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return GeneratedKey(_read(path), path, False)
    except FileNotFoundError:
        pass
    except OSError as err:
        raise KeyFileError(f"{path}: {err.strerror}") from None
    key = secrets.token_urlsafe(32)
    aside = directory / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            os.fchmod(out.fileno(), 0o600)  # whatever the umask
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(aside, path)
    except FileExistsError:
        return GeneratedKey(_read(path), path, False)  # another serve made it meanwhile
    except OSError as err:
        raise KeyFileError(f"{path}: cannot create it: {err.strerror}") from None
    finally:
        aside.unlink(missing_ok=True)
    return GeneratedKey(key, path, True)


def _read(path: Path) -> str:
    """The key in `path`; FileNotFoundError when there is none."""
    # Non-blocking: a FIFO put there must not hang the start; it is refused as not a regular file.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise KeyFileError(f"{path}: not a regular file")
    with os.fdopen(fd, "rb") as source:
        if info.st_uid != os.getuid():
            raise KeyFileError(f"{path}: owned by another user (uid {info.st_uid})")
        if info.st_mode & 0o077:
            raise KeyFileError(f"{path}: readable by others (mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it")
        text = source.read(4096).decode("ascii", errors="replace").strip()
    if not text or not text.isprintable() or " " in text:
        raise KeyFileError(f"{path}: holds no key; delete it and serve makes a new one")
    return text
