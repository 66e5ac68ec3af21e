"""The rpm package detector: installed packages from the rpm database (SQLite, NDB or Berkeley DB).

Pure parsing: the database file arrives as bytes in the FileSet, and every backend and the header parser
work on those bytes alone.

Bounded: a database over `max_package_db_bytes` is not read; more packages than the image may hold, more
owned files than `max_owned_files`, or a backend's own bound (records, stored bytes, query work) stops the
reading, keeps what was read and makes the inventory Incomplete. A damaged header, or a database readable
in no format, is a warning: bad content is data, only what the scanner's own bounds left unread is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from scanner.inventory.detectors.base import (
    PARSE_ERRORS,
    DetectContext,
    DetectorError,
    Extraction,
    FileSet,
    FixedPathDetector,
)
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


class _DatabaseRead:
    """The packages and warnings of reading one database, with its caps."""

    def __init__(self, path: str, ctx: DetectContext, out: Extraction) -> None:
        self.path = path
        self.ctx = ctx
        self.out = out
        self.opened = True
        # Owned file paths kept from one database. Real images hold tens of thousands; the bound caps the
        # memory a hostile database of tiny file names could make the Python objects claim.
        self.files_left = ctx.limits.max_owned_files
        self.full = False  # the image's package budget ran out
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
        if facts.name == PUBKEY_NAME:
            return
        if facts.file_problem and facts.over_file_limit:
            limit = self.ctx.limits.max_owned_files
            self.out.bound(self.path, f"more than {limit} owned files in the database (limit max_owned_files)")
        elif facts.file_problem:
            self.warn(f"package {facts.name}: file list ignored: {facts.file_problem}")
        self.files_left -= len(facts.files)
        self.full = not self.out.add_package(to_raw_package(facts, self.ctx, self.path), self.ctx, self.path)


class RpmDetector(FixedPathDetector):
    name = "rpm"
    version = 1
    group = "os-packages"
    paths = frozenset(_PATHS)

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        paths = set(files.paths())
        present = [(path, reader) for path, reader in _DATABASES if path in paths]
        for path, reader in present:
            # Only one database is reported; the next is tried only if this one cannot be read at all.
            try:
                data = ctx.read_database(files, path)
            except DetectorError as err:  # not read, and an older database beside it would be stale
                out.bound(err.where, err.message)
                return out
            if _read(reader, data, _DatabaseRead(path, ctx, out)):
                return out
        return out


def _read(reader: Reader, data: bytes, db: _DatabaseRead) -> bool:
    """Add the packages of one database; False if the database could not be opened."""
    try:
        for record in reader(data):
            if isinstance(record, Problem):
                if record.bound:
                    db.out.bound(db.path, record.message)
                else:
                    db.warn(record.message)
                db.opened = db.opened and not record.fatal
            else:
                db.add(record)
                if db.full:
                    break
    except PARSE_ERRORS as err:  # the backend met a structure it could not follow: the rest is not read
        db.out.bound(db.path, f"the rpm database could not be read to its end: {type(err).__name__}: {err}")
    db.finish()
    return db.opened
