"""Gates in the pipeline: a database update adds advisories, the rescan (from the stored inventory, no
pull) flips the image to Unhealthy, the gate locks it and a health-changed event reaches a real webhook;
once the findings are disabled the image is released. The lock/quarantine side is recorded here (those
ACR calls are tested against real HTTP in tests/policy); the event goes through the real WebhookPublisher."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service_support import CountingFetch, allowing
from test_pipeline import EPOCH, VERSION, push_event

from scanner.policy.gate_actions import WebhookPublisher
from scanner.policy.gates import load_gates
from scanner.policy.image_context import ImageContext
from scanner.queue import ScanQueue
from scanner.service.pipeline import Policy, drain_queue, handle_event, handle_push
from scanner.service.rescan import rescan_recent
from scanner.store import FindingsStore
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.policy.httprecorder import recording_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass
class RecordingActions:
    publisher: WebhookPublisher
    calls: list[str] = field(default_factory=list)

    def lock(self, image: ImageContext) -> None:
        self.calls.append(f"lock {image.repository}")

    def unlock(self, image: ImageContext) -> None:
        self.calls.append(f"unlock {image.repository}")

    def quarantine(self, image: ImageContext, state: str, details: Any) -> None:
        self.calls.append(f"quarantine {state}")

    def publish(self, event: Any) -> None:
        self.publisher.publish(event)


def test_database_update_rescan_flips_health_locks_and_notifies(
    tmp_path: Path, store: FindingsStore, queue: ScanQueue, fetch: CountingFetch
) -> None:
    gates_dir = tmp_path / "gates"
    gates_dir.mkdir()
    (gates_dir / "block.yaml").write_text(
        "gates:\n  - name: block-fixable\n    description: any patchable finding\n"
        "    when:\n      patchable_severity_at_least: Unknown\n    actions: [lock, notify]\n"
        # Judged by its findings while the database cannot assess it (the default, fail, would lock it at once).
        "    on_not_assessed: findings\n"
    )
    db_path = tmp_path / "vulndb.sqlite"
    import_sources(db_path, [str(FIXTURES / "osv/alpine-secdb/v3.11")])  # other release: no findings yet
    with recording_server() as webhook:
        actions = RecordingActions(WebhookPublisher(f"{webhook.url}/hook"))
        policy = Policy(gates=tuple(load_gates(gates_dir)), gate_actions=actions)
        event = push_event()
        handle_push(event, store, queue, VERSION)
        with SqliteVulnDatabase.open(db_path) as db:
            assert drain_queue(queue, store, db, fetch, VERSION, policy=policy).processed == 1
        image = store.get_image(event.registry, event.digest)
        assert image is not None and image.health == "NotAssessed"  # no Alpine 3.10 advisory: nothing proved
        assert "lock samples/nginx" not in actions.calls  # a passing gate never locks

        import_sources(db_path, [str(FIXTURES / "osv/alpine-secdb/v3.10")])  # the database update
        pull = replace(event, kind="pull", tag=None, event_id="p1", at=datetime.now(UTC))
        handle_event(pull, store, queue, VERSION, registries=allowing(pull.registry))
        with SqliteVulnDatabase.open(db_path) as db:
            counts = rescan_recent(store, db, datetime.now(UTC) - timedelta(days=30), VERSION, policy=policy)
        assert (counts.rematched, counts.requeued) == (1, 0)
        assert len(fetch.calls) == 1  # the rescan did not pull
        image = store.get_image(event.registry, event.digest)
        assert image is not None and image.health == "Unhealthy"
        assert "lock samples/nginx" in actions.calls
        bodies = [r.json() for r in webhook.requests]
        assert bodies, "a health-changed event must reach the webhook"
        last = bodies[-1]
        changed = last[0] if isinstance(last, list) else last
        assert "HealthChanged" in str(changed.get("eventType", changed.get("type", "")))
        assert changed["data"]["health"] == "Unhealthy" and changed["data"]["previousHealth"] == "NotAssessed"
        assert changed["subject"] == f"samples/nginx@{event.digest}" and len(changed["data"]["addedFindings"]) == 8
        assert store.usage(event.registry, EPOCH).billable == 1


def test_a_gate_locks_an_image_the_database_cannot_assess_by_default(
    tmp_path: Path, store: FindingsStore, queue: ScanQueue, fetch: CountingFetch
) -> None:
    gates_dir = tmp_path / "gates"
    gates_dir.mkdir()
    (gates_dir / "block.yaml").write_text(
        "gates:\n  - name: block-critical\n    description: critical findings\n"
        "    when:\n      any_severity_at_least: Critical\n    actions: [lock]\n"
    )
    db_path = tmp_path / "vulndb.sqlite"
    import_sources(db_path, [str(FIXTURES / "osv/alpine-secdb/v3.11")])  # no advisory for the image's release
    with recording_server() as webhook:
        actions = RecordingActions(WebhookPublisher(f"{webhook.url}/hook"))
        policy = Policy(gates=tuple(load_gates(gates_dir)), gate_actions=actions)
        event = push_event()
        handle_push(event, store, queue, VERSION)
        with SqliteVulnDatabase.open(db_path) as db:
            assert drain_queue(queue, store, db, fetch, VERSION, policy=policy).processed == 1
    image = store.get_image(event.registry, event.digest)
    assert image is not None and image.health == "NotAssessed"
    assert image.reason == "the database holds no Alpine:v3.10 advisories: run `acrguard db update`"
    assert [(c.ecosystem, c.kind, c.advisories) for c in image.coverage] == [("Alpine:v3.10", "os", 0)]
    assert actions.calls == ["lock samples/nginx"]  # no finding, but nothing was proved: the gate fails
