"""The front door (findings 1 and 7): no request without its credential, of the wrong media type or with too
many events causes work, against a real `acrguard serve` and the function handlers as a host runs them.

Every event names as its registry a loopback TCP sink that counts connections: it must see none, and nothing
may be queued, dead-lettered or stored. Also: serve started without any key makes one (printed once, kept
0600, reused), the API key and the tokens are each accepted in their own header only, and App Service's
variables alone open nothing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import sqlite3
import stat
import sys
import threading
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from scanner.azure.events import DeliveryRefused
from scanner.model.settings import Settings
from scanner.queue import open_queue
from scanner.service.config import clients
from scanner.vulndb.osv_import import import_sources
from tests.app_index import blueprint_functions
from tests.localhost.stack import (
    API_KEY,
    EVENTS_TOKEN,
    FUNCTION_KEY,
    HEADERS,
    Serve,
    realparts,
    start_serve,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "fixtures" / "azure-events"
WEBHOOK = "/runtime/webhooks/eventgrid?functionName=acr_events"
NOTIFICATIONS = "/api/registry-notifications"
REGISTRY_TYPE = "application/vnd.docker.distribution.events.v1+json"
DIGEST = "sha256:" + "5" * 64


class Sink:
    """A TCP listener on 127.0.0.1 that accepts, counts and closes every connection (a registry fetch, TLS
    or not, starts with one)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    listener = Sink()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def vulndb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vulndb") / "alpine.sqlite"
    import_sources(path, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    return path


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, vulndb: Path, sink: Sink) -> Iterator[Serve]:
    """serve with the harness's function key, API key and events token, the sink a plain-HTTP registry."""
    process = start_serve(tmp_path_factory.mktemp("serve"), db=vulndb, insecure_registries=[sink.host])
    yield process
    process.stop()


# --------------------------------------------------------------------------------------------------
# what an attacker sends


def event_grid_event(host: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "eventgrid-image-pushed.json").read_text())
    event["data"]["request"]["host"] = host
    event["data"]["target"]["digest"] = DIGEST
    return event


def cloud_event(host: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "cloudevent-image-pushed.json").read_text())
    event["data"]["request"]["host"] = host
    event["data"]["target"]["digest"] = DIGEST
    return event


def notification(host: str, count: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EVENTS / "registry-notification-push-manifest.json").read_text())
    (event,) = body["events"]
    event["request"]["host"] = host
    event["target"]["digest"] = DIGEST
    body["events"] = [{**copy.deepcopy(event), "id": f"{event['id']}-{n}"} for n in range(count)]
    return body


@dataclass(frozen=True)
class Attack:
    name: str
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    status: int  # what serve must answer


