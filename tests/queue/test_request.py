"""ScanRequest: the message body, and its decoding errors naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from scanner.queue import QueueError, ScanRequest
from tests.queue.support import make_request


def test_round_trip() -> None:
    request = make_request(1, reason="import")
    assert ScanRequest.from_json(request.to_json()) == request
    assert ScanRequest.from_json(request.to_json().encode()) == request
    untagged = ScanRequest("r.io", "a/b", "sha256:" + "0" * 64, None, "manual", datetime(2024, 5, 1, tzinfo=UTC), "id1")
    assert ScanRequest.from_json(untagged.to_json()) == untagged


def test_unknown_fields_are_ignored() -> None:
    # A newer producer may add fields; an older consumer must not dead-letter its messages.
    request = make_request(2)
    data = json.loads(request.to_json()) | {"priority": 3}
    assert ScanRequest.from_json(json.dumps(data)) == request


def test_create_stamps_time_and_id() -> None:
    a, b = make_request(3), make_request(3)
    assert a.request_id != b.request_id
    assert a.requested_at.tzinfo is not None


def test_dedupe_key_is_registry_digest_and_scanner_version() -> None:
    request = make_request(4)
    other_repo = ScanRequest.create("myacr.azurecr.io", "elsewhere", request.digest, reason="rescan")
    assert request.dedupe_key("v1") == other_repo.dedupe_key("v1") == f"myacr.azurecr.io@{request.digest}#v1"
    assert request.dedupe_key("v1") != request.dedupe_key("v2")


def body(**changes: object) -> str:
    data = json.loads(make_request(5).to_json())
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        ("[1, 2]", "body must be a JSON object, not list"),
        (body(registry=...), "field 'registry' is missing"),
        (body(repository=7), "field 'repository' must be a string"),
        (body(registry=""), "field 'registry' must be a non-empty string"),
        (body(digest="latest"), "field 'digest' is not a digest"),
        (body(tag=5), "field 'tag' must be null or a string"),
        (body(tag=""), "field 'tag' must be null or a non-empty string"),
        (body(reason="because"), "field 'reason' must be one of push, import, rescan, manual"),
        (body(requested_at="yesterday"), "field 'requested_at' is not an ISO 8601 time"),
        (body(requested_at="2024-05-01T10:00:00"), "field 'requested_at' must be a timezone-aware time"),
        (body(request_id=...), "field 'request_id' is missing"),
    ],
)
def test_malformed_bodies_name_the_field(text: str | bytes, message: str) -> None:
    with pytest.raises(QueueError, match=message) as caught:
        ScanRequest.from_json(text)
    assert "\n" not in str(caught.value)


def test_constructor_validates_too() -> None:
    with pytest.raises(QueueError, match="field 'digest'"):
        ScanRequest.create("r.io", "a", "sha256")
