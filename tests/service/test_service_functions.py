"""The event and timer functions through the app index, on real adapters configured by environment."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest
from service_support import grid_event, load_event

from scanner.azure.events import bp as events_bp
from scanner.azure.rescan import bp as rescan_bp
from scanner.queue import open_queue
from scanner.service.config import EVENT_DEAD_LETTER_QUEUE, clients
from scanner.store import open_store
from tests.app_index import blueprint_functions

ROOT = Path(__file__).resolve().parents[2]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
NOTIFY = {"Content-Type": "application/vnd.docker.distribution.events.v1+json"}  # what the registry sends


FUNCTIONS = blueprint_functions(events_bp, rescan_bp)


def handler(name: str) -> Callable[..., Any]:
    fn: Callable[..., Any] = FUNCTIONS[name].get_user_function()
    return fn


@pytest.fixture
def env(tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # The handlers as Azure runs them: in the Functions host's Python worker (its module loaded) on an App
    # Service instance, whose host has checked the function key (or the Event Grid system key) already.
    monkeypatch.setitem(sys.modules, "azure_functions_worker", types.ModuleType("azure_functions_worker"))
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "instance-1")
    for name in ("ACRGUARD_API_KEY", "ACRGUARD_API_TOKEN", "ACRGUARD_EVENTS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACRGUARD_STORE", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("ACRGUARD_QUEUE", str(tmp_path / "queue.sqlite"))
    monkeypatch.setenv("ACRGUARD_DB", str(db_path))
    # The registries the sample events name (an ACR, the local distribution registry).
    monkeypatch.setenv("ACRGUARD_REGISTRIES", "myreg.azurecr.io,127.0.0.1:5000")
    clients.close()
    yield tmp_path
    clients.close()


def test_bindings() -> None:
    events = json.loads(FUNCTIONS["acr_events"].get_function_json())["bindings"]
    assert [(b["type"], b["name"]) for b in events] == [("eventGridTrigger", "event")]
    (http_in, _out) = json.loads(FUNCTIONS["registry_notifications"].get_function_json())["bindings"]
    assert (http_in["type"], http_in["route"], http_in["methods"], http_in["authLevel"]) == (
        "httpTrigger",
        "registry-notifications",
        ["POST"],
        "FUNCTION",
    )
    (timer,) = json.loads(FUNCTIONS["rescan"].get_function_json())["bindings"]
    assert (timer["type"], timer["name"], timer["schedule"]) == ("timerTrigger", "timer", "0 0 3 * * *")


def test_function_app_registers_the_blueprints() -> None:
    # In a child process: the app may be indexed only once per process.
    code = "import function_app; print(sorted(f.get_function_name() for f in function_app.app.get_functions()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in ("acr_events", "registry_notifications", "rescan"):
        assert repr(name) in out


def test_event_grid_push_is_queued_once(env: Path) -> None:
    raw = load_event("eventgrid-image-pushed.json")
    handler("acr_events")(grid_event(raw))
    handler("acr_events")(grid_event(raw))  # Event Grid delivers at least once
    with open_queue(env / "queue.sqlite") as queue:
        messages = queue.receive(5)
    assert [m.request.digest for m in messages] == [raw["data"]["target"]["digest"]]
    with open_store(env / "store.sqlite") as store:
        assert store.get_image("myreg.azurecr.io", raw["data"]["target"]["digest"]) is not None


def test_malformed_event_is_dead_lettered_with_its_error(env: Path) -> None:
    raw = copy.deepcopy(load_event("eventgrid-image-pushed.json"))
    del raw["data"]["target"]["digest"]
    handler("acr_events")(grid_event(raw))
    with open_queue(env / "queue.sqlite", EVENT_DEAD_LETTER_QUEUE) as dead:
        (message,) = [json.loads(m.raw) for m in _raw_messages(dead)]
    assert "data.target.digest" in message["error"]
    assert json.loads(message["event"])["id"] == raw["id"]
    with open_queue(env / "queue.sqlite") as queue:
        assert queue.receive(5) == []


def _raw_messages(queue: Any) -> list[Any]:
    # Dead-lettered events are not scan requests: `receive` moves them to the queue's dead letters.
    assert queue.receive(5) == []
    return list(queue.dead_letters())


def test_registry_notifications_and_rescan_timer(env: Path) -> None:
    notify = handler("registry_notifications")
    push = load_event("registry-notification-push-manifest.json")
    pull = load_event("registry-notification-pull-manifest.json")
    pull["events"][0]["timestamp"] = datetime.now(UTC).isoformat()
    for body in (push, load_event("registry-notification-push-blob.json"), pull):
        req = func.HttpRequest("POST", "/api/registry-notifications", headers=NOTIFY, body=json.dumps(body).encode())
        assert notify(req).status_code == 200
    digest = push["events"][0]["target"]["digest"]
    with open_store(env / "store.sqlite") as store:
        assert [k.digest for k in store.recently_pulled(datetime.now(UTC) - timedelta(days=1))] == [digest]
    # Never scanned: the timer queues a full scan instead of re-matching (no inventory stored yet).
    handler("rescan")(TimerRequest(past_due=False))
    with open_queue(env / "queue.sqlite") as queue:
        reasons = sorted(m.request.reason for m in queue.receive(5))
    assert reasons == ["push"]  # the rescan request deduplicated against the pending push


def test_malformed_notification_is_dead_lettered(env: Path) -> None:
    req = func.HttpRequest("POST", "/api/registry-notifications", headers=NOTIFY, body=b"{not json")
    response = handler("registry_notifications")(req)
    assert response.status_code == 200 and json.loads(response.get_body())["dead_lettered"] is True
    with open_queue(env / "queue.sqlite", EVENT_DEAD_LETTER_QUEUE) as dead:
        (letter,) = _raw_messages(dead)
    assert "not JSON" in json.loads(letter.raw)["error"]


def test_cloud_event_through_the_trigger(env: Path) -> None:
    raw = load_event("cloudevent-image-pushed.json")
    event = func.CloudEvent(
        id=raw["id"], source=raw["source"], type=raw["type"], specversion="1.0", data=raw["data"], subject="s"
    )
    handler("acr_events")(event)
    with open_queue(env / "queue.sqlite") as queue:
        (message,) = queue.receive(5)
    assert (message.request.registry, message.request.tag) == ("myreg.azurecr.io", "v2")


def test_chart_event_is_ignored(env: Path) -> None:
    handler("acr_events")(grid_event(load_event("eventgrid-chart-pushed.json")))
    with open_queue(env / "queue.sqlite") as queue:
        assert queue.receive(5) == []
    with open_queue(env / "queue.sqlite", EVENT_DEAD_LETTER_QUEUE) as dead:
        assert _raw_messages(dead) == []