def attacks(host: str) -> list[Attack]:
    """Requests that must cause no work: no credential, another's credential or the right one in another's
    header, a wrong key, a media type a web page may POST without a CORS preflight, too many events."""
    grid, cloud, notify = [event_grid_event(host)], cloud_event(host), notification(host)
    grid_type = {"Content-Type": "application/json", "aeg-event-type": "Notification"}
    cloud_type = {"Content-Type": "application/cloudevents+json"}
    validation = [
        {"id": "v", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "c"}}
    ]
    notify_type = {"Content-Type": REGISTRY_TYPE}
    events_bearer = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
    # serve checks the function key first (as the host would); these pass it, so the handler's check is met.
    host_key = {"x-functions-key": FUNCTION_KEY}
    scan = {"registry": host, "repository": "team/app", "tag": "latest"}  # a tag is resolved: a connection
    imported = {"registry": host, "repository": "team/app", "digest": DIGEST}
    rule = {"name": "accept-all", "justification": "j", "match": {"ids": ["CVE-1"]}}
    return [
        # The Event Grid webhook.
        Attack("grid: no credential", "POST", WEBHOOK, grid_type, grid, 401),
        Attack("grid: CloudEvents, no credential", "POST", WEBHOOK, cloud_type, cloud, 401),
        Attack(
            "grid: CloudEvents batch, no credential",
            "POST",
            WEBHOOK,
            {"Content-Type": "application/cloudevents-batch+json"},
            [cloud, cloud],
            401,
        ),
        Attack("grid: wrong code", "POST", WEBHOOK + "&code=wrong", grid_type, grid, 401),
        Attack("grid: wrong x-functions-key", "POST", WEBHOOK, {**grid_type, "x-functions-key": "x"}, grid, 401),
        Attack("grid: events token as x-api-key", "POST", WEBHOOK, {**grid_type, "x-api-key": EVENTS_TOKEN}, grid, 401),
        Attack(
            "grid: API key as bearer", "POST", WEBHOOK, {**grid_type, "Authorization": f"Bearer {API_KEY}"}, grid, 401
        ),
        Attack(
            "grid: function key as bearer",
            "POST",
            WEBHOOK,
            {**grid_type, "Authorization": f"Bearer {FUNCTION_KEY}"},
            grid,
            401,
        ),
        Attack(
            "grid: validation handshake, no credential",
            "POST",
            WEBHOOK,
            {"Content-Type": "application/json", "aeg-event-type": "SubscriptionValidation"},
            validation,
            401,
        ),
        Attack(
            "grid: abuse-protection OPTIONS, no credential",
            "OPTIONS",
            WEBHOOK,
            {"WebHook-Request-Origin": "o"},
            None,
            401,
        ),
        Attack("grid: text/plain, no credential", "POST", WEBHOOK, {"Content-Type": "text/plain"}, grid, 401),
        Attack(
            "grid: text/plain with the key",
            "POST",
            WEBHOOK + f"&code={FUNCTION_KEY}",
            {"Content-Type": "text/plain"},
            grid,
            415,
        ),
        Attack(
            "grid: form with the key",
            "POST",
            WEBHOOK + f"&code={FUNCTION_KEY}",
            {"Content-Type": "application/x-www-form-urlencoded"},
            grid,
            415,
        ),
        Attack("grid: no media type with the key", "POST", WEBHOOK + f"&code={FUNCTION_KEY}", {}, grid, 415),
        Attack("grid: 101 events with the key", "POST", WEBHOOK + f"&code={FUNCTION_KEY}", grid_type, grid * 101, 413),
        # The registry's notification endpoint.
        Attack("notify: no credential", "POST", NOTIFICATIONS, notify_type, notify, 401),
        Attack("notify: function key only", "POST", NOTIFICATIONS, {**notify_type, **host_key}, notify, 401),
        Attack(
            "notify: function key in the URL only",
            "POST",
            NOTIFICATIONS + f"?code={FUNCTION_KEY}",
            notify_type,
            notify,
            401,
        ),
        Attack(
            "notify: wrong bearer",
            "POST",
            NOTIFICATIONS,
            {**notify_type, **host_key, "Authorization": "Bearer x"},
            notify,
            401,
        ),
        Attack(
            "notify: API key as bearer",
            "POST",
            NOTIFICATIONS,
            {**notify_type, **host_key, "Authorization": f"Bearer {API_KEY}"},
            notify,
            401,
        ),
        Attack(
            "notify: events token as x-api-key",
            "POST",
            NOTIFICATIONS,
            {**notify_type, **host_key, "x-api-key": EVENTS_TOKEN},
            notify,
            401,
        ),
        Attack(
            "notify: events token, other scheme",
            "POST",
            NOTIFICATIONS,
            {**notify_type, **host_key, "Authorization": f"Basic {EVENTS_TOKEN}"},
            notify,
            401,
        ),
        Attack(
            "notify: text/plain, no credential",
            "POST",
            NOTIFICATIONS,
            {"Content-Type": "text/plain", **host_key},
            notify,
            401,
        ),
        Attack(
            "notify: text/plain with the token",
            "POST",
            NOTIFICATIONS,
            {"Content-Type": "text/plain", **host_key, **events_bearer},
            notify,
            415,
        ),
        Attack(
            "notify: multipart with the token",
            "POST",
            NOTIFICATIONS,
            {"Content-Type": "multipart/form-data; boundary=x", **host_key, **events_bearer},
            notify,
            415,
        ),
        Attack(
            "notify: 101 events with the token",
            "POST",
            NOTIFICATIONS,
            {**notify_type, **host_key, **events_bearer},
            notification(host, 101),
            413,
        ),
        # Manual scans, imports and the other writes.
        Attack(
            "scan: no credential", "POST", "/api/scans", {"Content-Type": "application/json", **host_key}, scan, 401
        ),
        Attack(
            "scan: API key as bearer",
            "POST",
            "/api/scans",
            {"Content-Type": "application/json", **host_key, "Authorization": f"Bearer {API_KEY}"},
            scan,
            401,
        ),
        Attack(
            "scan: events token",
            "POST",
            "/api/scans",
            {"Content-Type": "application/json", **host_key, **events_bearer},
            scan,
            401,
        ),
        Attack(
            "scan: events token as x-api-key",
            "POST",
            "/api/scans",
            {"Content-Type": "application/json", **host_key, "x-api-key": EVENTS_TOKEN},
            scan,
            401,
        ),
        Attack(
            "scan: function key only", "POST", "/api/scans", {"Content-Type": "application/json", **host_key}, scan, 401
        ),
        Attack(
            "import: no credential",
            "POST",
            "/api/import-notifications",
            {"Content-Type": "application/json", **host_key},
            imported,
            401,
        ),
        Attack(
            "import: events token",
            "POST",
            "/api/import-notifications",
            {"Content-Type": "application/json", **host_key, **events_bearer},
            imported,
            401,
        ),
        Attack(
            "rules: no credential", "POST", "/api/rules", {"Content-Type": "application/json", **host_key}, rule, 401
        ),
        Attack("requeue: no credential", "POST", "/api/dead-letters/x/requeue", host_key, None, 401),
        Attack("reads: events token", "GET", "/api/images", {**host_key, **events_bearer}, None, 401),
    ]


