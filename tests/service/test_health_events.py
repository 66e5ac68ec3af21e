"""Health-changed events whenever an image's health or finding set changes, with no gate configured, through
the real WebhookPublisher to a real local HTTP server; gates' verdicts ride along when there are gates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service_support import CountingFetch, allowing
from test_pipeline import VERSION, push_event

from scanner.policy.gate_actions import WebhookPublisher
from scanner.policy.gates import load_gates
from scanner.queue import ScanQueue
from scanner.service.pipeline import Policy, drain_queue, handle_event, handle_push
from scanner.service.rescan import rescan_recent
from scanner.store import FindingsStore
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.policy.httprecorder import recording_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _events(requests: list[Any]) -> list[dict[str, Any]]:
    return [r.json() for r in requests]


def test_every_change_is_published_without_any_gate(
    tmp_path: Path, store: FindingsStore, queue: ScanQueue, fetch: CountingFetch
) -> None:
    db_path = tmp_path / "vulndb.sqlite"
    import_sources(db_path, [str(FIXTURES / "osv/alpine-secdb/v3.11")])  # another release: no findings yet
    event = push_event()
    with recording_server() as webhook:
        policy = Policy(publisher=WebhookPublisher(f"{webhook.url}/hook", attempts=1))
        handle_push(event, store, queue, VERSION)
        with SqliteVulnDatabase.open(db_path) as db:
            assert drain_queue(queue, store, db, fetch, VERSION, policy=policy).processed == 1
        # The first assessment is a change: unknown → NotAssessed (the database holds no Alpine 3.10 advisory).
        (first,) = _events(webhook.requests)
        assert (first["data"]["previousHealth"], first["data"]["health"]) == (None, "NotAssessed")
        assert first["data"]["gates"] == [] and first["eventType"] == "Acrguard.ImageHealthChanged"

        pull = replace(event, kind="pull", tag=None, event_id="p1", at=datetime.now(UTC))
        handle_event(pull, store, queue, VERSION, registries=allowing(pull.registry))
        since = datetime.now(UTC) - timedelta(days=1)
        with SqliteVulnDatabase.open(db_path) as db:
            assert rescan_recent(store, db, since, VERSION, policy=policy).rematched == 1
        assert len(webhook.requests) == 1  # nothing changed: no event

        import_sources(db_path, [str(FIXTURES / "osv/alpine-secdb/v3.10")])  # the database update
        with SqliteVulnDatabase.open(db_path) as db:
            assert rescan_recent(store, db, since, VERSION, policy=policy).rematched == 1
        second = _events(webhook.requests)[-1]
        assert len(webhook.requests) == 2
        assert (second["data"]["previousHealth"], second["data"]["health"]) == ("NotAssessed", "Unhealthy")
        assert len(second["data"]["addedFindings"]) == 8 and second["subject"] == f"samples/nginx@{event.digest}"


def test_gate_verdicts_ride_along_and_notify_gates_do_not_repeat_the_event(
    tmp_path: Path, store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch
) -> None:
    gates_dir = tmp_path / "gates"
    gates_dir.mkdir()
    (gates_dir / "g.yaml").write_text(
        "gates:\n  - name: any-fixable\n    description: any patchable finding\n"
        "    when:\n      patchable_severity_at_least: Unknown\n    actions: [notify]\n"
    )
    with recording_server() as webhook:
        publisher = WebhookPublisher(f"{webhook.url}/hook", attempts=1)
        # The gates' adapter publishes to the same place: with a service publisher it must not be used too.
        adapter = _Adapter(publisher)
        policy = Policy(gates=tuple(load_gates(gates_dir)), gate_actions=adapter, publisher=publisher)
        handle_push(push_event(), store, queue, VERSION)
        assert drain_queue(queue, store, db, fetch, VERSION, policy=policy).processed == 1
    # Recorded, not raised: the pipeline catches what gate actions raise, so a raise would pass unseen.
    assert adapter.unexpected == []
    (event,) = _events(webhook.requests)
    assert event["data"]["health"] == "Unhealthy"
    assert [(g["name"], g["failed"]) for g in event["data"]["gates"]] == [("any-fixable", True)]


def test_a_dead_webhook_does_not_fail_the_scan(
    store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch
) -> None:
    with recording_server([(503, {"error": "down"})]) as webhook:
        policy = Policy(publisher=WebhookPublisher(f"{webhook.url}/hook", attempts=2, sleep=lambda _s: None))
        event = push_event()
        handle_push(event, store, queue, VERSION)
        assert drain_queue(queue, store, db, fetch, VERSION, policy=policy).processed == 1
        assert len(webhook.requests) == 2  # tried (with the publisher's own retry), then given up
    detail = store.get_image(event.registry, event.digest)
    assert detail is not None and detail.health == "Unhealthy" and detail.last_scan is not None
    assert detail.last_scan.status == "succeeded"


class _Adapter:
    """Gate actions that record every call a `notify` gate must not make."""

    def __init__(self, publisher: WebhookPublisher) -> None:
        self.publisher = publisher
        self.unexpected: list[str] = []

    def lock(self, image: Any) -> None:
        self.unexpected.append(f"lock {image}")

    def unlock(self, image: Any) -> None:
        self.unexpected.append(f"unlock {image}")

    def quarantine(self, image: Any, state: Any, details: Any) -> None:
        self.unexpected.append(f"quarantine {image}")

    def publish(self, event: Any) -> None:
        self.publisher.publish(event)
