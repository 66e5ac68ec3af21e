"""Faults through `acrguard serve` (a real process) and a real, notifying registry:

- the job process killed mid-scan: serve SIGKILLed while the scan record is `running`, restarted on the same
  store and queue; the lease expires, the retry completes, one charge;
- the sandboxed child killed: that attempt fails, the retry completes (bubblewrap);
- the registry down during a scan: retried with growing backoff, then failed with its cause and dead-lettered;
- malformed events through the Event Grid webhook and the notification endpoint: dead-lettered with the error;
- duplicated and reordered events: one scan, one charge.

Scans are made slow for real (an image with tens of thousands of files to parse), never by a hook in the
product, and the tests act on what they observe (a `running` record, the child process), not on timings.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scanner.queue import open_queue
from scanner.store import open_store
from scanner.vulndb.osv_import import import_sources
from tests.policy.httprecorder import Recorder, recording_server
from tests.queue.azurite_server import running_azurite

from .stack import (
    EVENT_GRID_HEADERS,
    FUNCTION_KEY,
    NOTIFY_HEADERS,
    VULN,
    PortTaken,
    Serve,
    alpine_layout,
    descendants,
    many_files_alpine_layout,
    queue_rows,
    realparts,
    scan_rows,
    serve_notification_url,
    start_registry_notifying,
    start_serve,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]

REPO = "faults/alpine"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SCANS = "scan-requests"
EVENT_LETTERS = "acrguard-event-dead-letters"
# Short leases and backoff so that the scenarios take seconds: the settings a user would set, read by serve.
RETRY_ENV = {
    "ACRGUARD_VISIBILITY_TIMEOUT": "3",
    "ACRGUARD_RETRY_BASE_SECONDS": "1",
    "ACRGUARD_RETRY_MAX_SECONDS": "4",
    "ACRGUARD_MAX_ATTEMPTS": "4",
}


@dataclass
class Stack:
    tmp: Path
    db: Path
    port: int  # serve's, named by the registry's notifications before serve starts
    registry: realparts.Registry
    events: Recorder  # every notification the registry sends, as sent
    notify_serve: bool
    serve: Serve | None = None
    queue: str | None = None  # a Storage connection string (Azurite); None: the embedded SQLite queue

    @property
    def store_path(self) -> Path:
        return self.tmp / "serve" / "store.sqlite"

    @property
    def queue_path(self) -> Path:
        return self.tmp / "serve" / "queue.sqlite"

    def start_serve(self, runner: str = "none") -> Serve:
        """serve on `port`; should another process hold that port before serve first listens there, the
        registry is started again notifying another (nothing was pushed yet). A restart keeps the port."""
        while True:
            try:
                self.serve = start_serve(
                    self.tmp / "serve",
                    port=self.port,
                    db=self.db,
                    runner=runner,
                    insecure_registries=[self.registry.host],
                    env=RETRY_ENV,
                    queue=self.queue,
                )
                return self.serve
            except PortTaken:
                if self.serve is not None:
                    raise
                self.registry.stop()
                self.port = realparts.free_port()
                self.registry = _registry(self.tmp, self.port, self.events, self.notify_serve)

    def context(self) -> str:
        serve_log = self.serve.log_tail(60) if self.serve is not None else ""
        return f"serve:\n{serve_log}\nregistry:\n{self.registry.log_tail()}"

    def scans(self, digest: str) -> list[dict[str, Any]]:
        return scan_rows(self.store_path, digest) if self.store_path.exists() else []

    def billable(self) -> int:
        with open_store(self.store_path) as store:
            return store.usage(self.registry.host, EPOCH).billable


def _registry(tmp: Path, port: int, events: Recorder, notify_serve: bool) -> realparts.Registry:
    urls = [f"{events.url}/registry-events"]
    if notify_serve:
        urls.insert(0, serve_notification_url(port))
    return start_registry_notifying(tmp / "registry", urls)


def _stack(tmp: Path, notify_serve: bool) -> Iterator[Stack]:
    db = tmp / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    port = realparts.free_port()
    with recording_server() as events:
        stack = Stack(tmp, db, port, _registry(tmp, port, events, notify_serve), events, notify_serve)
        try:
            yield stack
        finally:
            if stack.serve is not None:
                stack.serve.stop()
            stack.registry.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(tmp_path, notify_serve=True)


@pytest.fixture
def quiet_stack(tmp_path: Path) -> Iterator[Stack]:
    """The registry notifies only the test's recorder: the test decides when serve hears of a push."""
    yield from _stack(tmp_path, notify_serve=False)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _finished(stack: Stack, digest: str, statuses: list[str]) -> list[dict[str, Any]] | None:
    rows = stack.scans(digest)
    return rows if [r["status"] for r in rows] == statuses else None