def send(serve: Serve, attack: Attack) -> realparts.HttpResponse:
    data = None if attack.body is None else json.dumps(attack.body).encode()
    return realparts.http(attack.method, serve.url(attack.path), headers=dict(attack.headers), data=data)


def queue_rows(path: Path) -> tuple[int, int]:
    """(messages, dead letters) of every queue in serve's queue file."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        messages = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        letters = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
    return messages, letters


def refused_without_work(serve: Serve, sink: Sink, cases: list[Attack]) -> list[str]:
    """Sends every attack; the names of those that were answered otherwise than refused."""
    through = []
    for attack in cases:
        answer = send(serve, attack)
        try:
            document = json.loads(answer.body)
        except ValueError:
            document = None
        error = document.get("error") if isinstance(document, dict) else None
        if answer.status != attack.status or not (
            isinstance(error, dict) and error.get("code") and error.get("message")
        ):
            through.append(f"{attack.name}: {answer.status} {answer.body[:200]!r}")
    return through


# --------------------------------------------------------------------------------------------------
# serve with its keys


def test_no_unauthenticated_or_malformed_delivery_causes_work(serve: Serve, sink: Sink) -> None:
    cases = attacks(sink.host)
    through = refused_without_work(serve, sink, cases)
    print(f"\nfront door: {len(cases)} attack variants, {len(through)} got through")
    assert through == [], "\n".join(through)
    # Nothing reached the registry the events named, nothing was queued, kept or stored.
    assert sink.connections == 0
    assert queue_rows(serve.workdir / "queue.sqlite") == (0, 0)
    status, images = serve.get("/api/images")
    assert (status, images["value"]) == (200, [])


def test_the_right_credential_in_its_own_header_is_accepted(serve: Serve) -> None:
    """The positive side of each check (without naming any registry: nothing is fetched)."""
    validation = [
        {"id": "v", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "c"}}
    ]
    handshake = {"Content-Type": "application/json; charset=utf-8", "aeg-event-type": "SubscriptionValidation"}
    for credential in (
        {"x-functions-key": FUNCTION_KEY},
        {"Authorization": f"Bearer {EVENTS_TOKEN}"},
        {"x-api-key": API_KEY},
    ):
        answer = realparts.http(
            "POST", serve.url(WEBHOOK), headers={**handshake, **credential}, data=json.dumps(validation).encode()
        )
        assert (answer.status, json.loads(answer.body)) == (200, {"validationResponse": "c"}), credential
    options = realparts.http(
        "OPTIONS", serve.url(f"{WEBHOOK}&code={FUNCTION_KEY}"), headers={"WebHook-Request-Origin": "o"}
    )
    assert options.status == 200
    empty = {"events": []}
    for credential in ({"Authorization": f"Bearer {EVENTS_TOKEN}"}, {"x-api-key": API_KEY}):
        headers = {"Content-Type": REGISTRY_TYPE, "x-functions-key": FUNCTION_KEY, **credential}
        answer = realparts.http("POST", serve.url(NOTIFICATIONS), headers=headers, data=json.dumps(empty).encode())
        assert (answer.status, json.loads(answer.body)["accepted"]) == (200, 0), credential
    assert realparts.http("GET", serve.url("/api/images"), headers=HEADERS).status == 200


# --------------------------------------------------------------------------------------------------
# serve without any key: secure by default


def _keyless(workdir: Path, vulndb: Path, sink: Sink) -> Serve:
    # No key of any kind, and App Service's variables (as a container on App Service would have): still shut.
    unset = {"ACRGUARD_FUNCTION_KEY": "", "ACRGUARD_API_KEY": "", "ACRGUARD_EVENTS_TOKEN": ""}
    app_service = {"WEBSITE_SITE_NAME": "acrguard", "WEBSITE_INSTANCE_ID": "instance-1"}
    return start_serve(workdir, db=vulndb, insecure_registries=[sink.host], env={**unset, **app_service})


def test_serve_without_a_key_makes_one_prints_it_once_and_opens_nothing(
    tmp_path: Path, vulndb: Path, sink: Sink
) -> None:
    workdir = tmp_path / "keyless"
    first = _keyless(workdir, vulndb, sink)
    try:
        (line,) = [ln for ln in first.log_path.read_text().splitlines() if "generated an API key" in ln]
        key = line.split("x-api-key: ", 1)[1].split(" ", 1)[0]
        key_file = workdir / "api-key"  # beside the SQLite store
        assert f"kept in {key_file}, mode 600" in line
        assert key_file.read_text().strip() == key and len(key) >= 32
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        host = sink.host
        grid = [event_grid_event(host)]
        grid_type = {"Content-Type": "application/json", "aeg-event-type": "Notification"}
        notify_type = {"Content-Type": REGISTRY_TYPE}
        json_type = {"Content-Type": "application/json"}
        cases = [
            Attack("grid: no credential", "POST", WEBHOOK, grid_type, grid, 401),
            Attack("grid: any code", "POST", WEBHOOK + "&code=x", grid_type, grid, 401),
            Attack("grid: key as bearer", "POST", WEBHOOK, {**grid_type, "Authorization": f"Bearer {key}"}, grid, 401),
            Attack("notify: no credential", "POST", NOTIFICATIONS, notify_type, notification(host), 401),
            Attack(
                "notify: key as bearer",
                "POST",
                NOTIFICATIONS,
                {**notify_type, "Authorization": f"Bearer {key}"},
                notification(host),
                401,
            ),
            Attack(
                "scan: no credential",
                "POST",
                "/api/scans",
                json_type,
                {"registry": host, "repository": "r", "tag": "t"},
                401,
            ),
            Attack(
                "rules: no credential",
                "POST",
                "/api/rules",
                json_type,
                {"name": "n", "justification": "j", "match": {"ids": ["x"]}},
                401,
            ),
            Attack("requeue: no credential", "POST", "/api/dead-letters/x/requeue", {}, None, 401),
            Attack("reads: no credential", "GET", "/api/images", {}, None, 401),
        ]
        through = refused_without_work(first, sink, cases)
        assert through == [], "\n".join(through)
        assert sink.connections == 0 and queue_rows(workdir / "queue.sqlite") == (0, 0)
        # The key it printed opens the API, and Event Grid can send it as a delivery header.
        assert realparts.http("GET", first.url("/api/images"), headers={"x-api-key": key}).status == 200
        validation = [
            {"id": "v", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "c"}}
        ]
        headers = {"Content-Type": "application/json", "aeg-event-type": "SubscriptionValidation", "x-api-key": key}
        assert (
            realparts.http("POST", first.url(WEBHOOK), headers=headers, data=json.dumps(validation).encode()).status
            == 200
        )
    finally:
        first.stop()
    # Started again: the same key, read back and not printed again.
    second = _keyless(workdir, vulndb, sink)
    try:
        log = second.log_path.read_text()
        assert log.count(key) == 1  # the first start's line only
        assert f"API key (x-api-key) from {key_file}" in log
        assert realparts.http("GET", second.url("/api/images"), headers={"x-api-key": key}).status == 200
    finally:
        second.stop()


def test_a_key_file_others_can_read_stops_serve(tmp_path: Path, vulndb: Path, sink: Sink) -> None:
    workdir = tmp_path / "loose"
    workdir.mkdir()
    (workdir / "api-key").write_text("k" * 40 + "\n")
    (workdir / "api-key").chmod(0o644)
    try:
        started = _keyless(workdir, vulndb, sink)
    except AssertionError as err:
        assert "serve exited" in str(err)
    else:
        started.stop()
        pytest.fail("serve started with a key file others can read")
    assert "readable by others (mode 644); chmod 600 it" in (workdir / "serve.log").read_text()


# --------------------------------------------------------------------------------------------------
# the function handlers where no host checks keys


@pytest.fixture
def handlers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The HTTP and event functions as a host runs them, on SQLite, with App Service's variables set and no
    key configured: the handlers do not run inside the Functions host's worker, so nothing trusts them."""
    from scanner.azure.api import bp as api_bp
    from scanner.azure.events import bp as events_bp
    from scanner.azure.manage import bp as manage_bp

    for name in ("ACRGUARD_API_KEY", "ACRGUARD_API_TOKEN", "ACRGUARD_EVENTS_TOKEN", "ACRGUARD_ALLOW_ANONYMOUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEBSITE_SITE_NAME", "acrguard")
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "instance-1")
    monkeypatch.setenv("ACRGUARD_STORE", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("ACRGUARD_QUEUE", str(tmp_path / "queue.sqlite"))
    clients.configure(Settings.from_environ())
    functions = blueprint_functions(api_bp, manage_bp, events_bp)
    yield {name: fn.get_user_function() for name, fn in functions.items()}
    clients.close()


def _request(method: str, body: Any = None, headers: Mapping[str, str] | None = None) -> func.HttpRequest:
    data = b"" if body is None else json.dumps(body).encode()
    return func.HttpRequest(
        method, "http://localhost/api/x", headers=dict(headers or {}), params={}, route_params={}, body=data
    )


def test_app_service_variables_alone_open_neither_reads_nor_writes(handlers: dict[str, Any], tmp_path: Path) -> None:
    host = "127.0.0.1:9"
    json_type = {"Content-Type": "application/json"}
    refused = {
        "list_images": _request("GET"),
        "create_scan": _request("POST", {"registry": host, "repository": "r", "digest": DIGEST}, json_type),
        "import_notifications": _request("POST", {"registry": host, "repository": "r", "digest": DIGEST}, json_type),
        "create_rule": _request("POST", {"name": "n", "justification": "j", "match": {"ids": ["x"]}}, json_type),
        "registry_notifications": _request("POST", notification(host), {"Content-Type": REGISTRY_TYPE}),
    }
    for name, request in refused.items():
        response = handlers[name](request)
        assert response.status_code == 401, (name, response.get_body())
    # The Event Grid trigger: no host checked the delivery, so it is refused before it is read.
    event = func.EventGridEvent(
        id="e",
        data=event_grid_event(host)["data"],
        topic="t",
        subject="s",
        event_type="Microsoft.ContainerRegistry.ImagePushed",
        event_time=None,
        data_version="1",
    )
    with pytest.raises(DeliveryRefused):
        handlers["acr_events"](event)
    assert not (tmp_path / "queue.sqlite").exists() or queue_rows(tmp_path / "queue.sqlite") == (0, 0)


def test_inside_the_functions_worker_on_app_service_the_hosts_check_is_trusted(
    handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "azure_functions_worker", types.ModuleType("azure_functions_worker"))
    assert handlers["list_images"](_request("GET")).status_code == 200
    # Outside App Service only when the operator says its host checks keys.
    monkeypatch.delenv("WEBSITE_INSTANCE_ID")
    clients.configure(Settings.from_environ())
    assert handlers["list_images"](_request("GET")).status_code == 401
    monkeypatch.setenv("ACRGUARD_TRUST_FUNCTIONS_HOST", "true")
    clients.configure(Settings.from_environ())
    assert handlers["list_images"](_request("GET")).status_code == 200
    # A key configured is required even then.
    monkeypatch.setenv("ACRGUARD_API_KEY", "k")
    clients.configure(Settings.from_environ())
    assert handlers["list_images"](_request("GET")).status_code == 401
    assert handlers["list_images"](_request("GET", headers={"x-api-key": "k"})).status_code == 200


# --------------------------------------------------------------------------------------------------
# what an authenticated sender can make the service keep


def _configure(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    clients.configure(Settings.from_environ())


def test_unreadable_bodies_are_kept_within_bounds(handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _configure(monkeypatch, ACRGUARD_EVENTS_TOKEN="et", ACRGUARD_API_KEY="ak", ACRGUARD_MAX_DEAD_LETTERS="3")
    sender = {"Content-Type": REGISTRY_TYPE, "Authorization": "Bearer et"}
    huge = b"{" + b" " * (1 << 20)  # 1 MiB that is not JSON
    bodies = [huge, *(f'{{"events": {n}}}'.encode() for n in range(4))]
    for body in bodies:
        request = func.HttpRequest("POST", "http://localhost/api/registry-notifications", headers=sender, body=body)
        response = handlers["registry_notifications"](request)
        assert (response.status_code, json.loads(response.get_body())["dead_lettered"]) == (200, True)
    listed = json.loads(handlers["list_dead_letters"](_request("GET", headers={"x-api-key": "ak"})).get_body())
    # The newest three kept, the two oldest (the huge one first) dropped and counted.
    assert [letter["body"] for letter in listed["value"]] == [{"events": n} for n in (1, 2, 3)]
    assert listed["dropped"] == {"event": 2, "scan": 0}


def test_a_huge_unreadable_body_is_kept_truncated(handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _configure(monkeypatch, ACRGUARD_EVENTS_TOKEN="et", ACRGUARD_API_KEY="ak")
    sender = {"Content-Type": REGISTRY_TYPE, "Authorization": "Bearer et"}
    request = func.HttpRequest("POST", "http://localhost/x", headers=sender, body=b"{" + b" " * (1 << 20))
    assert handlers["registry_notifications"](request).status_code == 200
    (letter,) = clients.dead_letters().dead_letters()
    kept = json.loads(letter.raw)
    assert len(kept["event"]) == 16 << 10 and kept["truncated_from"] == (1 << 20) + 1


def test_a_full_registry_queue_refuses_more_scans_with_the_reason(
    handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(
        monkeypatch,
        ACRGUARD_EVENTS_TOKEN="et",
        ACRGUARD_API_KEY="ak",
        ACRGUARD_MAX_QUEUED_PER_REGISTRY="2",
        ACRGUARD_REGISTRIES="127.0.0.1:9",
    )
    host = "127.0.0.1:9"
    body = notification(host, 3)
    for n, event in enumerate(body["events"]):
        event["target"]["digest"] = f"sha256:{n:064x}"
    sender = {"Content-Type": REGISTRY_TYPE, "Authorization": "Bearer et"}
    assert handlers["registry_notifications"](_request("POST", body, sender)).status_code == 200
    # The third scan went to the dead letters with the reason; so does a manual scan, answered 503.
    order = {"registry": host, "repository": "team/app", "digest": "sha256:" + "e" * 64}
    writer = {"Content-Type": "application/json", "x-api-key": "ak"}
    response = handlers["create_scan"](_request("POST", order, writer))
    error = json.loads(response.get_body())["error"]
    assert (response.status_code, error["code"]) == (503, "QueueFull")
    assert error["message"].startswith(f"refused: 2 scans of {host} are already queued")
    listed = json.loads(handlers["list_dead_letters"](_request("GET", headers={"x-api-key": "ak"})).get_body())
    assert [(d["kind"], d["body"]["digest"]) for d in listed["value"]] == [
        ("scan", f"sha256:{2:064x}"),
        ("scan", "sha256:" + "e" * 64),
    ]
    assert all(d["error"].startswith("refused: 2 scans of") for d in listed["value"])
    with open_queue(Settings.from_environ().queue) as queue:
        assert len(queue.receive(10, 30)) == 2
