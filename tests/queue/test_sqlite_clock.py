"""SQLite only: leases and retry delays end when the queue's clock says so, to the second, on a clock the
test sets (the contract tests in test_queue.py, on both backends, observe leases ending but cannot tell
"not before")."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from scanner.queue.sqlite_queue import SqliteQueue
from tests.queue.support import make_request

START = 1_700_000_000.0


class Clock:
    """Seconds since the epoch, as the test sets them."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def test_a_lease_ends_when_its_seconds_are_up(tmp_path: Path) -> None:
    clock = Clock()
    with SqliteQueue(tmp_path / "q.db", clock=clock) as queue:
        sent = queue.send(make_request(1))
        (first,) = queue.receive(visibility_timeout=30)
        clock.now = START + 29.5
        assert queue.receive(visibility_timeout=30) == []
        clock.now = START + 30
        (second,) = queue.receive(visibility_timeout=30)
        assert (second.id, second.dequeue_count) == (sent.message_id, 2)
        assert first.pop_receipt != second.pop_receipt


def test_a_failed_message_comes_back_after_its_delay_and_not_before(tmp_path: Path) -> None:
    clock = Clock()
    with SqliteQueue(tmp_path / "q.db", clock=clock) as queue:
        queue.send(make_request(2))
        (message,) = queue.receive(visibility_timeout=30)
        clock.now = START + 5
        assert queue.fail(message, "rate limited", retry_after=10) is False
        clock.now = START + 14.5
        assert queue.receive(visibility_timeout=30) == []
        clock.now = START + 15
        (again,) = queue.receive(visibility_timeout=30)
        assert again.dequeue_count == 2


def test_an_extended_lease_counts_from_the_extension(tmp_path: Path) -> None:
    clock = Clock()
    with SqliteQueue(tmp_path / "q.db", clock=clock) as queue:
        queue.send(make_request(3))
        (message,) = queue.receive(visibility_timeout=30)
        clock.now = START + 20
        extended = queue.extend(message, 60)
        clock.now = START + 79.5  # past the first lease, within the extension
        assert queue.receive(visibility_timeout=30) == []
        clock.now = START + 80
        (again,) = queue.receive(visibility_timeout=30)
        assert again.id == extended.id and again.dequeue_count == 2


def test_a_completed_message_never_comes_back_and_dead_letters_are_stamped(tmp_path: Path) -> None:
    clock = Clock()
    with SqliteQueue(tmp_path / "q.db", max_attempts=1, clock=clock) as queue:
        queue.send(make_request(4))
        queue.send(make_request(5))
        done, dying = queue.receive(max_messages=2, visibility_timeout=30)
        queue.complete(done)
        clock.now = START + 7
        assert queue.fail(dying, "scanner bug") is True
        clock.now = START + 10 * 24 * 3600  # long past every lease
        assert queue.receive(max_messages=10, visibility_timeout=30) == []
        (letter,) = queue.dead_letters()
        assert letter.dead_at == datetime.fromtimestamp(START + 7, UTC)
