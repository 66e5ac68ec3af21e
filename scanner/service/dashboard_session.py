"""The dashboard's sign-in: who a browser request is, from a signed session cookie or the API's own headers.

A browser cannot send `x-api-key`, so the login form takes the API key (or token) once and answers with a
session cookie: `HttpOnly`, `SameSite=Strict`, `Secure` when the page came over https, scoped to the
dashboard's path, and signed with HMAC-SHA256 under a key derived from the configured credentials. No new
secret to keep: every instance sharing the credentials accepts the others' sessions, and changing the API
key ends every session. A session expires after `SESSION_SECONDS`; its CSRF token (every form that changes
something carries it) derives from the session's own random nonce.

Who may do what mirrors the API (`scanner.service.access`): the API key and token open reads and writes,
so a browser signed in with them is a writer; one signed in with Microsoft (`scanner.service.entra_signin`)
is what its app roles say, and the session carries that. Without credentials configured,
`ACRGUARD_ALLOW_ANONYMOUS=true` lets anyone read (never write).

The same signing serves a sign-in in progress (`seal`/`unseal` with another kind), so its state cannot be
taken for a session nor the reverse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

from scanner.model.settings import Settings
from scanner.service import access

COOKIE = "acrguard_session"
COOKIE_PATH = "/api/dashboard"
SESSION_SECONDS = 8 * 3600
# Bounds what is parsed from a client: a real cookie is ~150 characters.
_MAX_COOKIE = 1024
_KEY_LABEL = b"acrguard dashboard session v1"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: `can_write` (change rules, requeue), and for a session its CSRF token and expiry."""

    can_write: bool
    signed_in: bool
    csrf: str = ""
    expires: int = 0  # Unix time


def signing_key(settings: Settings) -> bytes | None:
    """The key sessions are signed with, derived from the configured API key and token and the Entra ID
    client secret; None without any (nobody can sign in)."""
    secrets_held = [c.secret for c in access.credentials(settings, "write")]
    if settings.entra_client_id and settings.entra_client_secret:
        secrets_held.append(settings.entra_client_secret)
    if not secrets_held:
        return None
    material = b"\0".join(secret.encode("utf-8", "surrogateescape") for secret in secrets_held)
    return hmac.new(material, _KEY_LABEL, hashlib.sha256).digest()


def key_sign_in(settings: Settings) -> bool:
    """Whether the login form's key can sign anyone in (an API key or token is configured)."""
    return bool(access.credentials(settings, "write"))


def credential_ok(settings: Settings, offered: str) -> bool:
    """Whether the key typed into the login form is the API key or the API token (every one compared)."""
    accepted = access.credentials(settings, "write")
    results = [access.same(offered.strip(), c.secret) for c in accepted]
    return any(results)


def issue(settings: Settings, now: int, can_write: bool = True) -> str:
    """A new session's cookie value: `payload.signature`, both URL-safe base64. The API key's sessions
    write; an Entra ID sign-in's write only with the app role that opens writes."""
    payload = {"exp": now + SESSION_SECONDS, "n": secrets.token_urlsafe(16), "w": int(can_write)}
    return seal(settings, "session", payload)


def session(settings: Settings, value: str, now: int) -> Viewer | None:
    """The viewer a cookie value names, or None when it is missing, forged, from other credentials or expired."""
    key = signing_key(settings)
    payload = unseal(settings, "session", value, now)
    if key is None or payload is None:
        return None
    try:
        expires, nonce, can_write = int(payload["exp"]), str(payload["n"]), bool(payload.get("w", 1))
    except (ValueError, KeyError, TypeError):
        return None
    csrf = hmac.new(key, b"csrf\0" + nonce.encode(), hashlib.sha256).hexdigest()
    return Viewer(can_write=can_write, signed_in=True, csrf=csrf, expires=expires)


def seal(settings: Settings, kind: str, payload: Mapping[str, Any]) -> str:
    """`payload` (with its `exp`) as a signed cookie value of `kind` (a session, a sign-in in progress): a
    value of one kind is never accepted as another."""
    key = signing_key(settings)
    if key is None:
        raise ValueError("no credentials configured: nobody can sign in")
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_b64(_sign(key, _kind(kind, body)))}"


def unseal(settings: Settings, kind: str, value: str, now: int) -> dict[str, Any] | None:
    """The payload of a cookie value `seal` made for `kind`, None when missing, forged, of another kind or
    other credentials, or expired."""
    key = signing_key(settings)
    if key is None or not value or len(value) > _MAX_COOKIE or value.count(".") != 1:
        return None
    body, signature = value.split(".")
    try:
        if not hmac.compare_digest(_unb64(signature), _sign(key, _kind(kind, body))):
            return None
        payload = json.loads(_unb64(body))
        expires = int(payload["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(payload, dict) or expires <= now:
        return None
    return payload


def _kind(kind: str, body: str) -> str:
    # A session is signed over its body alone, as before sign-in flows existed: sessions issued then stay valid.
    return body if kind == "session" else f"{kind}.{body}"


def viewer(settings: Settings, headers: Mapping[str, str], now: int) -> Viewer | None:
    """Who a request is: its session cookie, else the API's credential headers (scripts, the benchmark),
    else an anonymous reader where anonymous reads are open; None: send to the login page."""
    lowered = {k.lower(): v for k, v in headers.items()}
    found = session(settings, cookie_value(lowered.get("cookie", "")), now)
    if found is not None:
        return found
    accepted = access.credentials(settings, "write")
    if accepted and access.matches(lowered, accepted):
        return Viewer(can_write=True, signed_in=False)
    if not accepted and settings.allow_anonymous:
        return Viewer(can_write=False, signed_in=False)
    return None


def csrf_ok(viewer: Viewer, offered: str) -> bool:
    """A form's token against the session's; a caller with credential headers sends none and needs none
    (a browser cannot be made to send those headers by another site)."""
    if not viewer.signed_in:
        return viewer.can_write
    return bool(offered) and hmac.compare_digest(offered.encode("utf-8", "replace"), viewer.csrf.encode())


def set_cookie(value: str, secure: bool) -> str:
    """The `Set-Cookie` header of a session (`value` "" ends it)."""
    age = SESSION_SECONDS if value else 0
    flags = f"Path={COOKIE_PATH}; Max-Age={age}; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={value}; {flags}" + ("; Secure" if secure else "")


def cookie_value(header: str, name: str = COOKIE) -> str:
    """A cookie's value from a `Cookie` header ("" when absent or unparsable); the session's by default."""
    if not header or len(header) > 8 * _MAX_COOKIE:
        return ""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


def _sign(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode("ascii", "replace"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
