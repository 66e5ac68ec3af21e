"""Gate actions: events, publishers against a real local HTTP server, ACR adapter against a recording server
and a real distribution registry (which has no /acr/v1/: the adapter must degrade to one-line errors)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from scanner.image.registry_options import Registry, RegistryAccess, RegistryOptions
from scanner.policy import gate_actions
from scanner.policy.gate_actions import (
    EVENT_TYPE,
    AcrActions,
    EventGridPublisher,
    QuarantineState,
    WebhookPublisher,
    apply_verdicts,
    health_changed_cloud_event,
    health_changed_event,
)
from scanner.policy.gates import Gate, GateError, GateVerdict, When
from scanner.policy.image_context import ImageContext
from scanner.store.records import AssessmentChange
from tests.integration import realparts
from tests.policy.httprecorder import recording_server

DIGEST = "sha256:" + "ab" * 32
IMAGE = ImageContext("myacr.azurecr.io", "team/api", DIGEST, ("1.0", "latest"), None, ("apt",))
CHANGE = AssessmentChange("Healthy", "Unhealthy", added=("CVE-1|deb:libssl3",), removed=("CVE-0|deb:zlib",))
SUMMARY = {"active": 1, "by_severity": {"Critical": 1}}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def no_sleep(_: float) -> None:
    pass


def verdict(name: str, failed: bool, *actions: Any) -> GateVerdict:
    gate = Gate(name, "d", When(any_severity_at_least="High"), tuple(actions))
    return GateVerdict(gate, failed, ("1 finding(s) at least High: CVE-1",) if failed else ())


# ---------------------------------------------------------------------------------------------- events


def test_event_grid_event_shape() -> None:
    event = health_changed_event(IMAGE, CHANGE, summary=SUMMARY, event_id="e1", now=NOW)
    assert event == {
        "id": "e1",
        "subject": f"team/api@{DIGEST}",
        "eventType": "Acrguard.ImageHealthChanged",
        "eventTime": "2026-01-02T03:04:05Z",
        "dataVersion": "1.0",
        "data": {
            "registry": "myacr.azurecr.io",
            "repository": "team/api",
            "digest": DIGEST,
            "tags": ["1.0", "latest"],
            "previousHealth": "Healthy",
            "health": "Unhealthy",
            "summary": SUMMARY,
            "addedFindings": ["CVE-1|deb:libssl3"],
            "removedFindings": ["CVE-0|deb:zlib"],
            "gates": [],
        },
    }
    json.dumps(event)  # serialisable as is


def test_cloud_event_shape() -> None:
    event = health_changed_cloud_event(IMAGE, CHANGE, event_id="e1", now=NOW, source="/acrguard/prod")
    assert {k: v for k, v in event.items() if k != "data"} == {
        "specversion": "1.0",
        "id": "e1",
        "source": "/acrguard/prod",
        "type": EVENT_TYPE,
        "subject": f"team/api@{DIGEST}",
        "time": "2026-01-02T03:04:05Z",
        "datacontenttype": "application/json",
    }
    assert event["data"]["health"] == "Unhealthy" and event["data"]["previousHealth"] == "Healthy"


# ---------------------------------------------------------------------------------------------- publishers


def test_webhook_publisher_posts_the_event_with_headers() -> None:
    event = health_changed_event(IMAGE, CHANGE, event_id="e1", now=NOW)
    with recording_server() as server:
        publisher = WebhookPublisher(f"{server.url}/hook", {"X-Token": "s3cret"}, sleep=no_sleep)
        result = publisher.send(event)
    assert result.ok and result.attempts == 1 and result.status == 200
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-token"] == "s3cret"
    assert request.json() == event


def test_webhook_publisher_sends_cloud_events_structured() -> None:
    event = health_changed_cloud_event(IMAGE, CHANGE)
    with recording_server() as server:
        WebhookPublisher(server.url + "/ce", sleep=no_sleep).publish(event)
    assert server.requests[0].headers["content-type"] == "application/cloudevents+json"
    assert server.requests[0].json() == event


def test_event_grid_publisher_posts_an_array_with_the_key() -> None:
    event = health_changed_event(IMAGE, CHANGE, event_id="e1", now=NOW)
    with recording_server() as server:
        result = EventGridPublisher(f"{server.url}/api/events", "topic-key", sleep=no_sleep).send(event)
    assert result.ok
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/api/events")
    assert request.headers["aeg-sas-key"] == "topic-key"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == [event]


def test_one_publisher_keeps_its_connection_between_events() -> None:
    with recording_server() as server:
        publisher = WebhookPublisher(f"{server.url}/hook", sleep=no_sleep)
        for n in range(3):
            assert publisher.send({"id": f"e{n}"}).ok
    assert [r.json()["id"] for r in server.requests] == ["e0", "e1", "e2"]
    assert len({r.peer for r in server.requests}) == 1


def test_a_redirect_is_not_followed_and_not_retried() -> None:
    with recording_server([(307, {})]) as server:
        result = EventGridPublisher(f"{server.url}/api/events", "topic-key", sleep=no_sleep).send({"id": "x"})
    assert not result.ok and result.attempts == 1 and result.status == 307
    assert len(server.requests) == 1 and "HTTP 307" in result.error


def test_failing_endpoint_is_retried_a_bounded_number_of_times_then_reported() -> None:
    sleeps: list[float] = []
    with recording_server([(503, {"error": "busy"})]) as server:
        publisher = WebhookPublisher(server.url + "/hook", attempts=3, backoff=0.5, sleep=sleeps.append)
        result = publisher.send({"id": "x"})
        assert not result.ok and result.attempts == 3 and result.status == 503
        assert len(server.requests) == 3
        assert sleeps == [0.5, 1.0]
        assert result.error == f"POST {server.url}/hook: HTTP 503 Service Unavailable (after 3 attempts)"
        with pytest.raises(GateError, match=r"^notify: POST .* HTTP 503"):
            publisher.publish({"id": "x"})


def test_transient_failure_then_success() -> None:
    with recording_server([(500, {}), (202, {})]) as server:
        result = EventGridPublisher(server.url, "k", sleep=no_sleep).send({"id": "x"})
    assert result.ok and result.attempts == 2 and result.status == 202


def test_client_error_is_not_retried() -> None:
    with recording_server([(401, {})]) as server:
        result = EventGridPublisher(server.url, "wrong", sleep=no_sleep).send({"id": "x"})
    assert not result.ok and result.attempts == 1 and result.status == 401
    assert len(server.requests) == 1


def test_unreachable_endpoint_is_reported() -> None:
    with recording_server() as server:
        url = server.url
    # The server is stopped: the port refuses connections.
    result = WebhookPublisher(url, attempts=2, sleep=no_sleep, timeout=2).send({"id": "x"})
    assert not result.ok and result.attempts == 2 and result.status is None
    assert result.error.startswith(f"POST {url}: ") and "after 2 attempts" in result.error


# ---------------------------------------------------------------------------------------------- apply_verdicts


class FakeAdapter:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail or set()

    def _call(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        if name in self.fail:
            raise GateError(f"{name}: refused")

    def lock(self, image: ImageContext) -> None:
        self._call("lock")

    def unlock(self, image: ImageContext) -> None:
        self._call("unlock")

    def quarantine(self, image: ImageContext, state: QuarantineState, details: Mapping[str, Any]) -> None:
        self._call("quarantine", (state, dict(details)))

    def publish(self, event: Mapping[str, Any]) -> None:
        self._call("publish", event)


def test_apply_locks_while_any_lock_gate_fails() -> None:
    adapter = FakeAdapter()
    report = apply_verdicts([verdict("a", True, "lock"), verdict("b", False, "lock")], IMAGE, adapter)
    assert adapter.calls == [("lock", None)] and report.done == ["lock"] and report.ok


def test_apply_unlocks_when_every_lock_gate_passes() -> None:
    adapter = FakeAdapter()
    apply_verdicts([verdict("a", False, "lock"), verdict("n", True, "notify")], IMAGE, adapter)
    assert adapter.calls == [("unlock", None)]


def test_apply_quarantine_details_and_notify() -> None:
    adapter = FakeAdapter()
    verdicts = [verdict("q", True, "quarantine", "notify"), verdict("p", False, "quarantine")]
    report = apply_verdicts(verdicts, IMAGE, adapter, CHANGE, summary=SUMMARY)
    assert report.done == ["quarantine Failed", "notify"]
    name, (state, details) = adapter.calls[0]
    assert (name, state) == ("quarantine", "Failed")
    assert details == {
        "scanner": "acrguard",
        "result": "Failed",
        "gates": [{"name": "q", "reasons": ["1 finding(s) at least High: CVE-1"]}],
    }
    event = adapter.calls[1][1]
    assert event["eventType"] == EVENT_TYPE and event["data"]["summary"] == SUMMARY
    assert [g["name"] for g in event["data"]["gates"]] == ["q", "p"]


def test_apply_quarantine_passed_and_no_notify_without_a_change() -> None:
    adapter = FakeAdapter()
    unchanged = AssessmentChange("Healthy", "Healthy")
    apply_verdicts([verdict("q", False, "quarantine", "notify")], IMAGE, adapter, unchanged)
    assert adapter.calls == [("quarantine", ("Passed", {"scanner": "acrguard", "result": "Passed", "gates": []}))]


def test_apply_reports_failures_and_never_raises() -> None:
    adapter = FakeAdapter(fail={"lock", "publish"})
    verdicts = [verdict("a", True, "lock", "quarantine", "notify")]
    report = apply_verdicts(verdicts, IMAGE, adapter, CHANGE)
    assert not report.ok
    assert report.errors == ["lock: refused", "publish: refused"]
    assert report.done == ["quarantine Failed"]


def test_apply_contains_unexpected_adapter_errors() -> None:
    class Broken(FakeAdapter):
        def lock(self, image: ImageContext) -> None:
            raise RuntimeError("boom\nsecond line")

    report = apply_verdicts([verdict("a", True, "lock")], IMAGE, Broken())
    assert report.errors == ["lock: RuntimeError: boom second line"]


def test_no_verdicts_no_actions() -> None:
    adapter = FakeAdapter()
    assert apply_verdicts([], IMAGE, adapter, CHANGE).done == [] and adapter.calls == []


# ---------------------------------------------------------------------------------------------- ACR adapter


def options(host: str) -> RegistryOptions:
    # The one registry of the test, anonymous: credentials of the machine running the tests must not leak in.
    return RegistryOptions(RegistryAccess((Registry(host, "anonymous", insecure=True),)), retries=0)


def manifest_answer(host: str, can_read: bool) -> dict[str, Any]:
    attributes = {"deleteEnabled": True, "writeEnabled": True, "readEnabled": can_read, "listEnabled": True}
    return {
        "registry": host,
        "imageName": "team/api",
        "manifest": {"digest": DIGEST, "changeableAttributes": attributes},
    }


def image_on(host: str) -> ImageContext:
    return ImageContext(host, "team/api", DIGEST, ("1.0",), None, ())


def test_acr_lock_and_unlock_request_shape(tmp_path: Path) -> None:
    with recording_server() as server:
        server.answers = [(200, manifest_answer(server.host, False)), (200, manifest_answer(server.host, True))]
        actions = AcrActions(server.host, options(server.host))
        try:
            actions.lock(image_on(server.host))
            actions.unlock(image_on(server.host))
        finally:
            actions.close()
    lock, unlock = server.requests
    # The SDK percent-encodes the repository and digest (ACR decodes them) and adds its api-version.
    for request, can_read in ((lock, False), (unlock, True)):
        path, _, query = request.path.partition("?")
        assert (request.method, unquote(path)) == ("PATCH", f"/acr/v1/team/api/_manifests/{DIGEST}")
        assert query.startswith("api-version=")
        assert request.json() == {"readEnabled": can_read}


def test_acr_quarantine_request_shape(tmp_path: Path) -> None:
    details = {"scanner": "acrguard", "result": "Failed", "gates": [{"name": "g", "reasons": ["r"]}]}
    with recording_server([(200, {})]) as server:
        actions = AcrActions(server.host, options(server.host))
        try:
            actions.quarantine(image_on(server.host), "Failed", details)
        finally:
            actions.close()
    [request] = server.requests
    assert (request.method, request.path) == ("PATCH", f"/acr/v1/team/api/_manifests/{DIGEST}")
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert body["quarantineState"] == "Failed"
    # quarantineDetails is a JSON string, not an object.
    assert isinstance(body["quarantineDetails"], str) and json.loads(body["quarantineDetails"]) == details


def test_acr_quarantine_http_error_is_one_line(tmp_path: Path) -> None:
    with recording_server([(403, {"errors": [{"code": "DENIED", "message": "no\nwrite"}]})]) as server:
        actions = AcrActions(server.host, options(server.host))
        with pytest.raises(GateError) as err:
            actions.quarantine(image_on(server.host), "Passed", {})
        actions.close()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{server.host}/team/api@{DIGEST}: quarantine Passed: PATCH /acr/v1/")
    assert "403" in message


def test_acr_publish_without_publisher_is_reported(tmp_path: Path) -> None:
    with recording_server() as server:
        actions = AcrActions(server.host, options(server.host))
        with pytest.raises(GateError, match="no publisher configured"):
            actions.publish({"id": "x"})
        actions.close()


def test_acr_publish_goes_to_the_publisher(tmp_path: Path) -> None:
    with recording_server() as hook, recording_server() as registry:
        actions = AcrActions(registry.host, options(registry.host), WebhookPublisher(hook.url, sleep=no_sleep))
        report = apply_verdicts([verdict("n", True, "notify")], image_on(registry.host), actions, CHANGE)
        actions.close()
    assert report.done == ["notify"] and registry.requests == []
    assert hook.requests[0].json()["data"]["health"] == "Unhealthy"


@pytest.fixture(scope="module")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[realparts.Registry]:
    try:
        running = realparts.start_registry(tmp_path_factory.mktemp("gate-registry"))
    except realparts.RealPartsError as err:
        pytest.fail(f"real registry: {err}", pytrace=False)
    try:
        yield running
    finally:
        running.stop()


def test_plain_registry_lock_degrades_to_one_line_gate_error(
    plain_registry: realparts.Registry, tmp_path: Path
) -> None:
    actions = AcrActions(plain_registry.host, options(plain_registry.host))
    image = image_on(plain_registry.host)
    try:
        with pytest.raises(GateError) as err:
            actions.lock(image)
        message = str(err.value)
        assert message == (
            f"{plain_registry.host}/team/api@{DIGEST}: lock: update_manifest_properties(can_read=False) is an "
            "ACR-only /acr/v1/ call and the registry answered 404 (not an Azure Container Registry, or the "
            "manifest is gone)"
        )
        with pytest.raises(GateError, match=r"quarantine Failed: PATCH /acr/v1/team/api/_manifests/.* ACR-only"):
            actions.quarantine(image, "Failed", {})
        # Through apply_verdicts the scan sees a report, not an exception.
        report = apply_verdicts([verdict("g", True, "lock", "quarantine")], image, actions)
        assert report.done == [] and len(report.errors) == 2
        assert all("ACR-only /acr/v1/ call" in e and "\n" not in e for e in report.errors)
    finally:
        actions.close()


def test_event_grid_publisher_sends_many_events_as_arrays_within_the_topic_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gate_actions, "EVENTGRID_BATCH_BYTES", 2000)
    events = [health_changed_event(IMAGE, CHANGE, event_id=f"e{n}", now=NOW) for n in range(12)]
    big = {"id": "big", "data": "x" * 5000}  # larger than a batch alone: sent alone, the topic judges it
    with recording_server() as server:
        results = EventGridPublisher(f"{server.url}/api/events", "k", sleep=no_sleep).send_many([*events, big])
    assert len(results) == 13 and all(r.ok for r in results)
    arrays = [request.json() for request in server.requests]
    assert [event for array in arrays for event in array] == [*events, big]
    assert len(arrays) > 2 and arrays[-1] == [big]
    assert all(len(request.body) <= 2000 for request in server.requests[:-1])
    assert len({r.peer for r in server.requests}) == 1  # one kept-alive connection


def test_a_failed_array_fails_each_of_its_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate_actions, "EVENTGRID_BATCH_BYTES", 260)
    events = [{"id": f"e{n}", "data": "y" * 100} for n in range(6)]
    with recording_server([(200, {}), (413, {}), (200, {})]) as server:
        results = EventGridPublisher(server.url, "k", sleep=no_sleep).send_many(events)
    sizes = [len(request.json()) for request in server.requests]
    assert sum(sizes) == 6 and len(sizes) == 3
    assert [r.ok for r in results] == [True] * sizes[0] + [False] * sizes[1] + [True] * sizes[2]
    assert "HTTP 413" in results[sizes[0]].error


def test_webhook_publisher_sends_many_one_post_each() -> None:
    with recording_server() as server:
        results = WebhookPublisher(f"{server.url}/hook", sleep=no_sleep).send_many([{"id": "a"}, {"id": "b"}])
    assert [r.ok for r in results] == [True, True]
    assert [r.json() for r in server.requests] == [{"id": "a"}, {"id": "b"}]


def test_the_environment_s_proxy_still_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy settings are read once per connection, not per request: still read, and still used."""
    with recording_server() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        publisher = WebhookPublisher("http://receiver.example.invalid/hook", attempts=1, sleep=no_sleep)
        assert publisher.send({"id": "p1"}).ok and publisher.send({"id": "p2"}).ok
    assert [r.path for r in proxy.requests] == ["http://receiver.example.invalid/hook"] * 2
    assert [r.json()["id"] for r in proxy.requests] == ["p1", "p2"]
