"""rpm's SQLite backend (`rpmdb.sqlite`, rpm >= 4.16): the `Packages` table holds (hnum, blob) rows.

The database arrives as bytes and is opened in memory with the stdlib `sqlite3` (`deserialize`), so
nothing touches the disk. The file is untrusted, so the connection refuses schema-defined code, caps the
size of any value, and aborts a query that runs far longer than reading a file of this size can need.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from scanner.inventory.detectors.rpm.records import BUDGET_EXHAUSTED, Blob, ByteBudget, Problem, Record

_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
# Offsets of the file format write/read version bytes in the database header: 2 means WAL mode.
_WRITE_VERSION = 18
_READ_VERSION = 19
_LEGACY = 1
_WAL = 2

# The progress handler runs every this many virtual machine instructions...
_PROGRESS_STEP = 1000
# ...and a query may run for about one instruction per byte of the file (a sound scan needs far less).
_BYTES_PER_PROGRESS_CALL = 1000


def _open(data: bytes) -> sqlite3.Connection:
    image: bytes | bytearray = data
    if data[_WRITE_VERSION] == _WAL or data[_READ_VERSION] == _WAL:
        # An in-memory database cannot use WAL (it needs a shared-memory file), so a database left in
        # WAL mode fails to open. Switching the header to the rollback journal reads the main file as
        # it is, i.e. as of the last checkpoint; a -wal file the image may hold is not applied.
        image = bytearray(data)
        image[_WRITE_VERSION] = _LEGACY
        image[_READ_VERSION] = _LEGACY
    conn = sqlite3.connect(":memory:")
    # No string or blob larger than the file itself can come out of a query (e.g. zeroblob() in a
    # generated column of a hostile schema).
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(len(data), _HEADER_SIZE))
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.deserialize(image)
    conn.execute("PRAGMA query_only = ON")
    calls_left = [1 + len(data) // _BYTES_PER_PROGRESS_CALL]

    def progress() -> int:
        calls_left[0] -= 1
        return 1 if calls_left[0] < 0 else 0  # non-zero interrupts the running statement

    conn.set_progress_handler(progress, _PROGRESS_STEP)
    return conn


def _packages_is_table(conn: sqlite3.Connection) -> str:
    """Why the `Packages` object cannot be read as rpm's table, or "" if it can. A view or a virtual
    table could make a SELECT do arbitrary (even unbounded) work."""
    rows = conn.execute(
        "SELECT type, sql FROM sqlite_master WHERE lower(name) = 'packages' AND type IN ('table', 'view')"
    ).fetchall()
    if not rows:
        return "no Packages table"
    kind, sql = rows[0]
    if kind != "table" or not isinstance(sql, str) or sql.lstrip().upper().startswith("CREATE VIRTUAL"):
        return "Packages is not a plain table"
    return ""


def read_sqlite(data: bytes) -> Iterator[Record]:
    """Header blobs from the Packages table, in hnum (install) order."""
    if len(data) < _HEADER_SIZE or not data.startswith(_MAGIC):
        yield Problem("not an SQLite database", fatal=True)
        return
    budget = ByteBudget(len(data))
    yielded = False
    try:
        conn = _open(data)
    except sqlite3.Error as err:
        yield Problem(f"cannot open the SQLite database: {err}", fatal=True)
        return
    try:
        reason = _packages_is_table(conn)
        if reason:
            yield Problem(reason, fatal=True)
            return
        for hnum, blob in conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum"):
            if not isinstance(blob, bytes) or not isinstance(hnum, int):
                yield Problem(f"Packages row {hnum!r}: blob is not binary data")
                continue
            if not budget.take(len(blob)):
                yield Problem(BUDGET_EXHAUSTED, bound=True)
                return
            yielded = True
            yield Blob(hnum, blob)
    except sqlite3.Error as err:
        # Corruption found part-way keeps the rows read so far (partial failure is data); a query the
        # progress handler interrupted ran into the work bound, and what it did not read is missing.
        interrupted = isinstance(err, sqlite3.OperationalError) and "interrupted" in str(err)
        yield Problem(
            f"cannot read the Packages table: {err}", fatal=not yielded and not interrupted, bound=interrupted
        )
    finally:
        conn.close()
