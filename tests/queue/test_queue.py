"""The queue contract, run against SQLite and a real Azurite (see conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.queue import LeaseLostError, Message, QueueError, ScanQueue
from tests.queue.support import REPO, OpenQueue, make_request, wait_out_a_lease

LEASE = 1  # seconds; the shortest lease Azure accepts, to keep the suite fast
# A lease or delay no test outlasts: what must still hold a while after it was set is set this long.
FAR_OFF = 3600
CONSUMER = Path(__file__).with_name("consumer.py")


def receive_one(queue: ScanQueue, lease: int = LEASE) -> Message:
    messages = queue.receive(max_messages=1, visibility_timeout=lease)
    assert len(messages) == 1, messages
    return messages[0]


def run_consumer(mode: str, location: str, name: str, lease: int = LEASE) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, str(CONSUMER), mode, location, name, str(lease)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)


def test_send_receive_complete(queue: ScanQueue, location: str, queue_name: str) -> None:
    request = make_request(1)
    sent = queue.send(request)
    message = receive_one(queue)
    assert (message.id, message.request, message.dequeue_count) == (sent.message_id, request, 1)
    assert message.raw == request.to_json()
    queue.complete(message)
    wait_out_a_lease(location, queue_name, LEASE)
    assert queue.receive(visibility_timeout=LEASE) == []  # completed: gone for good, even once its lease ran out
    assert queue.dead_letters() == []


def test_a_leased_message_is_invisible_to_everyone_else(queue: ScanQueue, open_q: OpenQueue) -> None:
    sent = queue.send(make_request(13))
    message = receive_one(queue, lease=FAR_OFF)
    assert message.id == sent.message_id
    assert queue.receive(visibility_timeout=LEASE) == []
    assert open_q().receive(visibility_timeout=LEASE) == []
    queue.complete(message)


def test_receive_in_order_and_in_batches(queue: ScanQueue) -> None:
    requests = [make_request(n) for n in range(5)]
    for request in requests:
        queue.send(request)
    first = queue.receive(max_messages=3, visibility_timeout=30)
    rest = queue.receive(max_messages=10, visibility_timeout=30)
    assert [m.request for m in first + rest] == requests
    for message in first + rest:
        queue.complete(message)


def test_expired_lease_redelivers_with_higher_count(
    queue: ScanQueue, open_q: OpenQueue, location: str, queue_name: str
) -> None:
    queue.send(make_request(2))
    first = receive_one(queue)
    wait_out_a_lease(location, queue_name, LEASE)
    other = open_q()  # another consumer picks it up once the lease has run out
    second = receive_one(other)
    assert (second.id, second.dequeue_count) == (first.id, 2)
    with pytest.raises(LeaseLostError):
        queue.complete(first)  # the first consumer's lease is void
    other.complete(second)
    assert queue.receive(visibility_timeout=LEASE) == []


@pytest.mark.parametrize("death", ["os._exit", "SIGKILL"])
def test_killed_consumer_lets_the_message_come_back(
    queue: ScanQueue, location: str, queue_name: str, death: str
) -> None:
    sent = queue.send(make_request(3))
    child = run_consumer("die" if death == "os._exit" else "hang", location, queue_name)
    assert child.stdout is not None
    leased = json.loads(child.stdout.readline())  # the child holds the lease now
    assert leased == {"id": sent.message_id, "dequeue_count": 1}
    if death == "SIGKILL":
        child.send_signal(signal.SIGKILL)
    assert child.wait(30) == (3 if death == "os._exit" else -signal.SIGKILL)
    child.stdout.close()
    wait_out_a_lease(location, queue_name, LEASE)
    message = receive_one(queue)
    assert (message.id, message.dequeue_count) == (sent.message_id, 2)
    queue.complete(message)


def test_failing_max_attempts_times_dead_letters_with_the_error(open_q: OpenQueue) -> None:
    queue = open_q(max_attempts=3)
    request = make_request(4)
    sent = queue.send(request)
    outcomes = []
    for attempt in range(1, 4):
        message = receive_one(queue)  # fail releases at once: no waiting for the lease
        assert message.dequeue_count == attempt
        outcomes.append(queue.fail(message, f"registry said 500 on attempt {attempt}"))
        with pytest.raises(LeaseLostError):
            queue.complete(message)  # failing gave the lease up
    assert outcomes == [False, False, True]
    assert queue.receive(visibility_timeout=LEASE) == []
    (letter,) = queue.dead_letters()
    assert (letter.raw, letter.error, letter.attempts) == (request.to_json(), "registry said 500 on attempt 3", 3)
    assert letter.dead_at.tzinfo is not None
    assert sent.message_id  # the dead letter's id is its own handle for requeueing


def test_fail_can_delay_the_retry(queue: ScanQueue, location: str, queue_name: str) -> None:
    queue.send(make_request(5))
    queue.send(make_request(15))
    soon, later = receive_one(queue), receive_one(queue)
    assert queue.fail(later, "rate limited for long", retry_after=FAR_OFF) is False
    assert queue.fail(soon, "rate limited", retry_after=LEASE) is False
    wait_out_a_lease(location, queue_name, LEASE)
    # The short delay has run out, the long one not. (That a delay holds the message back at all, to the
    # second, is told by the SQLite queue on a clock of the test's: test_sqlite_clock.py.)
    (again,) = queue.receive(max_messages=10, visibility_timeout=LEASE)
    assert (again.id, again.dequeue_count) == (soon.id, 2)


def test_consumers_that_keep_dying_dead_letter_the_message(open_q: OpenQueue, location: str, queue_name: str) -> None:
    queue = open_q(max_attempts=2)
    queue.send(make_request(6))
    for _ in range(2):
        receive_one(queue)  # and never complete or fail: as a crash on a hostile image
        wait_out_a_lease(location, queue_name, LEASE)
    assert queue.receive(visibility_timeout=LEASE) == []
    (letter,) = queue.dead_letters()
    assert letter.attempts == 2
    assert letter.error.startswith("abandoned: delivered 2 times")


def test_malformed_bodies_dead_letter_at_once(queue: ScanQueue) -> None:
    queue.send_raw("this is not json")
    queue.send_raw(json.dumps({"registry": "myacr.azurecr.io"}))
    good = queue.send(make_request(7))
    received = queue.receive(max_messages=10, visibility_timeout=30)
    assert [m.id for m in received] == [good.message_id]
    errors = {letter.raw: (letter.error, letter.attempts) for letter in queue.dead_letters()}
    assert errors["this is not json"][0].startswith("scan request: body is not JSON")
    assert errors['{"registry": "myacr.azurecr.io"}'] == ("scan request: field 'repository' is missing", 1)


def test_extend_keeps_the_lease(queue: ScanQueue, open_q: OpenQueue, location: str, queue_name: str) -> None:
    queue.send(make_request(8))
    message = receive_one(queue)
    extended = queue.extend(message, FAR_OFF)
    assert extended.pop_receipt != message.pop_receipt
    assert (extended.id, extended.request) == (message.id, message.request)
    wait_out_a_lease(location, queue_name, LEASE)
    assert open_q().receive(visibility_timeout=LEASE) == []  # still leased past the first timeout
    with pytest.raises(LeaseLostError):
        queue.complete(message)  # the lease token moved on
    queue.complete(extended)


def test_requeue_a_dead_letter(open_q: OpenQueue) -> None:
    queue = open_q(max_attempts=1)
    request = make_request(9)
    queue.send(request)
    assert queue.fail(receive_one(queue), "scanner bug") is True
    (letter,) = queue.dead_letters()
    requeued = queue.requeue_dead_letter(letter.id)
    assert queue.dead_letters() == []
    message = receive_one(queue)
    assert (message.id, message.request, message.dequeue_count) == (requeued.message_id, request, 1)
    queue.complete(message)
    with pytest.raises(QueueError, match="no dead letter"):
        queue.requeue_dead_letter(letter.id)


def test_dedupe_key_within_one_producer(queue: ScanQueue) -> None:
    request = make_request(10)
    key = request.dedupe_key("acrguard@0.1.0")
    first = queue.send(request, dedupe_key=key)
    again = queue.send(make_request(10, reason="rescan"), dedupe_key=key)
    assert (again.message_id, again.deduplicated, first.deduplicated) == (first.message_id, True, False)
    other = queue.send(make_request(11), dedupe_key=make_request(11).dedupe_key("acrguard@0.1.0"))
    assert not other.deduplicated
    received = queue.receive(max_messages=10, visibility_timeout=30)
    assert [m.request.digest for m in received] == [request.digest, make_request(11).digest]


def test_dedupe_key_across_producers(queue: ScanQueue, open_q: OpenQueue, backend: str) -> None:
    """SQLite deduplicates exactly while the message is pending. Azure Storage Queues cannot look a
    message up by key, so each producer only remembers its own sends: a second producer queues again."""
    key = make_request(12).dedupe_key("acrguard@0.1.0")
    first = queue.send(make_request(12), dedupe_key=key)
    second = open_q().send(make_request(12), dedupe_key=key)
    if backend == "sqlite":
        assert (second.message_id, second.deduplicated) == (first.message_id, True)
        queue.complete(receive_one(queue))
        assert not open_q().send(make_request(12), dedupe_key=key).deduplicated  # done: new work is welcome
    else:
        assert not second.deduplicated
        assert len(queue.receive(max_messages=10, visibility_timeout=30)) == 2


def test_two_consumers_process_each_message_exactly_once(queue: ScanQueue, location: str, queue_name: str) -> None:
    requests = [make_request(100 + n) for n in range(40)]
    for request in requests:
        queue.send(request)
    consumers = [run_consumer("drain", location, queue_name, lease=30) for _ in range(2)]
    seen: list[str] = []
    for child in consumers:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        seen += [json.loads(line)["request_id"] for line in out.splitlines()]
    assert sorted(seen) == sorted(r.request_id for r in requests)  # none lost, none twice
    assert queue.receive(visibility_timeout=LEASE) == []


def test_dead_letters_lists_more_than_one_page(queue: ScanQueue) -> None:
    # Azure returns at most 32 messages per call; the listing must not stop there.
    for n in range(40):
        queue.send_raw(f"garbage {n}")
    assert queue.receive(max_messages=40, visibility_timeout=30) == []
    letters = queue.dead_letters()
    assert sorted(letter.raw for letter in letters) == sorted(f"garbage {n}" for n in range(40))
    assert queue.dead_letters() == letters  # listing is read-only: released again at once


def test_depth_counts_queued_and_leased_requests_not_dead_letters(queue: ScanQueue) -> None:
    assert queue.depth() == 0
    for n in range(3):
        queue.send(make_request(n))
    assert queue.depth() == 3
    leased = receive_one(queue, FAR_OFF)
    assert queue.depth() == 3  # being scanned still counts
    queue.complete(leased)
    queue.dead_letter("not a request", "unreadable")
    assert queue.depth() == 2
