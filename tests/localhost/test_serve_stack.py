"""`acrguard serve` on the cloud components: the bubblewrap sandbox, a real PostgreSQL store and Azure Storage
queues (a real Azurite), notified by a real registry that skopeo pushes the sample image to. Also what the
uvicorn front answers on the wire: the Event Grid handshakes, keep-alive, 413, 405 and 404, and SIGINT.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.localhost.serve import MAX_BODY
from scanner.report.subassessments import QUALYS_KEY
from scanner.store import open_store
from scanner.vulndb.osv_import import import_sources
from tests.queue.azurite_server import running_azurite
from tests.store.pg_server import running_postgres

from .stack import FUNCTION_KEY, HEADERS, Serve, realparts, serve_with_registry, start_serve, wait_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "alpine-3.10-app.tar"
WEBHOOK = "/runtime/webhooks/eventgrid?functionName=acr_events"


@dataclass
class Stack:
    serve: Serve
    registry: realparts.Registry
    store_url: str
    queue: str  # Azurite's connection string


@pytest.fixture(scope="module")
def vulndb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vulndb") / "alpine.sqlite"
    import_sources(path, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, vulndb: Path) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("stack")
    with running_postgres() as postgres, running_azurite(tmp_path_factory.mktemp("azurite")) as azurite:
        store_url = postgres.fresh_url()
        with serve_with_registry(work, vulndb, runner="bubblewrap", store=store_url, queue=azurite) as (serve, reg):
            yield Stack(serve, reg, store_url, azurite)


def test_push_is_scanned_in_the_sandbox_into_postgres_through_azurite(stack: Stack) -> None:
    serve, registry = stack.serve, stack.registry
    pushed = realparts.push(registry, f"docker-archive:{SAMPLE}", "samples/alpine-app", "3.10")
    digest = pushed.manifest.digest

    def scanned() -> Any:
        status, body = serve.image(registry.host, digest)
        return body if status == 200 and (body.get("lastScan") or {}).get("status") == "succeeded" else None

    image = wait_for("the pushed sample scanned", scanned, timeout=90, context=serve.log_tail)
    found = {(f["id"], f["package"]["name"]) for f in image["findings"]}
    assert {("ALPINE-CVE-2019-14697", "musl"), ("ALPINE-CVE-2019-1547", "libssl1.1")} <= found
    assert image["health"] == "Unhealthy" and "samples/alpine-app:3.10" in image["tags"]

    # The findings are PostgreSQL's: the same image read straight from the store serve was given.
    with open_store(stack.store_url) as store:
        stored = store.get_image(registry.host, digest)
        assert stored is not None
        assert {f.finding.id for f in stored.findings} == {f["id"] for f in image["findings"]}
    # The scan went through Azure Storage queues: the scan queue exists in Azurite, and it is empty.
    from azure.storage.queue import QueueServiceClient

    with QueueServiceClient.from_connection_string(stack.queue) as service:
        names = [q.name for q in service.list_queues()]
        assert "scan-requests" in names
        assert service.get_queue_client("scan-requests").get_queue_properties().approximate_message_count == 0

    # The lookups over uvicorn: a CVE's images and the Azure-shaped sub-assessments of the registry.
    status, by_cve = serve.get("/api/vulnerabilities/CVE-2019-14697/images")
    assert (
        status == 200
        and {"registry": registry.host, "repository": "samples/alpine-app", "digest": digest} in (by_cve["value"])
    )
    sub = (
        f"/api/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/{registry.host}"
        f"/providers/Microsoft.Security/assessments/{QUALYS_KEY}/subAssessments"
    )
    status, rows = serve.get(sub)
    assert status == 200 and len(rows["value"]) == len(image["findings"])
    assert {r["properties"]["id"] for r in rows["value"]} >= {"CVE-2019-14697"}  # the CVE id, as Microsoft's rows


def test_event_grid_handshakes_over_uvicorn(stack: Stack) -> None:
    serve = stack.serve
    validation = [
        {
            "id": "v",
            "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.ContainerRegistry/registries/r",
            "subject": "",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2026-11-24T16:00:00Z",
            "metadataVersion": "1",
            "dataVersion": "2",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x.invalid"},
        }
    ]
    answer = realparts.http(
        "POST",
        serve.url(f"{WEBHOOK}&code={FUNCTION_KEY}"),
        headers={"aeg-event-type": "SubscriptionValidation", "Content-Type": "application/json"},
        data=json.dumps(validation).encode(),
    )
    assert answer.status == 200
    assert json.loads(answer.body) == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}

    # CloudEvents 1.0 abuse protection: OPTIONS with WebHook-Request-Origin.
    options = realparts.http(
        "OPTIONS",
        serve.url(f"{WEBHOOK}&code={FUNCTION_KEY}"),
        headers={"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"},
    )
    assert options.status == 200
    assert options.headers["webhook-allowed-origin"] == "eventgrid.azure.net"

    wrong_key = realparts.http("OPTIONS", serve.url(f"{WEBHOOK}&code=wrong"), headers={"WebHook-Request-Origin": "o"})
    assert wrong_key.status == 401


def test_405_and_404_as_the_host_answers(stack: Stack) -> None:
    serve = stack.serve
    not_allowed = realparts.http("POST", serve.url("/api/health"), data=b"{}")
    assert (not_allowed.status, not_allowed.headers["allow"]) == (405, "GET")
    webhook_get = realparts.http("GET", serve.url(f"{WEBHOOK}&code={FUNCTION_KEY}"))
    assert (webhook_get.status, webhook_get.headers["allow"]) == (405, "OPTIONS, POST")
    for path in ("/api/no-such-function", "/elsewhere"):
        missing = realparts.http("GET", serve.url(path), headers=HEADERS)
        assert missing.status == 404 and path in json.loads(missing.body)["error"]["message"]


def test_oversized_body_is_413_and_the_connection_closed(stack: Stack) -> None:
    with socket.create_connection(("127.0.0.1", stack.serve.port), timeout=10) as sock:
        # Declared one byte over the bound; only the start of the body is sent. The answer must not wait for the
        # rest: the length alone decides.
        sock.sendall(
            b"POST /api/registry-notifications?code=" + FUNCTION_KEY.encode() + b" HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(MAX_BODY + 1).encode() + b"\r\n\r\n" + b"{" * 1024
        )
        received = b""
        while chunk := sock.recv(65536):  # ends when the server closes the connection
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), received[:200]
    assert b"connection: close" in head.lower()
    assert f"body larger than {MAX_BODY} bytes".encode() in body


def test_keep_alive_serves_several_requests_on_one_connection(stack: Stack) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", stack.serve.port, timeout=10)
    try:
        peers = set()
        for _ in range(3):
            connection.request("GET", "/api/images", headers=HEADERS)
            response = connection.getresponse()
            assert response.status == 200 and "value" in json.loads(response.read())
            assert connection.sock is not None
            peers.add(connection.sock.getsockname())
        assert len(peers) == 1  # one socket throughout: the connection was kept alive
    finally:
        connection.close()


def test_sigint_stops_http_worker_and_timers(tmp_path: Path, vulndb: Path) -> None:
    serve = start_serve(tmp_path, db=vulndb, extra_args=("--workers", "2"))
    try:
        # An idle keep-alive connection must not hold the shutdown up.
        idle = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=10)
        idle.request("GET", "/api/health")
        assert idle.getresponse().read()
        serve.process.send_signal(signal.SIGINT)
        assert serve.exit_status("SIGINT") == 0, serve.log_tail()
        log = serve.log_path.read_text()
        assert "Traceback" not in log
        assert "serve: stopped" in log
        # Held up, uvicorn would have waited out its graceful-shutdown timeout and said so.
        assert "timeout graceful shutdown exceeded" not in log
        idle.close()
    finally:
        serve.stop()


def test_a_taken_port_is_a_one_line_error(tmp_path: Path, vulndb: Path) -> None:
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                *(sys.executable, "-m", "scanner", "serve", "--port", str(port), "--runner", "none"),
                *("--db", str(vulndb), "--store", str(tmp_path / "s.sqlite"), "--queue", str(tmp_path / "q.sqlite")),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"acrguard: 127.0.0.1:{port} is already in use by another process; choose another --port"
    )
