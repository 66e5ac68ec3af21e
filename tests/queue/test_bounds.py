"""The queue's bounds, on SQLite and Azurite: scans queued per registry (one more is dead-lettered with the
reason, never dropped) and dead letters kept (the oldest dropped and counted)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.queue import ScanQueue, ScanRequest, open_queue
from scanner.queue.sqlite_queue import SqliteQueue
from tests.queue.support import make_request


@contextlib.contextmanager
def bounded(location: str, queue_name: str, **bounds: int) -> Iterator[ScanQueue]:
    with open_queue(location, queue_name, **bounds) as queue:
        yield queue


def other_registry(n: int) -> ScanRequest:
    return ScanRequest.create("other.azurecr.io", "team/app", f"sha256:{n:064x}")


def test_a_full_registry_queue_dead_letters_the_next_scan_with_the_reason(
    location: str, queue_name: str, backend: str
) -> None:
    with bounded(location, queue_name, max_queued_per_registry=3) as queue:
        sent = [queue.send(make_request(n), f"key-{n}") for n in range(3)]
        assert all(not s.refused and not s.deduplicated for s in sent)
        # A duplicate of a queued request is no new work: deduplicated, not refused.
        assert queue.send(make_request(0), "key-0").deduplicated
        fourth = make_request(3)
        refused = queue.send(fourth, "key-3")
        assert refused.refused.startswith("refused: 3 scans of myacr.azurecr.io are already queued")
        assert "ACRGUARD_MAX_QUEUED_PER_REGISTRY" in refused.refused
        (letter,) = queue.dead_letters()
        assert (letter.id, letter.error, json.loads(letter.raw)) == (
            refused.message_id,
            refused.refused,
            json.loads(fourth.to_json()),
        )
        # Another registry: counted apart on SQLite; Storage Queues count the whole queue (stricter).
        assert bool(queue.send(other_registry(9)).refused) == (backend == "azurite")
        # Requeueing is the operator's explicit request: no bound applies.
        assert not queue.requeue_dead_letter(letter.id).refused
        # Once the registry's scans drain, it queues again.
        for message in queue.receive(10, 30):
            queue.complete(message)
        assert not queue.send(make_request(4), "key-4").refused


def test_dead_letters_beyond_the_bound_drop_the_oldest_and_count_them(location: str, queue_name: str) -> None:
    with bounded(location, queue_name, max_dead_letters=3) as queue:
        ids = [queue.dead_letter(f"event {n}", f"error {n}") for n in range(5)]
        letters = queue.dead_letters()
        assert [(d.raw, d.error) for d in letters] == [(f"event {n}", f"error {n}") for n in (2, 3, 4)]
        assert [d.id for d in letters] == ids[2:]
        assert queue.dropped_dead_letters() == 2
        # Messages that die in the queue are bounded the same way.
        queue.send_raw("not a scan request")
        assert queue.receive(1, 30) == []
        assert [d.raw for d in queue.dead_letters()] == ["event 3", "event 4", "not a scan request"]
        assert queue.dropped_dead_letters() == 3
    with bounded(location, queue_name) as reopened:
        assert reopened.dropped_dead_letters() == 3  # kept with the queue, not the process


def test_bounds_below_one_are_refused(location: str, queue_name: str) -> None:
    from scanner.queue import QueueError

    for bound in ("max_dead_letters", "max_queued_per_registry"):
        with pytest.raises(QueueError, match=f"{bound} must be at least 1"):
            open_queue(location, queue_name, **{bound: 0})


def test_a_version_1_queue_file_counts_its_messages_per_registry(tmp_path: Path) -> None:
    """A queue file written before messages carried their registry: opened, its messages are counted."""
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(
            """
            CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, id TEXT NOT NULL UNIQUE,
                body TEXT NOT NULL, dedupe_key TEXT, enqueued_at REAL NOT NULL, visible_at REAL NOT NULL,
                dequeue_count INTEGER NOT NULL DEFAULT 0, pop_receipt TEXT, UNIQUE (queue, dedupe_key));
            CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,
                id TEXT NOT NULL UNIQUE, body TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL,
                dead_at REAL NOT NULL);
            PRAGMA user_version=1;
            """
        )
        rows = [("scan-requests", f"m{n}", make_request(n).to_json(), 0.0, 0.0) for n in range(2)]
        rows.append(("scan-requests", "junk", "not json", 0.0, 0.0))
        db.executemany("INSERT INTO messages (queue, id, body, enqueued_at, visible_at) VALUES (?, ?, ?, ?, ?)", rows)
        db.commit()
    with SqliteQueue(path, max_queued_per_registry=2) as queue:
        assert queue.send(make_request(7)).refused
        assert not queue.send(other_registry(7)).refused
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
