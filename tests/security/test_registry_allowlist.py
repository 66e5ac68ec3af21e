"""The registries are an allow-list, and credentials stay with their own host.

Against a real `acrguard serve` (the tests/localhost/stack.py harness, with valid keys): every way an outside
party can name a registry (Event Grid and CloudEvents events, registry notifications, Log Analytics resource-log
rows, import notifications, manual scans by tag and by digest) naming a host that is not allowed is refused
(dead-lettered, or a 4xx) and no connection reaches that host: a loopback TCP sink and a TLS sink count zero.

Against the registry client (the CLI, over local fake registries): a configured credential never reaches a host
other than its own, never goes out before its own registry challenged, and never follows a redirect to
another host; a redirect to a loopback address that is not configured is not followed at all.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from scanner.cli.main import main
from scanner.image.registry_options import RegistryNotAllowed, RegistryOptions
from scanner.model.settings import Settings
from scanner.policy.gate_actions import AcrActions
from scanner.queue import ScanRequest
from scanner.sandbox.errors import JobError
from scanner.service.manage import registry_resolver
from scanner.service.sandboxed import make_sandboxed_fetch
from scanner.vulndb.osv_import import import_sources
from tests.azure.la_server import TOKEN, load_table, log_server
from tests.httpserving import send_json, serving
from tests.localhost.stack import ROOT, Serve, alpine_layout, realparts, serve_with_registry, wait_for
from tests.security.registry_fakes import REPO, Sink, basic, blob_host, fake_registry, sink
from tests.tlspki import make_pki

JSON = {"Content-Type": "application/json"}

SECRET = "s3cret-registry-pa55"
CLEAN_ENV = (
    "ACRGUARD_REGISTRIES",
    "ACRGUARD_REGISTRY_CREDENTIALS",
    "ACRGUARD_REGISTRY_USERNAME",
    "ACRGUARD_REGISTRY_PASSWORD",
    "ACRGUARD_INSECURE_REGISTRIES",
    "ACRGUARD_REGISTRY_CA_FILE",
)


@pytest.fixture(autouse=True)
def no_registry_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: none of the machine's registry settings or docker logins."""
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))


@pytest.fixture
def tls_sink(tmp_path: Path) -> Iterator[tuple[Sink, Path]]:
    ca, cert, key = make_pki(tmp_path)
    with sink((cert, key)) as found:
        yield found, ca


def sbom(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["sbom", *argv, "--progress", "never"])
    return code, capsys.readouterr().err.strip()


def credentials_for_other_hosts(monkeypatch: pytest.MonkeyPatch, docker_dir: Path) -> None:
    """Every kind of credential the settings can hold, each for a host other than the one a test asks."""
    monkeypatch.setenv("ACRGUARD_REGISTRIES", "other.example=basic,legacy.example=basic,docker.example=docker")
    monkeypatch.setenv(
        "ACRGUARD_REGISTRY_CREDENTIALS", json.dumps({"other.example": {"username": "other", "password": SECRET}})
    )
    monkeypatch.setenv("ACRGUARD_REGISTRY_USERNAME", "legacy")
    monkeypatch.setenv("ACRGUARD_REGISTRY_PASSWORD", SECRET)
    auth = base64.b64encode(f"docker:{SECRET}".encode()).decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {"docker.example": {"auth": auth}}}))


# --------------------------------------------------------------------------------------------------
# credentials go to their own host only


