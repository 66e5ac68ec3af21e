"""Retries with backoff, lease renewal and abandoned attempts in `drain_queue`, on the real SQLite queue and
store; and the retry settings read from the environment."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_support import CountingFetch
from test_pipeline import VERSION, push_event

from scanner.model.settings import Settings
from scanner.model.types import Inventory
from scanner.queue import ScanQueue, ScanRequest, open_queue
from scanner.service.pipeline import attempt_scan_id, drain_queue, handle_push, process_scan
from scanner.service.retry import RetrySettings, SettingsError
from scanner.store import FindingsStore
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.queue.azurite_server import running_azurite
from tests.queue.support import wait_out_a_lease


def test_delay_grows_exponentially_by_delivery_count_up_to_the_cap() -> None:
    settings = RetrySettings(retry_base_seconds=2, retry_max_seconds=10)
    assert [settings.retry_delay(n) for n in range(1, 7)] == [2, 4, 8, 10, 10, 10]
    assert RetrySettings(retry_base_seconds=0, retry_max_seconds=0).retry_delay(5) == 0
    assert RetrySettings(retry_base_seconds=1, retry_max_seconds=900).retry_delay(10_000) == 900


def test_settings_from_the_environment() -> None:
    env = {
        "ACRGUARD_VISIBILITY_TIMEOUT": "30",
        "ACRGUARD_RETRY_BASE_SECONDS": "1",
        "ACRGUARD_RETRY_MAX_SECONDS": "8",
        "ACRGUARD_MAX_ATTEMPTS": "4",
    }
    assert RetrySettings.from_settings(Settings.from_environ(env)) == RetrySettings(30, 1, 8, 4)
    assert RetrySettings.from_settings(Settings.from_environ({})) == RetrySettings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ACRGUARD_RETRY_BASE_SECONDS": "soon"}, "ACRGUARD_RETRY_BASE_SECONDS: 'soon' is not a whole number"),
        ({"ACRGUARD_VISIBILITY_TIMEOUT": "0"}, "ACRGUARD_VISIBILITY_TIMEOUT: must be between 1 and"),
        (
            {"ACRGUARD_RETRY_BASE_SECONDS": "60", "ACRGUARD_RETRY_MAX_SECONDS": "5"},
            r"ACRGUARD_RETRY_MAX_SECONDS: must be between ACRGUARD_RETRY_BASE_SECONDS \(60\)",
        ),
        ({"ACRGUARD_MAX_ATTEMPTS": "0"}, "ACRGUARD_MAX_ATTEMPTS: must be at least 1, not 0"),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=f"^{message}") as caught:
        RetrySettings.from_settings(Settings.from_environ(env))
    assert "\n" not in str(caught.value)


def _queue_row(path: Path) -> tuple[float, int] | None:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT visible_at, dequeue_count FROM messages WHERE queue = 'scan-requests'").fetchone()
    return None if row is None else (float(row[0]), int(row[1]))


def _scan_rows(store_path: Path, digest: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(store_path) as db:
        rows = db.execute(
            "SELECT scan_id, status, error FROM scans WHERE digest = ? ORDER BY started_at, scan_id", (digest,)
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_failed_attempts_back_off_exponentially_then_dead_letter(
    tmp_path: Path, store: FindingsStore, db: SqliteVulnDatabase, fetch: CountingFetch
) -> None:
    fetch.error = RuntimeError("fetch: 127.0.0.1:5999: connection refused")
    settings = RetrySettings(visibility_timeout=60, retry_base_seconds=100, retry_max_seconds=250, max_attempts=4)
    path = tmp_path / "backoff.sqlite"
    with open_queue(path, max_attempts=settings.max_attempts) as queue:
        request = handle_push(push_event(), store, queue, VERSION)
        assert request is not None
        delays = []
        for attempt in range(1, 5):
            before = time.time()
            assert drain_queue(queue, store, db, fetch, VERSION, settings=settings).failed == 1
            after = time.time()
            row = _queue_row(path)
            if attempt < 4:
                assert row is not None and row[1] == attempt
                # Visible again `delay` seconds after the failure, which happened between `before` and `after`.
                delays.append((row[0] - after, row[0] - before))
                # Not visible again before its backoff: the next drain finds nothing to do.
                assert drain_queue(queue, store, db, fetch, VERSION, settings=settings).failed == 0
                _make_visible(path)  # instead of waiting the backoff out
            else:
                assert row is None  # the fourth failure was the last attempt
        (dead,) = queue.dead_letters()
    # 100, 200, then capped at 250 seconds, however long the drain took.
    assert [low <= delay <= high for (low, high), delay in zip(delays, (100, 200, 250), strict=True)] == [True] * 3
    assert (dead.attempts, dead.error) == (4, "fetch: 127.0.0.1:5999: connection refused")
    scans = _scan_rows(Path(tmp_path / "store.sqlite"), request.digest)
    assert [s[0] for s in scans] == [attempt_scan_id(request, n) for n in range(1, 5)]
    assert {(s[1], s[2]) for s in scans} == {("failed", "fetch: 127.0.0.1:5999: connection refused")}
    assert len(fetch.calls) == 4


def _make_visible(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE messages SET visible_at = 0")


class SlowFetch:
    """A fetch step that holds the scan until the test has seen what it waits for."""

    def __init__(self, result: Inventory) -> None:
        self.result = result
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, request: ScanRequest) -> Inventory:
        self.started.set()
        if not self.release.wait(60):
            raise RuntimeError("the test never released the scan")
        return self.result


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_azurite(tmp_path_factory.mktemp("azurite")) as connection_string:
        yield connection_string


@pytest.mark.parametrize("backend", ["sqlite", "azurite"])
def test_a_running_scan_keeps_its_lease(
    tmp_path: Path,
    store: FindingsStore,
    db: SqliteVulnDatabase,
    archive_inventory: Inventory,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    settings = RetrySettings(visibility_timeout=1)  # renewed every 0.5 s
    location = str(tmp_path / "lease.sqlite") if backend == "sqlite" else str(request.getfixturevalue("azurite"))
    name = f"lease-{uuid.uuid4().hex[:12]}"
    fetch = SlowFetch(archive_inventory)
    with open_queue(location, name) as queue, open_queue(location, name) as other_worker:
        assert handle_push(push_event(), store, queue, VERSION) is not None
        result: dict[str, Any] = {}
        worker = threading.Thread(
            target=lambda: result.update(counts=drain_queue(queue, store, db, fetch, VERSION, settings=settings))
        )
        worker.start()
        try:
            assert fetch.started.wait(30)
            # Three lease lengths into the scan, each observed on the queue's own clock: without renewal the
            # message would be visible again after the first.
            for _ in range(3):
                wait_out_a_lease(location, name, settings.visibility_timeout)
                assert other_worker.receive(1, 1) == []  # still leased: no second worker gets it meanwhile
        finally:
            fetch.release.set()
            worker.join(60)
        assert result["counts"].processed == 1
        wait_out_a_lease(location, name, settings.visibility_timeout)
        assert other_worker.receive(1, 1) == [] and other_worker.dead_letters() == []  # completed, gone


def test_an_abandoned_attempt_is_closed_and_the_retry_completes(
    tmp_path: Path, store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch
) -> None:
    request = handle_push(push_event(), store, queue, VERSION)
    assert request is not None
    (_leased,) = queue.receive(1, 1)
    # The worker that received it dies mid-scan: its record stays `running`, its lease runs out.
    store.start_scan(
        request.registry,
        request.repository,
        request.digest,
        "push",
        request.requested_at,
        scan_id=attempt_scan_id(request, 1),
    )
    deadline = time.monotonic() + 30
    while (row := _queue_row(tmp_path / "queue.sqlite")) is not None and row[0] > time.time():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert drain_queue(queue, store, db, fetch, VERSION, settings=RetrySettings()).processed == 1
    scans = _scan_rows(tmp_path / "store.sqlite", request.digest)
    assert scans == [
        (
            attempt_scan_id(request, 1),
            "failed",
            "abandoned: attempt 1 did not finish (the worker stopped or its lease expired)",
        ),
        (attempt_scan_id(request, 2), "succeeded", ""),
    ]
    assert len(fetch.calls) == 1


def test_process_scan_records_one_line_cause(
    store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch
) -> None:
    fetch.error = RuntimeError("fetch: reg.example: cannot connect:\n  Connection refused")
    request = handle_push(push_event(), store, queue, VERSION)
    assert request is not None
    with pytest.raises(RuntimeError):
        process_scan(request, store, db, fetch, VERSION, attempt=3)
    detail = store.get_image(request.registry, request.digest)
    assert detail is not None and detail.last_scan is not None
    assert detail.last_scan.scan_id == attempt_scan_id(request, 3)
    assert (detail.last_scan.status, detail.last_scan.error) == (
        "failed",
        "fetch: reg.example: cannot connect: Connection refused",
    )
