"""Entra ID tokens for tests: an RSA key made in the test signs them as Entra ID would (RS256, `kid`, the
tenant's issuer, `tid`, `aud`, `roles`), and a local server hands out its JWKS as the tenant's keys endpoint
does, counting the fetches. Also the tokens an attacker would forge (`alg: none`, HS256 keyed with the
public key), built by hand because PyJWT rightly refuses to make them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.httpserving import send_json, serving

TENANT = "0b3f4a1c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
OTHER_TENANT = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
AUDIENCE = "api://acrguard-test"
CLIENT_ID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
V1_ISSUER = f"https://sts.windows.net/{TENANT}/"
V2_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Signer:
    """One signing key of the tenant, named `kid`."""

    kid: str = "test-key-1"
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        """The public key as the tenant's JWKS lists it."""
        document: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {**document, "kid": self.kid, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(
        self, roles: tuple[str, ...] | None = ("Findings.Read",), *, kid: str | None = None, **claims: Any
    ) -> str:
        """A token for AUDIENCE from TENANT (v2 issuer), valid for an hour, with `roles` (None: no claim);
        `claims` override (None drops one)."""
        payload = self.claims(roles, **claims)
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    @staticmethod
    def claims(roles: tuple[str, ...] | None = ("Findings.Read",), **claims: Any) -> dict[str, Any]:
        now = int(time.time())
        payload: dict[str, Any] = {
            "aud": AUDIENCE,
            "iss": V2_ISSUER,
            "tid": TENANT,
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "oid": "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9",
            "azp": CLIENT_ID,
            "roles": None if roles is None else list(roles),
        }
        payload.update(claims)
        return {k: v for k, v in payload.items() if v is not None}


def forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS put together by hand; `signature` None-free (empty for `alg: none`)."""
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


def hs256_with(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    """A token signed with HMAC-SHA256 keyed by `secret` (the public key's PEM, or the API token)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def jwks(*signers: Signer) -> dict[str, Any]:
    return {"keys": [s.jwk() for s in signers]}


def write_jwks(path: Path, *signers: Signer) -> Path:
    path.write_text(json.dumps(jwks(*signers)))
    return path


@dataclass
class JwksEndpoint:
    """What the local keys endpoint serves (changeable while it runs) and how often it was asked."""

    document: Any
    fetches: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def jwks_endpoint(
    document: Any, tls: tuple[Path, Path] | None = None, raw: bytes | None = None
) -> Iterator[JwksEndpoint]:
    """Serves `document` (or the bytes `raw`) at `/{TENANT}/discovery/v2.0/keys` of a local HTTP(S) server."""
    endpoint = JwksEndpoint(document)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with endpoint.lock:
                endpoint.fetches += 1
            if raw is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                return
            send_json(self, 200, endpoint.document)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler, tls) as base:
        endpoint.url = f"{base}/{TENANT}/discovery/v2.0/keys"
        yield endpoint
