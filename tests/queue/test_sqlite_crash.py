"""SQLite only: a process killed inside a write transaction (mid-receive) loses and corrupts nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from scanner.queue.sqlite_queue import SqliteQueue
from tests.queue.support import make_request

# Takes the write lock and half-leases every message, then waits to be killed before committing.
CHILD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE messages SET dequeue_count = dequeue_count + 1, pop_receipt = 'x', visible_at = 1e12")
print("locked", flush=True)
time.sleep(120)
"""


def test_killed_inside_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    with SqliteQueue(path) as queue:
        sent = queue.send(make_request(1))
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
        (message,) = queue.receive(visibility_timeout=30)  # the lock is gone and the update never happened
        assert (message.id, message.dequeue_count) == (sent.message_id, 1)
        queue.complete(message)
