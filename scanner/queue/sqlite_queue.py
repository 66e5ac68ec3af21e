"""The embedded queue: one SQLite file shared by several processes.

A received message stays in its table with `visible_at` moved forward (its lease) and a fresh
`pop_receipt`; completing deletes it, so a consumer that dies without completing simply lets the lease
run out. Every state change is one transaction (BEGIN IMMEDIATE takes the write lock before reading, so
two consumers never lease the same row), and WAL with synchronous=FULL keeps committed changes across
process crashes. Times are wall-clock seconds because several processes compare them.

Each message row carries the registry its body names, so the per-registry bound is one indexed count in
the transaction that inserts; the dead letters beyond the bound are deleted, oldest first, in the
transaction that adds one, and counted in `queue_counters`.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from scanner.queue.errors import LeaseLostError, QueueError
from scanner.queue.interface import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DEAD_LETTERS,
    DEFAULT_MAX_QUEUED_PER_REGISTRY,
    DeadLetter,
    Message,
    ScanQueue,
    ScanRequest,
    Sent,
    abandoned_error,
    check_seconds,
    queue_full_error,
    registry_of,
)

log = logging.getLogger(__name__)

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    dedupe_key TEXT,
    enqueued_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    dequeue_count INTEGER NOT NULL DEFAULT 0,
    pop_receipt TEXT,
    registry TEXT,
    UNIQUE (queue, dedupe_key)
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, visible_at, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    dead_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_queue ON dead_letters (queue, seq);
CREATE TABLE IF NOT EXISTS queue_counters (
    queue TEXT PRIMARY KEY,
    dropped_dead_letters INTEGER NOT NULL DEFAULT 0
);
"""
# Version 1 had no registry column: added, filled from the bodies, then indexed (after the column exists).
_REGISTRY_INDEX = "CREATE INDEX IF NOT EXISTS messages_registry ON messages (queue, registry)"