def test_no_configured_credential_reaches_another_host(
    tls_sink: tuple[Sink, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The asked host (a TLS sink that challenges for Basic credentials) gets none of the settings' credentials:
    neither up front nor after its challenge, whether the command line names it or the settings list it."""
    found, ca = tls_sink
    credentials_for_other_hosts(monkeypatch, tmp_path / "docker")
    code, err = sbom(capsys, f"{found.host}/{REPO}:1", "--ca-file", str(ca))
    assert code == 2 and "authentication required" in err, err
    listed = "other.example=basic,legacy.example=basic,docker.example=docker," + found.host
    monkeypatch.setenv("ACRGUARD_REGISTRIES", listed)
    monkeypatch.setenv("ACRGUARD_REGISTRY_CA_FILE", str(ca))  # the settings' CA, as the service has it
    code, err = sbom(capsys, f"{found.host}/{REPO}:1")
    assert code == 2 and "authentication required" in err, err
    assert found.connections >= 2, "the asked host was reached"
    assert found.authorizations == []


def test_basic_credentials_go_out_only_after_their_registry_challenged(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_registry(challenge="basic") as registry:
        user, password = registry.credentials
        monkeypatch.setenv("ACRGUARD_REGISTRIES", f"{registry.host}=basic")
        monkeypatch.setenv(
            "ACRGUARD_REGISTRY_CREDENTIALS", json.dumps({registry.host: {"username": user, "password": password}})
        )
        code, err = sbom(capsys, registry.reference, "--insecure")
    assert code == 0, err
    first, second, *rest = registry.seen
    assert first.authorization == "", "nothing before the registry's challenge"
    assert (second.path, second.authorization) == (first.path, basic(user, password))
    assert rest and all(seen.authorization == basic(user, password) for seen in rest)


def test_a_registry_that_never_challenges_never_sees_the_credentials(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_registry(challenge="") as registry:
        monkeypatch.setenv("ACRGUARD_REGISTRIES", f"{registry.host}=basic")
        monkeypatch.setenv(
            "ACRGUARD_REGISTRY_CREDENTIALS", json.dumps({registry.host: {"username": "u", "password": SECRET}})
        )
        code, err = sbom(capsys, registry.reference, "--insecure")
    assert code == 0, err
    assert len(registry.seen) >= 3 and {seen.authorization for seen in registry.seen} == {""}


@pytest.mark.parametrize("storage_challenges", [False, True], ids=["storage-serves", "storage-asks-for-a-token"])
def test_no_authorization_follows_a_redirect_to_another_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, storage_challenges: bool
) -> None:
    """ACR redirects blob downloads to storage hosts: the registry's credential stays behind, and a storage
    host that answers 401 with a Bearer challenge does not get the token the SDK's challenge policy fetches."""
    with fake_registry(challenge="basic") as registry, blob_host(registry.image, storage_challenges) as storage:
        registry.redirect_blobs_to = storage.url
        user, password = registry.credentials
        # The storage host is configured (as the data endpoint of a private-link ACR would be): it may be
        # reached at its loopback address, and has no credential of its own.
        monkeypatch.setenv("ACRGUARD_REGISTRIES", f"{registry.host}=basic,{storage.host}")
        monkeypatch.setenv(
            "ACRGUARD_REGISTRY_CREDENTIALS", json.dumps({registry.host: {"username": user, "password": password}})
        )
        code, err = sbom(capsys, registry.reference, "--insecure")
    assert code == 0, err
    redirected = [seen for seen in registry.seen if "/blobs/" in seen.path and seen.authorization]
    assert redirected, "the registry itself got its credential for the blobs it redirected"
    assert len(storage.seen) >= 2 and {seen.authorization for seen in storage.seen} == {""}
    if storage_challenges:
        assert any(seen.path.startswith("/oauth2/token") for seen in registry.seen), "the SDK did fetch a token"


@pytest.mark.parametrize("target", ["127.0.0.1", "localhost"])
def test_a_redirect_to_an_unconfigured_loopback_address_is_not_followed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    with sink() as found, fake_registry(challenge="basic") as registry:
        registry.redirect_blobs_to = f"http://{target}:{found.host.split(':')[1]}"
        user, password = registry.credentials
        monkeypatch.setenv("ACRGUARD_REGISTRIES", f"{registry.host}=basic")
        monkeypatch.setenv(
            "ACRGUARD_REGISTRY_CREDENTIALS", json.dumps({registry.host: {"username": user, "password": password}})
        )
        code, err = sbom(capsys, registry.reference, "--insecure")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"refused to connect to {target}:" in err and "a loopback address" in err, err
    assert found.connections == 0


# --------------------------------------------------------------------------------------------------
# defence in depth: whatever got into the queue, the client factory refuses a host that is not allowed


def test_a_queued_scan_of_an_unlisted_host_connects_nowhere(tls_sink: tuple[Sink, Path]) -> None:
    """A scan request that reached the queue without the intake (a requeued dead letter, a message from before
    the allow-list): the worker's fetch step refuses it in one line and the host sees no connection; so do
    tag resolution and gate actions, which reach registries through the same factory."""
    found, ca = tls_sink
    settings = Settings.from_environ(
        {
            "ACRGUARD_REGISTRIES": "cred.example=basic",
            "ACRGUARD_REGISTRY_CREDENTIALS": json.dumps({"cred.example": {"username": "u", "password": SECRET}}),
            "ACRGUARD_REGISTRY_CA_FILE": str(ca),
        }
    )
    fetch = make_sandboxed_fetch("none", settings)
    with pytest.raises(JobError) as caught:
        fetch(ScanRequest.create(found.host, REPO, "sha256:" + "ab" * 32))
    assert (
        str(caught.value)
        == f"fetch: registry '{found.host}' is not an allowed registry (name it in ACRGUARD_REGISTRIES): refused"
    )
    resolve = registry_resolver(RegistryOptions().with_settings(settings))
    with pytest.raises(RegistryNotAllowed):
        resolve(found.host, REPO, "1")
    with pytest.raises(RegistryNotAllowed):
        AcrActions(found.host, RegistryOptions().with_settings(settings))
    assert found.connections == 0


# --------------------------------------------------------------------------------------------------
# the service: no event, row or request naming another host causes a connection

EVENTS = ROOT / "tests" / "fixtures" / "azure-events"
DIGEST = "sha256:" + "5e" * 32
WORKSPACE = "00000000-0000-0000-0000-00000000f00d"


def _load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def event_grid(host: str, n: int) -> dict[str, Any]:
    event = _load("eventgrid-image-pushed.json")
    event["id"] = event["data"]["id"] = f"eg-{n}"
    event["data"]["request"]["host"] = host
    return dict(event)


def cloud_event(host: str, n: int) -> dict[str, Any]:
    event = _load("cloudevent-image-pushed.json")
    event["id"] = event["data"]["id"] = f"ce-{n}"
    event["data"]["request"]["host"] = host
    return dict(event)


def notification(name: str, host: str, n: int) -> dict[str, Any]:
    body = _load(name)
    for event in body["events"]:
        event["id"] = f"{name}-{n}"
        event["request"]["host"] = host
    return dict(body)


def log_rows(host: str) -> list[list[Any]]:
    """Resource-log rows (the columns of `scanner.service.resource_log.QUERY`) naming `host`."""
    at = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    manifest = "application/vnd.oci.image.manifest.v1+json"
    return [
        [at, operation, host, "samples/nginx", "1", DIGEST, manifest, "200", f"{operation}-{host}"]
        for operation in ("Push", "Pull", "importImage")
    ]


@contextmanager
def managed_identity(token: str) -> Iterator[str]:
    """The App Service managed-identity endpoint (`IDENTITY_ENDPOINT`) handing out one token: serve's
    `DefaultAzureCredential` gets the Log Analytics token from it, with no network."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            expires = str(int(datetime.now(UTC).timestamp()) + 3600)
            resource = parse_qs(urlsplit(self.path).query).get("resource", [""])[0]
            send_json(
                self, 200, {"access_token": token, "expires_on": expires, "resource": resource, "token_type": "Bearer"}
            )

    with serving(Handler) as url:
        yield f"{url}/msi/token"


def test_no_unlisted_host_is_reached_through_serve(tmp_path: Path) -> None:
    """Every way to name a registry, each naming a loopback TCP sink, a TLS sink or `localhost` at the sink's
    port, sent with valid keys to a real serve that holds a credential (for another host): each is refused
    with a one-line reason (dead-lettered, or 403), and neither sink sees a connection; meanwhile a push to the
    allowed registry is scanned, so the queue workers did run."""
    db = tmp_path / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    _, cert, key = make_pki(tmp_path)
    with (
        sink() as tcp,
        sink((cert, key)) as tls,
        log_server(tmp_path / "log-analytics") as workspace,
        managed_identity(TOKEN) as identity,
    ):
        targets = [tcp.host, tls.host, f"localhost:{tcp.host.split(':')[1]}"]
        workspace.table = {**load_table(), "rows": [row for host in targets for row in log_rows(host)]}
        env = {
            "ACRGUARD_REGISTRIES": "cred.example=basic",
            "ACRGUARD_REGISTRY_CREDENTIALS": json.dumps({"cred.example": {"username": "u", "password": SECRET}}),
            "ACRGUARD_LOG_WORKSPACE_ID": WORKSPACE,
            "ACRGUARD_LOG_ENDPOINT": workspace.url,
            "ACRGUARD_LOG_SCHEDULE": "* * * * * *",
            "REQUESTS_CA_BUNDLE": str(workspace.ca),
            "IDENTITY_ENDPOINT": identity,
            "IDENTITY_HEADER": "local-identity-header",
        }
        with serve_with_registry(tmp_path / "stack", db, env=env) as (serve, registry):
            attacks = _attack(serve, targets)
            # Two runs of the log timer: the first one's rows were all handled before the second began.
            wait_for("two resource-log runs", lambda: len(workspace.requests) >= 2, timeout=60, context=serve.log_tail)
            attacks += len(targets) * 3  # Push, Pull and importImage rows per host
            _allowed_push_is_scanned(serve, registry, tmp_path)
            status, letters = serve.get("/api/dead-letters")
            assert status == 200, letters
            refused = [v for v in letters["value"] if "is not an allowed registry" in v["error"]]
            status, images = serve.get("/api/images")
            assert status == 200, images
    # Event Grid, CloudEvents, a notified push and pull, an import notification and three log rows per host
    # are dead-lettered; the manual scans (by tag, by digest) answered 403 and left nothing.
    assert len(refused) == len(targets) * 8, [v["error"] for v in letters["value"]]
    assert all(len(v["error"].splitlines()) == 1 for v in refused)
    assert {item["registry"] for item in images["value"]} == {registry.host}
    assert attacks == len(targets) * 10
    assert (tcp.connections, tls.connections, tls.authorizations) == (0, 0, [])


def _attack(serve: Serve, targets: list[str]) -> int:
    """Sends every kind of request naming each target, checks each answer; how many were sent."""
    sent = 0
    webhook = "/runtime/webhooks/eventgrid?functionName=acr_events"
    for n, host in enumerate(targets):
        grid = {"aeg-event-type": "Notification", "Content-Type": "application/json"}
        assert serve.post(webhook, [event_grid(host, n)], grid)[0] == 200
        cloud = {"aeg-event-type": "Notification", "Content-Type": "application/cloudevents+json; charset=utf-8"}
        assert serve.post(webhook, cloud_event(host, n), cloud)[0] == 200
        for name in ("registry-notification-push-manifest.json", "registry-notification-pull-manifest.json"):
            status, answer = serve.post("/api/registry-notifications", notification(name, host, n), JSON)
            assert (status, answer["accepted"], answer["dead_lettered"]) == (200, 0, True), answer
        status, answer = serve.post(
            "/api/import-notifications", {"registry": host, "repository": "samples/nginx", "digest": DIGEST}, JSON
        )
        assert (status, answer["deadLettered"]) == (400, 1), answer
        assert "is not an allowed registry" in answer["results"][0]["error"]
        for order in ({"tag": "1"}, {"digest": DIGEST}):
            status, answer = serve.post("/api/scans", {"registry": host, "repository": "samples/nginx", **order}, JSON)
            assert status == 403, answer
            message = answer["error"]["message"]
            assert "is not an allowed registry" in message and len(message.splitlines()) == 1, answer
        sent += 7
    return sent


def _allowed_push_is_scanned(serve: Serve, registry: Any, tmp_path: Path) -> None:
    pushed = realparts.push(registry, f"oci:{alpine_layout(tmp_path / 'layout')}:latest", "allowed/alpine", "3.10")

    def scanned() -> bool:
        status, body = serve.image(registry.host, pushed.digest)
        return status == 200 and (body.get("lastScan") or {}).get("status") == "succeeded"

    wait_for("the allowed registry's push scanned", scanned, timeout=120, context=serve.log_tail)
