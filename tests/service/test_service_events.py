"""Event parsing on the reference samples (tests/fixtures/azure-events, see SOURCES.md)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

import azure.functions as func
import pytest
from service_support import grid_event, load_event

from scanner.model.errors import AcrguardError
from scanner.service.events import EventError, parse_event, parse_notifications

NGINX = "sha256:57a94fc99816c6aa225678b738ac40d85422e75dbb96115f1bb9b6ed77176166"
SAMPLE = "sha256:f1c3bd666119e2b214e8be699b13268206970e55f84a106930b8dca51100ab40"


def test_event_grid_push() -> None:
    event = parse_event(load_event("eventgrid-image-pushed.json"))
    assert (event.kind, event.registry, event.repository, event.digest, event.tag) == (
        "push",
        "myreg.azurecr.io",
        "samples/nginx",
        NGINX,
        "latest",
    )
    assert event.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert event.at == datetime(2021, 9, 8, 6, 37, 45, 662416, tzinfo=UTC)
    assert event.event_id == "c25f5f3b-0a0e-4c8d-9c3a-6b2b1e0c7a11"


def test_event_grid_delete_takes_the_registry_from_the_topic() -> None:
    event = parse_event(load_event("eventgrid-image-deleted.json"))
    assert (event.kind, event.registry, event.repository, event.digest, event.tag) == (
        "delete",
        "myreg.azurecr.io",
        "samples/nginx",
        NGINX,
        None,
    )


def test_chart_events_are_recognised() -> None:
    assert parse_event(load_event("eventgrid-chart-pushed.json")).kind == "chart"


def test_cloud_event_dict_and_object() -> None:
    raw = load_event("cloudevent-image-pushed.json")
    event = parse_event(raw)
    assert (event.kind, event.registry, event.tag, event.event_id) == (
        "push",
        "myreg.azurecr.io",
        "v2",
        "f0e1d2c3-b4a5-4697-8879-6a5b4c3d2e1f",
    )
    obj = func.CloudEvent(
        id=raw["id"],
        source=raw["source"],
        type=raw["type"],
        specversion="1.0",
        data=raw["data"],
        subject=raw["subject"],
    )
    assert parse_event(obj) == event


def test_event_grid_event_object() -> None:
    raw = load_event("eventgrid-image-pushed.json")
    assert parse_event(grid_event(raw)) == parse_event(raw)


@pytest.mark.parametrize(
    ("path", "field"),
    [(("data", "target", "digest"), "data.target.digest"), (("data", "target", "repository"), "repository")],
)
def test_malformed_event_names_the_missing_field(path: tuple[str, ...], field: str) -> None:
    raw = copy.deepcopy(load_event("eventgrid-image-pushed.json"))
    node = raw
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    with pytest.raises(EventError, match=re.escape(field)) as info:
        parse_event(raw)
    assert isinstance(info.value, AcrguardError)


def test_missing_data_and_unknown_type() -> None:
    raw = load_event("eventgrid-image-pushed.json")
    with pytest.raises(EventError, match="'data'"):
        parse_event({k: v for k, v in raw.items() if k != "data"})
    with pytest.raises(EventError, match="unsupported event type"):
        parse_event({**raw, "eventType": "Microsoft.Storage.BlobCreated"})
    no_host = copy.deepcopy(raw)
    del no_host["data"]["request"]
    no_host["topic"] = "/subscriptions/x"
    with pytest.raises(EventError, match=re.escape("data.request.host")):
        parse_event(no_host)


def test_notification_manifest_push() -> None:
    (event,) = parse_notifications(load_event("registry-notification-push-manifest.json"))
    assert (event.kind, event.registry, event.repository, event.digest, event.tag) == (
        "push",
        "127.0.0.1:5000",
        "demo/sample",
        SAMPLE,
        "v1",
    )
    assert event.at == datetime(2026, 11, 24, 14, 24, 41, 310320, tzinfo=UTC)


def test_notification_manifest_get_is_a_pull_by_digest() -> None:
    (event,) = parse_notifications(load_event("registry-notification-pull-manifest.json"))
    assert (event.kind, event.digest, event.tag) == ("pull", SAMPLE, None)


def test_notification_blobs_and_heads_are_ignored() -> None:
    assert parse_notifications(load_event("registry-notification-push-blob.json")) == []
    assert parse_notifications(load_event("registry-notification-pull-blob.json")) == []
    head = copy.deepcopy(load_event("registry-notification-pull-manifest.json"))
    head["events"][0]["request"]["method"] = "HEAD"
    assert parse_notifications(head) == []


def test_malformed_notifications() -> None:
    with pytest.raises(EventError, match="'events'"):
        parse_notifications({"event": []})
    broken = copy.deepcopy(load_event("registry-notification-push-manifest.json"))
    del broken["events"][0]["target"]["digest"]
    with pytest.raises(EventError, match="digest"):
        parse_notifications(broken)


def test_import_event_is_its_own_kind() -> None:
    raw = {**load_event("eventgrid-image-pushed.json"), "eventType": "Acrguard.ImageImported"}
    assert parse_event(raw).kind == "import"
