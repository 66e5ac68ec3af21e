"""Entra ID tokens at the function handlers (`authorize`, `guarded`): the statuses and error bodies a caller
gets, and that behind a Functions host that checks keys a configured tenant still requires the token."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import azure.functions as func
import pytest

from scanner.azure.auth import authorize
from scanner.azure.http import guarded, json_response
from scanner.model.settings import Settings
from scanner.service.config import clients
from tests.service.entra_support import AUDIENCE, TENANT, Signer, forged, write_jwks


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def settings(signer: Signer, tmp_path: Path) -> Iterator[Settings]:
    keys = write_jwks(tmp_path / "keys.json", signer)
    configured = Settings(entra_tenant_id=TENANT, entra_audience=(AUDIENCE,), entra_jwks_file=str(keys))
    clients.configure(configured)
    try:
        yield configured
    finally:
        clients.configure(None)


def _request(headers: dict[str, str], method: str = "GET") -> func.HttpRequest:
    return func.HttpRequest(method, "http://localhost/api/things", headers=headers, params={}, body=b"")


def _handler(req: func.HttpRequest) -> func.HttpResponse:
    return json_response({"ok": True})


def _answer(token: str, write: bool = False) -> tuple[int, dict[str, str], dict[str, object]]:
    response = guarded(_handler, write=write)(_request({"Authorization": f"Bearer {token}"}))
    return response.status_code, dict(response.headers), json.loads(response.get_body())


def test_a_token_with_the_role_reaches_the_handler(signer: Signer, settings: Settings) -> None:
    assert _answer(signer.token(("Findings.Read",)))[::2] == (200, {"ok": True})
    assert _answer(signer.token(("Findings.Write",)), write=True)[::2] == (200, {"ok": True})


def test_refusals_answer_with_the_one_error_body(signer: Signer, settings: Settings) -> None:
    status, headers, body = _answer(signer.token(("Findings.Read",)), write=True)
    assert (status, body) == (
        403,
        {
            "error": {
                "code": "Forbidden",
                "message": "the Entra ID token has no app role for this request (Findings.Write)",
            }
        },
    )
    assert "WWW-Authenticate" not in headers
    status, headers, body = _answer(signer.token(aud="api://another-app"))
    assert (status, body) == (
        401,
        {"error": {"code": "Unauthorized", "message": "Entra ID token refused: wrong audience (aud)"}},
    )
    assert headers["WWW-Authenticate"] == 'Bearer realm="acrguard"'
    none = forged({"alg": "none", "kid": signer.kid}, Signer.claims(("Findings.Write",)))
    assert _answer(none, write=True)[0] == 401


def test_behind_a_host_that_checks_keys_the_token_is_still_required(
    signer: Signer, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handlers run in the Functions host's Python worker on App Service: the host checked a function key.
    monkeypatch.setitem(sys.modules, "azure_functions_worker", types.ModuleType("azure_functions_worker"))
    in_azure = replace(settings, website_instance_id="instance-1")
    assert authorize(_request({}), Settings(website_instance_id="instance-1")) is None  # no tenant: the key suffices
    denial = authorize(_request({}), in_azure)
    assert denial is not None and (denial.status, denial.message) == (
        401,
        "missing or wrong Authorization: Bearer (an Entra ID token)",
    )
    assert authorize(_request({"Authorization": f"Bearer {signer.token()}"}), in_azure) is None
    assert authorize(_request({"Authorization": f"Bearer {signer.token()}"}), in_azure, events=True) is not None
    sender = signer.token(("Events.Send",))
    assert authorize(_request({"Authorization": f"Bearer {sender}"}, "POST"), in_azure, events=True) is None
