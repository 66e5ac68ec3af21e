"""The embedded default: one SQLite file in WAL mode, shared safely by several processes.

Writers serialise on BEGIN IMMEDIATE (waiting up to `busy_timeout`), readers never block in WAL mode.
Threads of one process (serve and Functions run handlers in a thread pool) take a connection from a small
pool for each transaction: reads run side by side, as WAL allows; writes also queue on a process lock, so
writers of one process wait on it instead of polling SQLite's busy handler.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from scanner.store.errors import StoreError
from scanner.store.sql import Dialect, Params, Row, Rows, Tx
from scanner.store.sql_store import SqlStore

BUSY_TIMEOUT_MS = 30_000
# Connections kept open between transactions: about the number of threads reading at once (serve's pool).
MAX_IDLE_CONNECTIONS = 8


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def run(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def write(self, statement: Rows, rows: Sequence[Params]) -> None:
        if rows:
            self._conn.executemany(statement.one, [tuple(p) for p in rows])


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
        self._writer = threading.RLock()
        self._pool_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot open findings store {self.path}: {err}") from err
        self._idle.append(self._connect(first=True))

    def _connect(self, first: bool = False) -> sqlite3.Connection:
        try:
            # isolation_level=None: the driver opens no implicit transactions; every one is explicit below.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if first:
                _enable_wal(conn)  # a property of the file: later connections find it in WAL mode
            conn.execute("PRAGMA synchronous = NORMAL")  # durable across process crashes in WAL mode
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open findings store {self.path}: {err}") from err
        return conn

    def _acquire(self) -> sqlite3.Connection:
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"findings store {self.path} is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _release(self, conn: sqlite3.Connection) -> None:
        with self._pool_lock:
            if not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def _begin(self, statement: str, write: bool) -> Iterator[_SqliteTx]:
        with self._writer if write else nullcontext():
            conn = self._acquire()
            try:
                yield from self._transaction(conn, statement)
            finally:
                self._release(conn)

    def _transaction(self, conn: sqlite3.Connection, statement: str) -> Iterator[_SqliteTx]:
        try:
            conn.execute(statement)
        except sqlite3.Error as err:
            raise StoreError(f"findings store {self.path}: {err}") from err
        try:
            yield _SqliteTx(conn)
        except BaseException as err:
            conn.rollback()
            if isinstance(err, sqlite3.Error):
                raise StoreError(f"findings store {self.path}: {err}") from err
            raise
        try:
            conn.commit()
        except sqlite3.Error as err:
            conn.rollback()
            raise StoreError(f"findings store {self.path}: {err}") from err

    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]:
        # IMMEDIATE takes the write lock up front, so a read-then-write never fails with SQLITE_BUSY midway.
        # A read is a deferred BEGIN: its snapshot starts at the first SELECT and blocks no writer (WAL).
        return self._begin("BEGIN IMMEDIATE" if write else "BEGIN", write)

    def _migration_tx(self) -> AbstractContextManager[Tx]:
        return self._begin("BEGIN IMMEDIATE", write=True)

    def close(self) -> None:
        # Connections in use close when their transaction ends (`_release`).
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
