"""The rpm package detector: installed packages from the rpm database (SQLite, NDB or Berkeley DB).

Pure parsing: the database file arrives as bytes in the FileSet, and every backend and the header parser
work on those bytes alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from scanner.inventory.detectors.base import DetectContext, Extraction, FileSet, FixedPathDetector
from scanner.inventory.detectors.rpm.bdb import read_bdb
from scanner.inventory.detectors.rpm.header import Header, HeaderError
from scanner.inventory.detectors.rpm.ndb import read_ndb
from scanner.inventory.detectors.rpm.package import PUBKEY_NAME, read_facts, to_raw_package
from scanner.inventory.detectors.rpm.records import Blob, Problem, Record
from scanner.inventory.detectors.rpm.sqlite_db import read_sqlite
from scanner.model.types import Warning_

__all__ = ["RpmDetector"]

Reader = Callable[[bytes], Iterator[Record]]

# Candidates in order of preference: the newest format first (an image converted from BDB to SQLite or
# NDB may still hold the old file, no longer maintained); within a format, /usr/lib/sysimage/rpm (the
# current default of Fedora and SUSE, where /var/lib/rpm is only a symlink to it) before /var/lib/rpm.
_DATABASES: tuple[tuple[str, Reader], ...] = (
    ("/usr/lib/sysimage/rpm/rpmdb.sqlite", read_sqlite),
    ("/var/lib/rpm/rpmdb.sqlite", read_sqlite),
    ("/usr/lib/sysimage/rpm/Packages.db", read_ndb),
    ("/var/lib/rpm/Packages.db", read_ndb),
    ("/usr/lib/sysimage/rpm/Packages", read_bdb),
    ("/var/lib/rpm/Packages", read_bdb),
)
_PATHS = frozenset(path for path, _ in _DATABASES)

# A badly damaged database could otherwise produce one warning per record.
_MAX_WARNINGS_PER_DATABASE = 50
# Owned file paths kept from one database. Real images hold tens of thousands; the cap bounds the memory
# (a few hundred MB) a hostile database of tiny file names could make the Python objects claim.
MAX_OWNED_FILES_PER_DATABASE = 1_000_000
# Packages kept from one database (real ones hold a few thousand); each costs far more memory as a
# RawPackage than a minimal hostile header costs in the file.
MAX_PACKAGES_PER_DATABASE = 100_000


class _DatabaseRead:
    """The packages and warnings of reading one database, with its caps."""

    def __init__(self, path: str, ctx: DetectContext, out: Extraction) -> None:
        self.path = path
        self.ctx = ctx
        self.out = out
        self.opened = True
        self.files_left = MAX_OWNED_FILES_PER_DATABASE
        self.packages_left = MAX_PACKAGES_PER_DATABASE
        self._problems = 0

    def warn(self, message: str) -> None:
        self._problems += 1
        if self._problems <= _MAX_WARNINGS_PER_DATABASE:
            self.out.warnings.append(Warning_(self.path, message))

    def finish(self) -> None:
        hidden = self._problems - _MAX_WARNINGS_PER_DATABASE
        if hidden > 0:
            self.out.warnings.append(Warning_(self.path, f"{hidden} more problems not listed"))

    def add(self, record: Blob) -> None:
        try:
            facts = read_facts(Header(record.data), self.files_left)
        except HeaderError as err:
            self.warn(f"rpm header {record.key} skipped: {err}")
            return
        except Exception as err:  # a parser bug: lose this header only, not the database
            self.warn(f"rpm header {record.key} skipped: unexpected {type(err).__name__}: {err}")
            return
        if facts.name == PUBKEY_NAME:
            return
        if facts.file_problem:
            self.warn(f"package {facts.name}: file list ignored: {facts.file_problem}")
        self.files_left -= len(facts.files)
        self.packages_left -= 1
        self.out.packages.append(to_raw_package(facts, self.ctx, self.path))


class RpmDetector(FixedPathDetector):
    name = "rpm"
    version = 1
    group = "os-packages"
    paths = frozenset(_PATHS)

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        present = set(files.paths())
        for path, reader in _DATABASES:
            # Only one database is reported; the next is tried only if this one cannot be read at all.
            if path in present and _read(reader, files.read(path), _DatabaseRead(path, ctx, out)):
                break
        return out


def _read(reader: Reader, data: bytes, db: _DatabaseRead) -> bool:
    """Add the packages of one database; False if the database could not be opened."""
    try:
        for record in reader(data):
            if isinstance(record, Problem):
                db.warn(record.message)
                db.opened = db.opened and not record.fatal
            elif db.packages_left > 0:
                db.add(record)
            else:
                db.warn(f"more than {MAX_PACKAGES_PER_DATABASE} packages; the rest are not read")
                break
    except Exception as err:  # a parser bug must not lose the other detectors' results
        db.warn(f"unexpected error reading the rpm database: {type(err).__name__}: {err}")
    db.finish()
    return db.opened
