"""End to end: `acrguard serve` as a real process, notified by a real registry that skopeo pushes to.

push → registry notification → scan queued → queue worker runs the job (fetching from the registry) →
findings through the HTTP API. Also the Event Grid webhook handshake and de-duplication, and SIGTERM.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources

from .stack import (
    EVENT_GRID_HEADERS,
    FUNCTION_KEY,
    VULN,
    Serve,
    alpine_layout,
    queue_rows,
    realparts,
    scan_rows,
    serve_with_registry,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Serve, realparts.Registry]]:
    db = tmp_path / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    with serve_with_registry(tmp_path, db) as (serve, registry):
        yield serve, registry


def _image(serve: Serve, registry: str, digest: str) -> tuple[int, Any]:
    return serve.image(registry, digest)


def test_push_is_scanned_and_served(served: tuple[Serve, realparts.Registry], tmp_path: Path) -> None:
    serve, registry = served
    layout = alpine_layout(tmp_path / "layout")
    started = time.monotonic()
    pushed = realparts.push(registry, f"oci:{layout}:latest", "serve/alpine", "3.10")
    digest = pushed.manifest.digest

    def context() -> str:
        return f"{serve.log_tail()}\n{registry.log_tail()}"

    def scanned() -> Any:
        status, body = _image(serve, registry.host, digest)
        found = status == 200 and any(f["id"] == VULN and f["package"]["name"] == "musl" for f in body["findings"])
        # The findings are stored before the scan record is closed: wait for both.
        return body if found and body["lastScan"]["status"] != "running" else None

    body = wait_for(f"{VULN} in musl", scanned, timeout=120, context=context)
    print(f"\npush-to-findings latency: {time.monotonic() - started:.2f}s (skopeo push included)")
    first_scan = body["lastScan"]
    assert first_scan["status"] == "succeeded"
    queued = serve.workdir / "queue.sqlite"
    # The worker completes the message after storing the scan.
    wait_for("the scan's message completed", lambda: queue_rows(queued, "messages", "scan-requests") == [])

    # The same digest through the Event Grid webhook: recorded, not scanned a second time.
    webhook = serve.url(f"/runtime/webhooks/eventgrid?functionName=acr_events&code={FUNCTION_KEY}")
    validation = [
        {
            "id": "v",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "data": {"validationCode": "code-123", "validationUrl": "https://example.invalid"},
        }
    ]
    handshake = {**EVENT_GRID_HEADERS, "aeg-event-type": "SubscriptionValidation"}
    answer = realparts.http("POST", webhook, headers=handshake, data=json.dumps(validation).encode())
    assert (answer.status, json.loads(answer.body)) == (200, {"validationResponse": "code-123"})
    event = {
        "id": "eg-1",
        "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.ContainerRegistry/registries/local",
        "subject": "serve/alpine:3.10",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": "2026-11-24T16:00:00Z",
        "dataVersion": "2.0",
        "metadataVersion": "1",
        "data": {
            "id": "eg-1",
            "timestamp": "2026-11-24T16:00:00Z",
            "action": "push",
            "target": {
                "mediaType": realparts.OCI_MANIFEST,
                "digest": digest,
                "repository": "serve/alpine",
                "tag": "eg",
            },
            "request": {"id": "r", "host": registry.host, "method": "PUT", "useragent": "test"},
        },
    }
    notified = realparts.http("POST", webhook, headers=EVENT_GRID_HEADERS, data=json.dumps([event]).encode())
    assert notified.status == 200, notified.body
    # The webhook decides before it answers: a second scan would be a queued (or leased) message, or a second
    # scan record once a worker had taken it. Neither is there, so none will start.
    assert queue_rows(queued, "messages", "scan-requests") == []
    assert [r["scan_id"] for r in scan_rows(serve.workdir / "store.sqlite", digest)] == [first_scan["scanId"]]
    status, body = _image(serve, registry.host, digest)
    assert status == 200 and body["lastScan"]["scanId"] == first_scan["scanId"]
    assert "serve/alpine:eg" in body["tags"]

    serve.process.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    assert serve.exit_status("SIGTERM") == 0, serve.log_tail()
    print(f"SIGTERM to exit: {time.monotonic() - stopping:.2f}s")
