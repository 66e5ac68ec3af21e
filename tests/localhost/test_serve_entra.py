"""`acrguard serve` as a real process with Entra ID configured: the tenant's keys come from a local HTTPS
server (trusted through SSL_CERT_FILE, as a deployment trusts its CA store), tokens are signed by a key the
test made, and real HTTP requests carry them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.childenv import minimal_env
from tests.integration import realparts
from tests.service.entra_support import AUDIENCE, TENANT, JwksEndpoint, Signer, jwks_endpoint
from tests.tlspki import make_pki

from .stack import FUNCTION_KEY, Serve, start_serve

ROOT = Path(__file__).resolve().parents[2]
KEY = {"x-functions-key": FUNCTION_KEY}  # the host's check comes first, as in Azure


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, signer: Signer) -> Iterator[tuple[Serve, JwksEndpoint]]:
    workdir = tmp_path_factory.mktemp("serve-entra")
    ca, cert, key = make_pki(workdir)
    db = workdir / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    with jwks_endpoint({"keys": [signer.jwk()]}, tls=(cert, key)) as endpoint:
        env = {
            "ACRGUARD_ENTRA_TENANT_ID": TENANT,
            "ACRGUARD_ENTRA_AUDIENCE": AUDIENCE,
            "ACRGUARD_ENTRA_JWKS_URL": endpoint.url,
            "SSL_CERT_FILE": str(ca),
        }
        serve = start_serve(workdir / "serve", db=db, env=env)
        try:
            yield serve, endpoint
        finally:
            serve.stop()


def _call(serve: Serve, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any, Any]:
    data = None if body is None else json.dumps(body).encode()
    sent = {**headers, **({"Content-Type": "application/json"} if data else {})}
    response = realparts.http(method, serve.url(path), headers=sent, data=data, timeout=10)
    lowered = {k.lower(): v for k, v in dict(response.headers).items()}
    return response.status, json.loads(response.body) if response.body else None, lowered


def _bearer(token: str) -> dict[str, str]:
    return {**KEY, "Authorization": f"Bearer {token}"}


def test_a_reader_token_reads(served: tuple[Serve, JwksEndpoint], signer: Signer) -> None:
    serve, endpoint = served
    status, body, _ = _call(serve, "GET", "/api/images", _bearer(signer.token(("Findings.Read",))))
    assert status == 200 and isinstance(body, dict), (status, body, serve.log_tail())
    status, _, _ = _call(serve, "GET", "/api/rules", _bearer(signer.token(("Findings.Write",))))
    assert status == 200
    assert endpoint.fetches == 1


def test_writes_need_the_write_role(served: tuple[Serve, JwksEndpoint], signer: Signer) -> None:
    serve, _ = served
    rule = {"name": "r", "vulnerability": "CVE-2019-14697", "reason": "test"}
    status, body, _ = _call(serve, "POST", "/api/rules", _bearer(signer.token(("Findings.Read",))), rule)
    assert (status, body["error"]["code"]) == (403, "Forbidden")
    assert "Findings.Write" in body["error"]["message"]


def test_refused_tokens(served: tuple[Serve, JwksEndpoint], signer: Signer) -> None:
    serve, _ = served
    expired = signer.token(exp=int(time.time()) - 600)
    status, body, headers = _call(serve, "GET", "/api/images", _bearer(expired))
    assert (status, body) == (
        401,
        {"error": {"code": "Unauthorized", "message": "Entra ID token refused: token expired"}},
    )
    assert headers["www-authenticate"] == 'Bearer realm="acrguard"'
    # A token in x-api-key is compared with the API key only.
    status, body, _ = _call(serve, "GET", "/api/images", {**KEY, "x-api-key": signer.token()})
    assert status == 401 and "x-api-key carries the API key only" in body["error"]["message"]
    # With a tenant set the routes are anonymous at the host (as in Azure): a token alone gets through, and
    # acrguard still refuses a request with neither token nor key.
    status, body, _ = _call(serve, "GET", "/api/images", {"Authorization": f"Bearer {signer.token()}"})
    assert status == 200 and "value" in body
    status, body, _ = _call(serve, "GET", "/api/images", {})
    assert status == 401 and body["error"]["code"] == "Unauthorized"


def test_event_grid_deliveries_take_a_sender_token(served: tuple[Serve, JwksEndpoint], signer: Signer) -> None:
    serve, _ = served
    path = "/runtime/webhooks/eventgrid?functionName=acr_events"
    handshake = [
        {"id": "v", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "c-1"}}
    ]
    grid = {"aeg-event-type": "SubscriptionValidation"}
    sender = {**grid, "Authorization": f"Bearer {signer.token(('Events.Send',))}"}
    assert _call(serve, "POST", path, sender, handshake)[:2] == (200, {"validationResponse": "c-1"})
    reader = {**grid, "Authorization": f"Bearer {signer.token(('Findings.Read',))}"}
    status, body, _ = _call(serve, "POST", path, reader, handshake)
    assert (status, body["error"]["code"]) == (403, "Forbidden")


def test_a_keys_host_not_allowed_stops_serve_at_start(tmp_path: Path) -> None:
    env = minimal_env(
        {
            "ACRGUARD_ENTRA_TENANT_ID": TENANT,
            "ACRGUARD_ENTRA_AUDIENCE": AUDIENCE,
            "ACRGUARD_ENTRA_JWKS_URL": "https://keys.example.com/keys",
            "ACRGUARD_API_KEY": "k",
        }
    )
    args = [sys.executable, "-m", "scanner", "serve", "--port", "0", "--runner", "none"]
    args += ["--store", str(tmp_path / "s.sqlite"), "--queue", str(tmp_path / "q.sqlite")]
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert (
        "ACRGUARD_ENTRA_JWKS_URL: 'https://keys.example.com/keys': signing keys are fetched only from" in result.stderr
    )
