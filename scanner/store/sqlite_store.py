"""The embedded default: one SQLite file in WAL mode, shared safely by several processes.

Writers serialise on BEGIN IMMEDIATE (waiting up to `busy_timeout`), readers never block in WAL mode.
The connection is shared by threads of one process under a lock (Functions may run handlers in threads).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from scanner.store.errors import StoreError
from scanner.store.sql import Dialect, Params, Row, Tx
from scanner.store.sql_store import SqlStore

BUSY_TIMEOUT_MS = 30_000


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def run(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switching a new file to WAL can fail with SQLITE_BUSY without waiting on the busy handler when
    another process opens the same file at that moment: retry within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteStore(SqlStore):
    dialect = Dialect(name="sqlite", lock_suffix="")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._mutex = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: the driver opens no implicit transactions; every one is explicit below.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")  # durable across process crashes in WAL mode
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open findings store {self.path}: {err}") from err
        self._conn = conn

    @contextmanager
    def _begin(self, statement: str) -> Iterator[_SqliteTx]:
        with self._mutex:
            try:
                self._conn.execute(statement)
            except sqlite3.Error as err:
                raise StoreError(f"findings store {self.path}: {err}") from err
            try:
                yield _SqliteTx(self._conn)
            except BaseException as err:
                self._conn.rollback()
                if isinstance(err, sqlite3.Error):
                    raise StoreError(f"findings store {self.path}: {err}") from err
                raise
            try:
                self._conn.commit()
            except sqlite3.Error as err:
                self._conn.rollback()
                raise StoreError(f"findings store {self.path}: {err}") from err

    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]:
        # IMMEDIATE takes the write lock up front, so a read-then-write never fails with SQLITE_BUSY midway.
        return self._begin("BEGIN IMMEDIATE" if write else "BEGIN")

    def _migration_tx(self) -> AbstractContextManager[Tx]:
        return self._begin("BEGIN IMMEDIATE")

    def close(self) -> None:
        with self._mutex:
            self._conn.close()