# ------------------------------------------------------------------------------------------ killed job


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_azurite(tmp_path_factory.mktemp("azurite")) as connection_string:
        yield connection_string


@pytest.mark.parametrize("backend", ["sqlite", "azurite"])
def test_serve_killed_mid_scan_is_retried_after_the_lease_and_charged_once(
    stack: Stack, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "azurite":
        stack.queue = str(request.getfixturevalue("azurite"))
    serve = stack.start_serve(runner="none")
    layout = many_files_alpine_layout(stack.tmp / "layout")
    digest = realparts.push(stack.registry, f"oci:{layout}:latest", REPO, "big").digest

    # Kill at a point observed, not timed: the attempt's record says `running` and its child is parsing.
    def running_child() -> Any:
        rows = stack.scans(digest)
        children = [p for p, cmd in descendants(serve.process.pid).items() if "scanner.sandbox.child" in cmd]
        return children if [r["status"] for r in rows] == ["running"] and children else None

    children = wait_for("a running scan", running_child, timeout=60, interval=0.02, context=stack.context)
    serve.process.kill()
    serve.process.wait()
    (interrupted,) = stack.scans(digest)
    assert interrupted["status"] == "running"  # it was killed mid-scan, not after
    # The child does not outlive the job process (it would parse on, for nobody).
    wait_for("the orphaned child gone", lambda: not any(Path(f"/proc/{p}").exists() for p in children))

    restarted = stack.start_serve(runner="none")  # same store, same queue
    rows = wait_for(
        "the retry after the lease expired",
        lambda: _finished(stack, digest, ["failed", "succeeded"]),
        timeout=90,
        context=stack.context,
    )
    assert rows[0]["scan_id"] == interrupted["scan_id"]
    assert rows[0]["error"].startswith("abandoned: attempt 1 did not finish")
    status, body = restarted.image(stack.registry.host, digest)
    assert status == 200 and body["health"] == "Unhealthy" and VULN in {f["id"] for f in body["findings"]}
    assert stack.billable() == 1
    if stack.queue is None:
        assert queue_rows(stack.queue_path, "messages", SCANS) == []
        assert queue_rows(stack.queue_path, "dead_letters", SCANS) == []
    else:
        with open_queue(stack.queue) as queue:
            assert queue.dead_letters() == [] and queue.receive(1, 1) == []


def test_sandboxed_child_killed_fails_the_attempt_and_the_retry_completes(stack: Stack) -> None:
    serve = stack.start_serve(runner="bubblewrap")
    layout = many_files_alpine_layout(stack.tmp / "layout")
    digest = realparts.push(stack.registry, f"oci:{layout}:latest", REPO, "big").digest

    def scanner_in_sandbox() -> Any:
        # The Python inside bubblewrap (bwrap's own processes carry the same module name in their argv).
        found = [
            p
            for p, cmd in descendants(serve.process.pid).items()
            if "scanner.sandbox.child" in cmd and not cmd.split()[0].endswith("bwrap")
        ]
        return found[0] if found else None

    child = wait_for("the sandboxed child", scanner_in_sandbox, timeout=60, interval=0.02, context=stack.context)
    os.kill(child, signal.SIGKILL)

    rows = wait_for(
        "the retry after the killed attempt",
        lambda: _finished(stack, digest, ["failed", "succeeded"]),
        timeout=90,
        context=stack.context,
    )
    assert rows[0]["error"].startswith("sandbox: the scan was killed by SIGKILL"), rows[0]
    assert "\n" not in rows[0]["error"]
    status, body = serve.image(stack.registry.host, digest)
    assert status == 200 and body["health"] == "Unhealthy" and body["lastScan"]["status"] == "succeeded"
    assert stack.billable() == 1
    assert serve.process.poll() is None  # the service itself is unharmed


# ------------------------------------------------------------------------------------------ registry down


def test_registry_down_is_retried_with_backoff_then_failed_and_dead_lettered(quiet_stack: Stack) -> None:
    stack = quiet_stack
    serve = stack.start_serve(runner="none")
    layout = alpine_layout(stack.tmp / "layout")
    digest = realparts.push(stack.registry, f"oci:{layout}:latest", REPO, "3.10").digest

    def push_notification() -> Any:
        for request in list(stack.events.requests):
            body = request.json()
            if any(e.get("action") == "push" and e["target"].get("digest") == digest for e in body["events"]):
                return request.body
        return None

    notification = wait_for("the registry's push notification", push_notification, context=stack.context)
    stack.registry.stop()
    # The registry's own notification, delivered once the registry is gone (as a slow relay would).
    answer = realparts.http("POST", serve_notification_url(stack.port), headers=NOTIFY_HEADERS, data=notification)
    assert answer.status == 200 and json.loads(answer.body)["queued"] == 1

    dead = wait_for(
        "the scan dead-lettered",
        lambda: queue_rows(stack.queue_path, "dead_letters", SCANS),
        timeout=90,
        context=stack.context,
    )
    rows = stack.scans(digest)
    assert [r["status"] for r in rows] == ["failed"] * 4
    cause = rows[-1]["error"]
    assert cause.startswith(f"fetch: {stack.registry.host}/{REPO}@{digest}: manifest: cannot reach the registry")
    assert "Connection refused" in cause and "\n" not in cause
    assert {r["error"] for r in rows} == {cause}
    (letter,) = dead
    assert (letter["attempts"], letter["error"]) == (4, cause)
    assert json.loads(letter["body"])["digest"] == digest
    # Backoff from the records: each attempt starts at least base * 2^(n-1) seconds (1, 2, 4) after the
    # previous one failed. Only these lower bounds are promised: how much later the worker gets to it is not.
    gaps = [
        (_parse_time(later["started_at"]) - _parse_time(earlier["finished_at"])).total_seconds()
        for earlier, later in itertools.pairwise(rows)
    ]
    assert [g >= minimum for g, minimum in zip(gaps, (1, 2, 4), strict=True)] == [True, True, True], gaps
    status, body = serve.image(stack.registry.host, digest)
    assert status == 200 and body["lastScan"]["status"] == "failed" and body["health"] is None
    assert stack.billable() == 0


# ------------------------------------------------------------------------------------------ bad and repeated events


def _webhook(stack: Stack) -> str:
    assert stack.serve is not None
    return stack.serve.url(f"/runtime/webhooks/eventgrid?functionName=acr_events&code={FUNCTION_KEY}")


def _pushed_event(stack: Stack, event_id: str, digest: str, tag: str, at: datetime) -> dict[str, Any]:
    stamp = at.isoformat().replace("+00:00", "Z")
    return {
        "id": event_id,
        "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/local",
        "subject": f"{REPO}:{tag}",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": stamp,
        "dataVersion": "2.0",
        "metadataVersion": "1",
        "data": {
            "id": event_id,
            "timestamp": stamp,
            "action": "push",
            "target": {"mediaType": realparts.OCI_MANIFEST, "digest": digest, "repository": REPO, "tag": tag},
            "request": {"id": event_id, "host": stack.registry.host, "method": "PUT", "useragent": "test"},
        },
    }


def _dead_event_errors(stack: Stack) -> list[str]:
    """Errors of the events serve could not read, wherever the event dead-letter queue keeps them."""
    errors = []
    for row in queue_rows(stack.queue_path, "messages", EVENT_LETTERS):
        errors.append(json.loads(row["body"])["error"])
    for row in queue_rows(stack.queue_path, "dead_letters", EVENT_LETTERS):
        body = json.loads(row["body"])
        errors.append(body["error"] if isinstance(body, dict) and "error" in body else row["error"])
    return errors


def test_malformed_events_are_dead_lettered_with_their_error(stack: Stack) -> None:
    serve = stack.start_serve()
    bad = _pushed_event(stack, "bad-1", "sha256:" + "0" * 64, "x", datetime.now(UTC))
    del bad["data"]["target"]["digest"]
    answer = realparts.http("POST", _webhook(stack), headers=EVENT_GRID_HEADERS, data=json.dumps([bad]).encode())
    assert answer.status == 200, answer.body
    not_json = realparts.http("POST", serve_notification_url(stack.port), headers=NOTIFY_HEADERS, data=b"{not json")
    assert not_json.status == 200 and json.loads(not_json.body)["dead_lettered"] is True
    no_events = realparts.http(
        "POST", serve_notification_url(stack.port), headers=NOTIFY_HEADERS, data=json.dumps({"events": 7}).encode()
    )
    assert no_events.status == 200 and json.loads(no_events.body)["dead_lettered"] is True

    errors = _dead_event_errors(stack)
    assert len(errors) == 3, errors
    assert all("\n" not in e and e for e in errors)
    assert any("digest" in e for e in errors), errors
    assert any(e.startswith("notification: body is not JSON") for e in errors), errors
    assert any("events" in e for e in errors), errors
    # Nothing was queued or scanned for them, and serve keeps serving.
    assert queue_rows(stack.queue_path, "messages", SCANS) == []
    assert realparts.http("GET", serve.url("/api/health")).status == 200


def test_duplicated_and_reordered_events_give_one_scan_and_one_charge(stack: Stack) -> None:
    serve = stack.start_serve()
    layout = alpine_layout(stack.tmp / "layout")
    digest = realparts.push(stack.registry, f"oci:{layout}:latest", REPO, "3.10").digest
    now = datetime.now(UTC)
    # The same push again and again, and tags arriving newest first, while the first scan is pending or running.
    early, late = _pushed_event(stack, "eg-a", digest, "a", now), _pushed_event(stack, "eg-b", digest, "b", now)
    late["eventTime"] = late["data"]["timestamp"] = (now + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    for batch in ([late], [early, late], [early], [late, early]):
        answer = realparts.http("POST", _webhook(stack), headers=EVENT_GRID_HEADERS, data=json.dumps(batch).encode())
        assert answer.status == 200, answer.body

    def done() -> Any:
        status, body = serve.image(stack.registry.host, digest)
        tags = {f"{REPO}:a", f"{REPO}:b", f"{REPO}:3.10"}
        ready = status == 200 and body["lastScan"] and body["lastScan"]["status"] == "succeeded"
        return body if ready and tags <= set(body["tags"]) else None

    first = wait_for("the scan and every tag", done, timeout=60, context=stack.context)
    # The registry's own notifications replayed after the scan (a redelivery), twice.
    for request in list(stack.events.requests):
        for _ in range(2):
            answer = realparts.http(
                "POST", serve_notification_url(stack.port), headers=NOTIFY_HEADERS, data=request.body
            )
            assert answer.status == 200
    for batch in ([early, late], [late]):
        realparts.http("POST", _webhook(stack), headers=EVENT_GRID_HEADERS, data=json.dumps(batch).encode())
    wait_for("the queue drained", lambda: queue_rows(stack.queue_path, "messages", SCANS) == [])
    status, body = serve.image(stack.registry.host, digest)
    assert status == 200 and body["lastScan"]["scanId"] == first["lastScan"]["scanId"]
    assert len(stack.scans(digest)) == 1
    assert stack.billable() == 1
    assert {t["tag"] for t in body["tagHistory"] if t["current"]} >= {"a", "b", "3.10"}
