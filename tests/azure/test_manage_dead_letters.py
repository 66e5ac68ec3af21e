"""Dead letters over HTTP: the event dead letters (malformed events, kept with their error) and the scan
queue's (requests that failed every attempt), listed with error and time; scan dead letters requeued."""

from __future__ import annotations

import json

import pytest

from scanner.azure.events import dead_letter
from scanner.queue import ScanRequest
from scanner.service.config import clients
from tests.azure.manage_support import (
    DIGEST,
    REG,
    REPO,
    call,
    validate,
)
from tests.queue.azurite_server import running_azurite

pytestmark = pytest.mark.usefixtures("manage_env")


def dead_scan(error: str) -> ScanRequest:
    """A request that failed on every delivery, as the worker fails it, until the queue dead-letters it."""
    queue = clients.queue()
    request = ScanRequest.create(REG, REPO, DIGEST, tag="1.0", reason="push")
    queue.send(request)
    for _ in range(queue.max_attempts):
        (message,) = queue.receive(1, 30)
        if queue.fail(message, error, 0):
            return request
    raise AssertionError("the queue never dead-lettered the request")


def test_scan_and_event_dead_letters_listed_and_scan_ones_requeued() -> None:
    dead_letter('{"eventType": "Microsoft.ContainerRegistry.ImagePushed"}', "event: field 'data' is missing")
    request = dead_scan("fetch: contoso.azurecr.io/app/alpine: cannot reach the registry")
    status, listed = call("list_dead_letters")
    assert status == 200
    validate("DeadLetterList", listed)
    event, scan = listed["value"]  # oldest first
    assert (event["kind"], event["error"]) == ("event", "event: field 'data' is missing")
    assert event["body"] == {"eventType": "Microsoft.ContainerRegistry.ImagePushed"} and event["deadAt"]
    assert (scan["kind"], scan["error"], scan["attempts"]) == (
        "scan",
        "fetch: contoso.azurecr.io/app/alpine: cannot reach the registry",
        clients.queue().max_attempts,
    )
    assert scan["body"]["digest"] == DIGEST and scan["body"]["request_id"] == request.request_id
    assert call("list_dead_letters")[1] == listed  # listing twice changes nothing

    status, requeued = call("requeue_dead_letter", route={"id": scan["id"]})
    assert (status, requeued["requeued"]) == (202, scan["id"]), requeued
    validate("Requeued", requeued)
    (message,) = clients.queue().receive(1, 30)
    assert message.request == request and message.dequeue_count == 1  # a fresh message, all attempts again
    assert [d["kind"] for d in call("list_dead_letters")[1]["value"]] == ["event"]

    status, answer = call("requeue_dead_letter", route={"id": scan["id"]})
    assert (status, answer["error"]["message"]) == (404, f"no scan dead letter '{scan['id']}'")
    status, answer = call("requeue_dead_letter", route={"id": event["id"]})
    assert status == 409 and answer["error"]["message"].endswith("is an event nobody could read: resend the event")


def test_no_dead_letters() -> None:
    assert call("list_dead_letters") == (200, {"value": [], "dropped": {"event": 0, "scan": 0}})


def test_event_dead_letters_on_azure_storage_queues(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Azurite: more event dead letters than one Azure receive returns (32), all listed; a scan dead
    letter requeued through the Azure adapter."""
    with running_azurite(tmp_path_factory.mktemp("manage-azurite")) as connection_string:
        monkeypatch.setenv("ACRGUARD_QUEUE", connection_string)
        clients.close()
        for n in range(40):
            dead_letter(json.dumps({"n": n}), f"event {n}: field 'data' is missing")
        request = dead_scan("fetch: registry down")
        letters = call("list_dead_letters")[1]["value"]
        events = [d for d in letters if d["kind"] == "event"]
        assert sorted(d["body"]["n"] for d in events) == list(range(40))
        assert {d["error"] for d in events} == {f"event {n}: field 'data' is missing" for n in range(40)}
        (scan,) = [d for d in letters if d["kind"] == "scan"]
        assert (scan["error"], scan["body"]["request_id"]) == ("fetch: registry down", request.request_id)
        assert call("requeue_dead_letter", route={"id": scan["id"]})[0] == 202
        (message,) = clients.queue().receive(1, 30)
        assert message.request == request
        assert len(call("list_dead_letters")[1]["value"]) == 40
        clients.close()
