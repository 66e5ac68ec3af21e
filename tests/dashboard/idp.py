"""A stand-in for Entra ID's sign-in endpoints on 127.0.0.1, for the dashboard's sign-in with Microsoft:
the tenant's JWKS, an authorize endpoint that signs the user in at once (as if they had typed their
password) and sends the browser back with a code, and a token endpoint that redeems each code once, checks
the client secret, the redirect URI and the PKCE verifier against the challenge, and answers with an ID
token signed RS256 by the test's key (audience the client id, the nonce of the authorize request)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.httpserving import send_json, serving
from tests.service.entra_support import TENANT, Signer, jwks

CLIENT_ID = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
CLIENT_SECRET = "dashboard-client-secret"
USER = "ada@contoso.example"


@dataclass
class IdentityProvider:
    signer: Signer
    base: str = ""
    roles: tuple[str, ...] | None = ("Findings.Write",)  # what the next ID token says
    nonce: str | None = None  # a nonce to put in the next ID token instead of the authorize request's
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def authority(self) -> str:
        return self.base

    @property
    def jwks_url(self) -> str:
        return f"{self.base}/{TENANT}/discovery/v2.0/keys"

    def settings(self) -> dict[str, str]:
        """The environment of a dashboard that signs users in here."""
        return {
            "ACRGUARD_ENTRA_TENANT_ID": TENANT,
            "ACRGUARD_ENTRA_AUDIENCE": "api://acrguard-test",
            "ACRGUARD_ENTRA_JWKS_URL": self.jwks_url,
            "ACRGUARD_ENTRA_CLIENT_ID": CLIENT_ID,
            "ACRGUARD_ENTRA_CLIENT_SECRET": CLIENT_SECRET,
            "ACRGUARD_ENTRA_AUTHORITY": self.authority,
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.authorize_requests.append(query)
        wanted = {"client_id": CLIENT_ID, "response_type": "code", "code_challenge_method": "S256"}
        if any(query.get(k) != v for k, v in wanted.items()) or "openid" not in query.get("scope", "").split():
            return 400, {}
        code = secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = {
                "nonce": query.get("nonce", ""),
                "challenge": query.get("code_challenge", ""),
                "redirect_uri": query["redirect_uri"],
            }
        back = urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": f"{query['redirect_uri']}?{back}"}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.token_requests.append(form)
            issued = self.codes.pop(form.get("code", ""), None)  # each code once
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        checks = (
            (issued is not None, "AADSTS70008: the code has expired or was already redeemed"),
            (form.get("grant_type") == "authorization_code", "AADSTS70003: unsupported grant type"),
            (form.get("client_id") == CLIENT_ID, "AADSTS700016: unknown application"),
            (form.get("client_secret") == CLIENT_SECRET, "AADSTS7000215: invalid client secret"),
            (issued is not None and issued["redirect_uri"] == form.get("redirect_uri"), "AADSTS50011: redirect"),
            (issued is not None and issued["challenge"] == challenge, "AADSTS501481: code verifier mismatch"),
        )
        for ok, description in checks:
            if not ok:
                return 400, {"error": "invalid_grant", "error_description": description}
        assert issued is not None
        id_token = self.signer.token(
            self.roles,
            aud=CLIENT_ID,
            azp=None,
            nonce=self.nonce if self.nonce is not None else issued["nonce"],
            preferred_username=USER,
        )
        return 200, {"token_type": "Bearer", "id_token": id_token, "access_token": "unused", "expires_in": 3600}


@contextmanager
def identity_provider(signer: Signer) -> Iterator[IdentityProvider]:
    idp = IdentityProvider(signer)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            if parts.path == f"/{TENANT}/discovery/v2.0/keys":
                send_json(self, 200, jwks(idp.signer))
            elif parts.path == f"/{TENANT}/oauth2/v2.0/authorize":
                status, headers = idp.authorize(query)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                send_json(self, 404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            if urlsplit(self.path).path != f"/{TENANT}/oauth2/v2.0/token":
                send_json(self, 404, {"error": "not_found"})
                return
            if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                send_json(self, 400, {"error": "invalid_request"})
                return
            status, body = idp.token(form)
            send_json(self, status, body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as base:
        idp.base = base
        yield idp
