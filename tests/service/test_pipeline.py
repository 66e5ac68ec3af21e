"""The event → queue → scan → rescan pipeline on real adapters (SQLite store and queue, imported database,
a real docker-save archive through the injected fetch step)."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from service_support import CountingFetch, allowing, load_event

from scanner.queue import ScanQueue, ScanRequest
from scanner.service.events import RegistryEvent, parse_event, parse_notifications
from scanner.service.pipeline import drain_queue, handle_event, handle_push, process_scan
from scanner.service.rescan import rescan_recent
from scanner.service.retry import RetrySettings
from scanner.service.sandboxed import request_reference
from scanner.store import FindingsStore
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

VERSION = "test-1"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def push_event(tag: str = "latest", event_id: str = "e1") -> RegistryEvent:
    raw = copy.deepcopy(load_event("eventgrid-image-pushed.json"))
    raw["id"] = raw["data"]["id"] = event_id
    raw["data"]["target"]["tag"] = tag
    return parse_event(raw)


def test_push_scan_repush_pull_rescan(
    store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch
) -> None:
    event = push_event()
    request = handle_push(event, store, queue, VERSION)
    assert request is not None and request.digest == event.digest and request.reason == "push"
    assert handle_push(event, store, queue, VERSION) is None  # redelivered while pending: queue dedupe

    assert drain_queue(queue, store, db, fetch, VERSION).processed == 1
    assert len(fetch.calls) == 1
    assert len(store.list_findings(event.registry, event.digest)) == 8
    assert store.usage(event.registry, EPOCH).billable == 1

    # A re-push of the same digest under a new tag only attaches the tag.
    assert handle_push(push_event("v2", "e2"), store, queue, VERSION) is None
    assert queue.receive(5) == []
    detail = store.get_image(event.registry, event.digest)
    assert detail is not None and {t.tag for t in detail.tag_history if t.current} == {"latest", "v2"}
    assert store.usage(event.registry, EPOCH).billable == 1

    pull = replace(event, kind="pull", tag=None, event_id="p1", at=datetime.now(UTC))
    handle_event(pull, store, queue, VERSION, registries=allowing(pull.registry))
    assert store.recently_pulled(EPOCH)

    counts = rescan_recent(store, db, datetime.now(UTC) - timedelta(days=30), VERSION, queue=queue)
    assert (counts.rematched, counts.requeued, counts.failed) == (1, 0, 0)
    assert len(fetch.calls) == 1  # re-matched from the stored inventory, nothing pulled
    assert len(store.list_findings(event.registry, event.digest)) == 8
    assert store.usage(event.registry, EPOCH).billable == 1


def test_rescan_requeues_only_stale_inventories(
    store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch
) -> None:
    event = push_event()
    request = handle_push(event, store, queue, VERSION)
    assert request is not None
    drain_queue(queue, store, db, fetch, VERSION)
    store.record_pull(event.registry, event.repository, event.digest, datetime.now(UTC), "registry-notification")
    counts = rescan_recent(store, db, EPOCH, "test-2", queue=queue)
    assert (counts.rematched, counts.requeued) == (0, 1)
    (message,) = queue.receive(5)
    assert message.request.reason == "rescan" and message.request.digest == event.digest
    assert len(fetch.calls) == 1


def test_duplicated_and_reordered_events_give_one_scan_and_one_charge(
    store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch
) -> None:
    events = [push_event("v2", "e2"), push_event("latest", "e1"), push_event("v2", "e2"), push_event("latest", "e1")]
    queued = [handle_push(e, store, queue, VERSION) for e in events]
    assert sum(1 for q in queued if q is not None) == 1
    assert drain_queue(queue, store, db, fetch, VERSION).processed == 1
    for e in reversed(events):
        assert handle_push(e, store, queue, VERSION) is None
    assert drain_queue(queue, store, db, fetch, VERSION).processed == 0
    assert len(fetch.calls) == 1
    assert store.usage(events[0].registry, EPOCH).billable == 1


def test_failed_scan_is_recorded_and_retried_then_dead_lettered(
    store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch
) -> None:
    fetch.error = RuntimeError("registry unreachable\nsecond line")
    request = handle_push(push_event(), store, queue, VERSION)
    assert request is not None
    with pytest.raises(RuntimeError):
        process_scan(request, store, db, fetch, VERSION)
    detail = store.get_image(request.registry, request.digest)
    assert detail is not None
    assert detail.last_scan is not None
    assert (detail.last_scan.status, detail.last_scan.error) == ("failed", "registry unreachable second line")
    # No backoff: the message comes straight back, and its second failure (max_attempts=2) dead-letters it.
    no_wait = RetrySettings(retry_base_seconds=0, retry_max_seconds=0, max_attempts=2)
    assert drain_queue(queue, store, db, fetch, VERSION, settings=no_wait).failed == 2
    (dead,) = queue.dead_letters()
    assert "registry unreachable" in dead.error
    assert not store.has_current_scan(request.registry, request.digest, VERSION)


def test_delete_and_notification_pull(store: FindingsStore, queue: ScanQueue) -> None:
    (push,) = parse_notifications(load_event("registry-notification-push-manifest.json"))
    assert handle_event(push, store, queue, VERSION, registries=allowing(push.registry)) is not None
    (pull,) = parse_notifications(load_event("registry-notification-pull-manifest.json"))
    handle_event(pull, store, queue, VERSION, registries=allowing(pull.registry))
    assert [k.digest for k in store.recently_pulled(EPOCH)] == [push.digest]
    later = replace(push, kind="delete", tag=None, at=push.at + timedelta(seconds=1))
    handle_event(later, store, queue, VERSION, registries=allowing(later.registry))
    assert store.recently_pulled(EPOCH) == []


def test_request_reference_is_pinned_by_digest() -> None:
    request = ScanRequest.create("myreg.azurecr.io", "samples/nginx", "sha256:" + "a" * 64, tag="moved")
    assert request_reference(request) == f"docker://myreg.azurecr.io/samples/nginx@sha256:{'a' * 64}"
