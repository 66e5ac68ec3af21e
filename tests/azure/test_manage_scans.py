"""Manual scan requests and explicit import notifications through the app index, on real adapters; tags are
resolved against a real registry (Debian's docker-registry, the image pushed with skopeo)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scanner.queue import ScanRequest
from scanner.service.config import clients
from tests.azure.manage_support import (
    ARCHIVE,
    DIGEST,
    OTHER,
    REG,
    REPO,
    call,
    drain,
    validate,
)
from tests.integration import realparts

pytestmark = pytest.mark.usefixtures("manage_env")

PUSHED_REPO, PUSHED_TAG = "team/alpine", "3.10"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[realparts.Registry, realparts.Pushed]]:
    """A real plain-HTTP registry holding the fixture image under team/alpine:3.10."""
    try:
        running = realparts.start_registry(tmp_path_factory.mktemp("manage-registry"))
    except realparts.RealPartsError as err:
        pytest.fail(f"real registry: {err}", pytrace=False)
    try:
        pushed = realparts.push(running, f"docker-archive:{ARCHIVE}", PUSHED_REPO, PUSHED_TAG)
        yield running, pushed
    finally:
        running.stop()


def queued_requests() -> list[ScanRequest]:
    """Every pending request, leased briefly (a test reads the queue as the worker would)."""
    return [m.request for m in clients.queue().receive(32, 1)]


def scan(body: dict[str, Any]) -> tuple[int, Any]:
    status, answer = call("create_scan", body)
    if status in (200, 202):
        validate("ScanOutcome", answer)
    return status, answer


# --- manual scans by digest ---------------------------------------------------------------------------------
def test_manual_scan_by_digest_queues_once_then_current_then_forced() -> None:
    body = {"registry": REG.upper(), "repository": REPO, "digest": DIGEST}
    status, answer = scan(body)
    assert status == 202, answer
    assert (answer["status"], answer["reason"], answer["registry"], answer["digest"]) == (
        "queued",
        "manual",
        REG,
        DIGEST,
    )
    status, answer = scan(body)
    assert (status, answer["status"]) == (200, "pending")
    detail = clients.store().get_image(REG, DIGEST)
    assert detail is not None and [r.key.repository for r in detail.repositories] == [REPO]

    assert drain().processed == 1
    detail = clients.store().get_image(REG, DIGEST)
    assert detail is not None and detail.last_scan is not None and detail.last_scan.trigger == "manual"
    status, answer = scan(body)
    assert (status, answer["status"]) == (200, "current")
    assert queued_requests() == []

    status, answer = scan({**body, "force": True})
    assert (status, answer["status"]) == (202, "queued")
    (request,) = queued_requests()
    assert (request.registry, request.repository, request.digest, request.reason) == (REG, REPO, DIGEST, "manual")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"repository": REPO, "digest": DIGEST}, "scan request: field 'registry' is missing"),
        ({"registry": REG, "repository": REPO}, "scan request: field 'digest': give either 'digest' or 'tag'"),
        (
            {"registry": REG, "repository": REPO, "digest": DIGEST, "tag": "x"},
            "scan request: field 'digest': give either",
        ),
        ({"registry": REG, "repository": REPO, "digest": "sha256:12"}, "scan request: field 'digest': invalid digest"),
        ({"registry": REG, "repository": REPO, "tag": "bad tag"}, "scan request: field 'tag': invalid tag"),
        ({"registry": REG, "repository": "Team/App", "tag": "1"}, "scan request: field 'repository': invalid"),
        ({"registry": "contoso", "repository": REPO, "tag": "1"}, "scan request: field 'registry': 'contoso' is not"),
        ({"registry": REG, "repository": 7, "tag": "1"}, "scan request: field 'repository' must be a non-empty string"),
        ({"registry": REG, "repository": REPO, "tag": "1", "force": "yes"}, "scan request: field 'force' must be"),
        ({"registry": REG, "repository": REPO, "tags": "1"}, "scan request: field 'tags': unknown field; did you mean"),
        (["not", "an", "object"], "scan request: expected a JSON object, got a list"),
    ],
)
def test_bad_scan_request_is_400_naming_the_field(body: Any, message: str) -> None:
    status, answer = call("create_scan", body)
    assert status == 400, answer
    assert answer["error"]["message"].startswith(message), answer
    assert queued_requests() == []


def test_scan_request_that_is_not_json_is_400() -> None:
    status, answer = call("create_scan", raw=b"{registry")
    assert status == 400 and answer["error"]["message"].startswith("scan request: body is not JSON")


# --- manual scans by tag, against a real registry -------------------------------------------------------------
def test_manual_scan_by_tag_resolves_the_digest_on_a_real_registry(
    registry: tuple[realparts.Registry, realparts.Pushed], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, pushed = registry
    monkeypatch.setenv("ACRGUARD_INSECURE_REGISTRIES", f"other.example, {running.host}")
    status, answer = scan({"registry": running.host, "repository": PUSHED_REPO, "tag": PUSHED_TAG})
    assert status == 202, answer
    assert (answer["digest"], answer["tag"]) == (pushed.digest, PUSHED_TAG)
    (request,) = queued_requests()
    assert (request.registry, request.repository, request.digest, request.tag, request.reason) == (
        running.host,
        PUSHED_REPO,
        pushed.digest,
        PUSHED_TAG,
        "manual",
    )
    detail = clients.store().get_image(running.host, pushed.digest)
    assert detail is not None
    assert [(t.repository, t.tag, t.current) for t in detail.tag_history] == [(PUSHED_REPO, PUSHED_TAG, True)]
    assert detail.repositories[0].media_type == pushed.manifest.media_type


def test_unknown_tag_is_404_naming_registry_and_reference(
    registry: tuple[realparts.Registry, realparts.Pushed], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, _ = registry
    monkeypatch.setenv("ACRGUARD_INSECURE_REGISTRIES", running.host)
    status, answer = call("create_scan", {"registry": running.host, "repository": PUSHED_REPO, "tag": "nope"})
    assert status == 404, answer
    message = answer["error"]["message"]
    assert message.startswith(f"cannot resolve {running.host}/{PUSHED_REPO}:nope: ") and "\n" not in message
    assert queued_requests() == [] and clients.store().list_images().items == ()


def test_registry_down_is_502_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    host = f"127.0.0.1:{realparts.closed_port()}"
    monkeypatch.setenv("ACRGUARD_INSECURE_REGISTRIES", host)
    status, answer = call("create_scan", {"registry": host, "repository": PUSHED_REPO, "tag": PUSHED_TAG})
    assert status == 502, answer
    assert answer["error"]["message"].startswith(f"cannot resolve {host}/{PUSHED_REPO}:{PUSHED_TAG}: ")
    assert "cannot reach the registry" in answer["error"]["message"]
    assert queued_requests() == []


def test_plain_http_registry_not_listed_insecure_is_refused(
    registry: tuple[realparts.Registry, realparts.Pushed], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, _ = registry  # allowed, but not in ACRGUARD_INSECURE_REGISTRIES: HTTPS is attempted and fails
    monkeypatch.setenv("ACRGUARD_REGISTRIES", f"{REG},{running.host}")
    status, answer = call("create_scan", {"registry": running.host, "repository": PUSHED_REPO, "tag": PUSHED_TAG})
    assert status == 502, answer
    assert answer["error"]["message"].startswith(f"cannot resolve {running.host}/{PUSHED_REPO}:{PUSHED_TAG}: ")


# --- import notifications -------------------------------------------------------------------------------------
def imported(body: Any) -> tuple[int, Any]:
    status, answer = call("import_notifications", body)
    validate("ImportReport", answer)
    return status, answer


def test_import_queues_one_scan_and_a_duplicate_none() -> None:
    note = {"registry": REG, "repository": REPO, "digest": DIGEST, "tag": "3.10", "timestamp": "2026-01-02T03:04:05Z"}
    status, answer = imported(note)
    assert (status, answer["queued"], answer["results"]) == (
        202,
        1,
        [{"index": 0, "status": "queued", "digest": DIGEST}],
    )
    status, answer = imported([note])  # pending: the same digest is not queued twice
    assert (status, answer["queued"], answer["results"][0]["status"]) == (200, 0, "unchanged")
    detail = clients.store().get_image(REG, DIGEST)
    assert detail is not None and detail.repositories[0].first_push is not None
    assert detail.repositories[0].first_push.isoformat() == "2026-01-02T03:04:05+00:00"
    seen: list[ScanRequest] = []
    assert drain(seen=seen).processed == 1
    assert [(r.reason, r.registry, r.repository, r.digest, r.tag) for r in seen] == [
        ("import", REG, REPO, DIGEST, "3.10")
    ]
    status, answer = imported({**note, "tag": "latest"})  # already scanned: the tag is attached, no new scan
    assert (status, answer["queued"]) == (200, 0)
    detail = clients.store().get_image(REG, DIGEST)
    assert detail is not None and detail.repositories[0].tags == ("3.10", "latest")


def test_malformed_items_are_dead_lettered_and_the_good_ones_processed() -> None:
    good = {"registry": REG, "repository": REPO, "digest": OTHER}
    bad = {"registry": REG, "repository": REPO}
    worse = {"registry": REG, "repository": REPO, "digest": DIGEST, "timestamp": "2026-01-02T03:04:05"}
    status, answer = imported([bad, good, worse])
    assert status == 202, answer
    assert (answer["accepted"], answer["queued"], answer["deadLettered"]) == (1, 1, 2)
    assert answer["results"] == [
        {"index": 0, "status": "dead-lettered", "error": "import notification [0]: field 'digest' is missing"},
        {"index": 1, "status": "queued", "digest": OTHER},
        {"index": 2, "status": "dead-lettered", "error": "import notification [2]: field 'timestamp' has no time zone"},
    ]
    assert [r.digest for r in queued_requests()] == [OTHER]
    status, letters = call("list_dead_letters")
    assert status == 200
    assert [(d["kind"], d["error"], d["body"]) for d in letters["value"]] == [
        ("event", "import notification [0]: field 'digest' is missing", bad),
        ("event", "import notification [2]: field 'timestamp' has no time zone", worse),
    ]


def test_all_bad_is_400_and_nothing_lost() -> None:
    status, answer = imported({"registry": "nohost", "repository": REPO, "digest": DIGEST})
    assert (status, answer["deadLettered"]) == (400, 1)
    assert answer["results"][0]["error"].startswith("import notification [0]: field 'registry': 'nohost' is not")
    status, answer = call("import_notifications", raw=b"[{]")
    assert status == 400 and answer["error"]["message"].startswith("import notifications: body is not JSON")
    letters = call("list_dead_letters")[1]["value"]
    assert [d["body"] for d in letters] == [{"registry": "nohost", "repository": REPO, "digest": DIGEST}, "[{]"]
    assert queued_requests() == []
    status, answer = call("import_notifications", [])
    assert status == 400 and answer["error"]["message"] == "import notifications: the list is empty"