class SqliteQueue(ScanQueue):
    """A named queue in a SQLite file; several queues (and processes) may share the file."""

    def __init__(
        self,
        path: str | Path,
        queue_name: str = "scan-requests",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        clock: Callable[[], float] = time.time,
        max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS,
        max_queued_per_registry: int = DEFAULT_MAX_QUEUED_PER_REGISTRY,
    ) -> None:
        super().__init__(max_attempts, max_dead_letters, max_queued_per_registry)
        self.path = Path(path)
        self.name = queue_name
        # Wall-clock seconds shared by every process on the file; a test passes its own to step through leases.
        self._clock = clock
        # One connection per queue object, serialised by a lock so threads may share the object.
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        except (OSError, sqlite3.Error) as err:
            raise QueueError(f"queue {self.path}: cannot open: {err}") from err
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise QueueError(f"queue {self.path}: schema {version} is newer than this acrguard ({_SCHEMA_VERSION})")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
            if "registry" not in columns:
                db.execute("ALTER TABLE messages ADD COLUMN registry TEXT")
                rows = db.execute("SELECT id, body FROM messages").fetchall()
                db.executemany("UPDATE messages SET registry = ? WHERE id = ?", [(registry_of(b), i) for i, b in rows])
            db.execute(_REGISTRY_INDEX)
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; sqlite errors become `QueueError`, and any error rolls back."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                raise QueueError(f"queue {self.path}: {err}") from err
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as err:
                # A failed COMMIT may have ended the transaction already; the original error matters more.
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(err, sqlite3.Error):
                    raise QueueError(f"queue {self.path}: {err}") from err
                raise

    def _enqueue(self, body: str, dedupe_key: str | None, registry: str | None) -> Sent:
        message_id = uuid.uuid4().hex
        with self._tx() as db:
            if dedupe_key is not None:
                row = db.execute(
                    "SELECT id FROM messages WHERE queue = ? AND dedupe_key = ?", (self.name, dedupe_key)
                ).fetchone()
                if row is not None:
                    return Sent(row[0], deduplicated=True)
            if registry is not None:
                # Counting and inserting in one write transaction: concurrent senders cannot both take the last place.
                (queued,) = db.execute(
                    "SELECT COUNT(*) FROM messages WHERE queue = ? AND registry = ?", (self.name, registry)
                ).fetchone()
                if queued >= self.max_queued_per_registry:
                    error = queue_full_error(registry, queued)
                    self._keep_dead(db, message_id, body, error, 0)
                    return Sent(message_id, refused=error)
            now = self._clock()
            db.execute(
                "INSERT INTO messages (queue, id, body, dedupe_key, enqueued_at, visible_at, registry)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.name, message_id, body, dedupe_key, now, now, registry or registry_of(body)),
            )
        return Sent(message_id)

    def dead_letter(self, body: str, error: str) -> str:
        letter_id = uuid.uuid4().hex
        with self._tx() as db:
            self._keep_dead(db, letter_id, body, error, 0)
        return letter_id

    def depth(self) -> int:
        with self._tx() as db:
            row = db.execute("SELECT COUNT(*) FROM messages WHERE queue = ?", (self.name,)).fetchone()
        return int(row[0])

    def dropped_dead_letters(self) -> int:
        with self._tx() as db:
            row = db.execute("SELECT dropped_dead_letters FROM queue_counters WHERE queue = ?", (self.name,)).fetchone()
        return int(row[0]) if row else 0

    def receive(self, max_messages: int = 1, visibility_timeout: int = 300) -> list[Message]:
        if max_messages < 1:
            raise QueueError(f"queue: max_messages must be at least 1, not {max_messages}")
        check_seconds("visibility_timeout", visibility_timeout, 1)
        received: list[Message] = []
        with self._tx() as db:
            now = self._clock()
            # Dead-lettered rows free their slot, so keep reading until the batch is full or nothing is visible.
            while len(received) < max_messages:
                rows = db.execute(
                    "SELECT id, body, dequeue_count FROM messages WHERE queue = ? AND visible_at <= ?"
                    " ORDER BY seq LIMIT ?",
                    (self.name, now, max_messages - len(received)),
                ).fetchall()
                if not rows:
                    break
                for message_id, body, count in rows:
                    if count >= self.max_attempts:
                        self._bury(db, message_id, body, abandoned_error(count), count)
                        continue
                    try:
                        request = ScanRequest.from_json(body)
                    except QueueError as err:
                        self._bury(db, message_id, body, str(err), count + 1)
                        continue
                    receipt = uuid.uuid4().hex
                    db.execute(
                        "UPDATE messages SET dequeue_count = ?, pop_receipt = ?, visible_at = ? WHERE id = ?",
                        (count + 1, receipt, now + visibility_timeout, message_id),
                    )
                    received.append(Message(message_id, receipt, count + 1, request, body))
        return received

    def complete(self, message: Message) -> None:
        with self._tx() as db:
            deleted = db.execute(
                "DELETE FROM messages WHERE queue = ? AND id = ? AND pop_receipt = ?",
                (self.name, message.id, message.pop_receipt),
            ).rowcount
        if not deleted:
            raise LeaseLostError(f"queue {self.name}: message {message.id}: lease lost before completion")

    def fail(self, message: Message, error: str, retry_after: int = 0) -> bool:
        check_seconds("retry_after", retry_after, 0)
        with self._tx() as db:
            row = self._leased(db, message)
            count = row[1]
            if count >= self.max_attempts:
                self._bury(db, message.id, row[0], error, count)
                return True
            # A new receipt voids the caller's lease, as Azure's update_message does.
            db.execute(
                "UPDATE messages SET visible_at = ?, pop_receipt = ? WHERE id = ?",
                (self._clock() + retry_after, uuid.uuid4().hex, message.id),
            )
        return False

    def extend(self, message: Message, seconds: int) -> Message:
        check_seconds("extend", seconds, 0)
        receipt = uuid.uuid4().hex
        with self._tx() as db:
            self._leased(db, message)
            db.execute(
                "UPDATE messages SET visible_at = ?, pop_receipt = ? WHERE id = ?",
                (self._clock() + seconds, receipt, message.id),
            )
        return replace(message, pop_receipt=receipt)

    def dead_letters(self) -> list[DeadLetter]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, body, error, attempts, dead_at FROM dead_letters WHERE queue = ? ORDER BY seq",
                (self.name,),
            ).fetchall()
        return [DeadLetter(i, body, err, n, datetime.fromtimestamp(at, UTC)) for i, body, err, n, at in rows]

    def requeue_dead_letter(self, dead_letter_id: str) -> Sent:
        message_id = uuid.uuid4().hex
        with self._tx() as db:
            row = db.execute(
                "SELECT body FROM dead_letters WHERE queue = ? AND id = ?", (self.name, dead_letter_id)
            ).fetchone()
            if row is None:
                raise QueueError(f"queue {self.name}: no dead letter {dead_letter_id!r}")
            # Without its dedupe key: the operator asked for this run explicitly.
            now = self._clock()
            db.execute(
                "INSERT INTO messages (queue, id, body, enqueued_at, visible_at, registry) VALUES (?, ?, ?, ?, ?, ?)",
                (self.name, message_id, row[0], now, now, registry_of(row[0])),
            )
            db.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))
        return Sent(message_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _leased(self, db: sqlite3.Connection, message: Message) -> tuple[str, int]:
        row = db.execute(
            "SELECT body, dequeue_count FROM messages WHERE queue = ? AND id = ? AND pop_receipt = ?",
            (self.name, message.id, message.pop_receipt),
        ).fetchone()
        if row is None:
            raise LeaseLostError(f"queue {self.name}: message {message.id}: lease lost")
        return row[0], row[1]

    def _bury(self, db: sqlite3.Connection, message_id: str, body: str, error: str, attempts: int) -> None:
        """Moves a message to the dead letters in the caller's transaction: both rows change or neither."""
        self._keep_dead(db, message_id, body, error, attempts)
        db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def _keep_dead(self, db: sqlite3.Connection, letter_id: str, body: str, error: str, attempts: int) -> None:
        """Adds a dead letter in the caller's transaction, dropping (and counting) the oldest beyond the bound."""
        log.warning("queue %s: message %s dead-lettered after %d attempts: %s", self.name, letter_id, attempts, error)
        db.execute(
            "INSERT INTO dead_letters (queue, id, body, error, attempts, dead_at) VALUES (?, ?, ?, ?, ?, ?)",
            (self.name, letter_id, body, error, attempts, self._clock()),
        )
        (kept,) = db.execute("SELECT COUNT(*) FROM dead_letters WHERE queue = ?", (self.name,)).fetchone()
        excess = kept - self.max_dead_letters
        if excess <= 0:
            return
        db.execute(
            "DELETE FROM dead_letters WHERE seq IN (SELECT seq FROM dead_letters WHERE queue = ? ORDER BY seq LIMIT ?)",
            (self.name, excess),
        )
        db.execute(
            "INSERT INTO queue_counters (queue, dropped_dead_letters) VALUES (?, ?) ON CONFLICT (queue)"
            " DO UPDATE SET dropped_dead_letters = dropped_dead_letters + excluded.dropped_dead_letters",
            (self.name, excess),
        )
        (dropped,) = db.execute(
            "SELECT dropped_dead_letters FROM queue_counters WHERE queue = ?", (self.name,)
        ).fetchone()
        log.warning(
            "queue %s: over %d dead letters: dropped the %d oldest (%d dropped in all)",
            self.name,
            self.max_dead_letters,
            excess,
            dropped,
        )
