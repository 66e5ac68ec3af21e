"""End to end: `acrguard serve` as a real process, notified by a real registry that skopeo pushes to.

push → registry notification → scan queued → queue worker runs the job (fetching from the registry) →
findings through the HTTP API. Also the Event Grid webhook handshake and de-duplication, and SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # tests/ocibuild.py
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # tests/integration/realparts.py

import ocibuild  # noqa: E402
import realparts  # noqa: E402

from scanner.feeds.osv_import import import_sources  # noqa: E402

FUNCTION_KEY = "serve-function-key"
API_KEY = "serve-api-key"
VULN = "ALPINE-CVE-2019-14697"
APK_DB = b"P:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n\n"
NOTIFICATIONS = """\
notifications:
  events:
    includereferences: true
  endpoints:
    - name: acrguard-serve
      url: http://127.0.0.1:{port}/api/registry-notifications?code={key}
      timeout: 2s
      threshold: 3
      backoff: 1s
"""


def start_notifying_registry(workdir: Path, serve_port: int) -> realparts.Registry:
    """`realparts.start_registry` with a `notifications:` section pointing at the serve process."""
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    host = f"127.0.0.1:{realparts.free_port()}"
    config = workdir / "config.yml"
    config.write_text(
        realparts.REGISTRY_CONFIG.format(root=storage, addr=host)
        + NOTIFICATIONS.format(port=serve_port, key=FUNCTION_KEY)
    )
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [realparts.registry_binary(), "serve", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    registry = realparts.Registry(host, storage, config, log_path, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if realparts.http("GET", registry.url("/v2/"), timeout=2).status == 200:
                return registry
        except OSError:
            pass
        time.sleep(0.05)
    registry.stop()
    raise AssertionError(f"registry did not start: {registry.log_tail()}")


def alpine_layout(root: Path) -> Path:
    layer = ocibuild.layer_tar(
        [
            ocibuild.Entry("etc/alpine-release", b"3.10.1\n"),
            ocibuild.Entry("etc/os-release", b'ID=alpine\nVERSION_ID=3.10.1\nPRETTY_NAME="Alpine Linux v3.10"\n'),
            ocibuild.Entry("lib/apk/db/installed", APK_DB),
        ]
    )
    return ocibuild.write_layout(root, [ocibuild.Image([ocibuild.Layer(layer)])])


class Serve:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process, self.port, self.log_path = process, port, log_path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Serve, realparts.Registry]]:
    db = tmp_path / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    port = realparts.free_port()
    registry = start_notifying_registry(tmp_path / "registry", port)
    env = {**os.environ, "ACRGUARD_FUNCTION_KEY": FUNCTION_KEY, "ACRGUARD_API_KEY": API_KEY}
    args = [
        *(sys.executable, "-m", "scanner", "serve", "--port", str(port), "--runner", "none"),
        *("--store", str(tmp_path / "store.sqlite"), "--queue", str(tmp_path / "queue.sqlite"), "--db", str(db)),
        *("--insecure-registries", registry.host),
    ]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    serve = Serve(process, port, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"serve exited {process.returncode}: {serve.log_tail()}"
            try:
                if realparts.http("GET", serve.url("/api/health"), timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"serve did not answer: {serve.log_tail()}"
            time.sleep(0.1)
        yield serve, registry
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        registry.stop()


def _image(serve: Serve, registry: str, digest: str) -> tuple[int, Any]:
    response = realparts.http(
        "GET",
        serve.url(f"/api/images/{registry}/{digest}"),
        headers={"x-api-key": API_KEY, "x-functions-key": FUNCTION_KEY},
        timeout=10,
    )
    return response.status, json.loads(response.body) if response.body else None


def test_push_is_scanned_and_served(served: tuple[Serve, realparts.Registry], tmp_path: Path) -> None:
    serve, registry = served
    layout = alpine_layout(tmp_path / "layout")
    started = time.monotonic()
    pushed = realparts.push(registry, f"oci:{layout}:latest", "serve/alpine", "3.10")
    digest = pushed.manifest.digest
    body: Any = None
    deadline = started + 30
    while time.monotonic() < deadline:
        status, body = _image(serve, registry.host, digest)
        if status == 200 and any(f["id"] == VULN and f["package"]["name"] == "musl" for f in body["findings"]):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no {VULN} within 30 s: {body}\n{serve.log_tail()}\n{registry.log_tail()}")
    print(f"\npush-to-findings latency: {time.monotonic() - started:.2f}s (skopeo push included)")
    first_scan = body["lastScan"]
    assert first_scan["status"] == "succeeded"

    # The same digest through the Event Grid webhook: recorded, not scanned a second time.
    webhook = serve.url(f"/runtime/webhooks/eventgrid?functionName=acr_events&code={FUNCTION_KEY}")
    validation = [
        {
            "id": "v",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "data": {"validationCode": "code-123", "validationUrl": "https://example.invalid"},
        }
    ]
    answer = realparts.http(
        "POST", webhook, headers={"aeg-event-type": "SubscriptionValidation"}, data=json.dumps(validation).encode()
    )
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
    notified = realparts.http(
        "POST", webhook, headers={"aeg-event-type": "Notification"}, data=json.dumps([event]).encode()
    )
    assert notified.status == 200, notified.body
    time.sleep(2)  # the worker polls every 0.5 s: a second scan would have started by now
    status, body = _image(serve, registry.host, digest)
    assert status == 200 and body["lastScan"]["scanId"] == first_scan["scanId"]
    assert "serve/alpine:eg" in body["tags"]

    serve.process.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    assert serve.process.wait(timeout=10) == 0
    print(f"SIGTERM to exit: {time.monotonic() - stopping:.2f}s")
