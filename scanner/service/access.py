"""The credentials acrguard checks itself, shared by the function handlers (`scanner.azure.auth`) and the
host `acrguard serve` plays (`scanner.localhost.serve`).

Each secret is accepted in one header only, so a leaked token is never a key and the reverse:

    ACRGUARD_API_KEY       x-api-key                reads and writes
    ACRGUARD_API_TOKEN     Authorization: Bearer    reads and writes
    ACRGUARD_EVENTS_TOKEN  Authorization: Bearer    registry events only (notifications, Event Grid)
    Entra ID access token  Authorization: Bearer    as its app roles say (`scanner.service.entra`):
                                                    Findings.Read reads, Findings.Write everything,
                                                    Events.Send registry events only

Every configured secret of a scope is compared, in constant time, whatever came first, so timing tells
nothing about which one nearly matched. A bearer that equals a configured token is that token and is never
read as a JWT; one that does not is verified as an Entra ID token (when a tenant is configured), so a JWT
opens nothing by matching a secret, and the `x-api-key` header is only ever compared with the API key.

A refusal (`Denial`) is 401 when no acceptable credential came (missing, wrong, expired, another audience,
an unknown signing key...), 403 when a valid Entra ID token came without the app role the request needs (the
caller is known; another token will not help until the role is assigned), 503 when the signing keys cannot
be read, 500 when the Entra ID settings cannot be used.

What a Functions host checks (function keys) is its own business: `delivery_checked` is how the host serve
plays tells a handler that it checked an event delivery.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from scanner.model.settings import Settings, SettingsError, env_name
from scanner.service import entra, jwks

log = logging.getLogger(__name__)

Scope = Literal["read", "write", "events"]

API_KEY_HEADER = "x-api-key"
# The app roles that open each scope.
SCOPE_ROLES: Mapping[Scope, frozenset[str]] = {
    "read": frozenset((entra.READ_ROLE, entra.WRITE_ROLE)),
    "write": frozenset((entra.WRITE_ROLE,)),
    "events": frozenset((entra.EVENTS_ROLE, entra.WRITE_ROLE)),
}


@dataclass(frozen=True)
class Denial:
    """Why a request is refused, as its error response says it."""

    status: Literal[401, 403, 500, 503]
    code: str
    message: str
    token_read: bool = False  # an Entra ID token was read and refused: the message says what was wrong with it


def unauthorized(message: str, token_read: bool = False) -> Denial:
    return Denial(401, "Unauthorized", message, token_read)


@dataclass(frozen=True)
class Credential:
    setting: str  # the variable that configures it, for messages
    header: Literal["x-api-key", "bearer"]
    secret: str


def credentials(settings: Settings, scope: Scope) -> list[Credential]:
    """The configured secrets that open `scope`: the API key and token open everything; the events token
    only the event endpoints."""
    found = [
        Credential(env_name("api_key"), "x-api-key", settings.api_key),
        Credential(env_name("api_token"), "bearer", settings.api_token),
    ]
    if scope == "events":
        found.append(Credential(env_name("events_token"), "bearer", settings.events_token))
    return [c for c in found if c.secret]


def bearer(headers: Mapping[str, str]) -> str:
    """The credential of an `Authorization: Bearer …` header ("" when there is none or another scheme)."""
    scheme, _, credential = _lowered(headers).get("authorization", "").strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def matches(headers: Mapping[str, str], accepted: list[Credential]) -> bool:
    """Whether a presented credential is one of `accepted`, each looked for in its own header."""
    offered = {"x-api-key": _lowered(headers).get(API_KEY_HEADER, ""), "bearer": bearer(headers)}
    # Every configured secret is compared (no early exit).
    results = [same(offered[c.header], c.secret) for c in accepted]
    return any(results)


def same(offered: str, secret: str) -> bool:
    """Constant-time equality; an empty offer never matches."""
    # compare_digest on bytes: on str it raises for non-ASCII, and a header may hold anything.
    equal = hmac.compare_digest(offered.encode("utf-8", "surrogateescape"), secret.encode("utf-8", "surrogateescape"))
    return equal and bool(offered)


def wanted(accepted: list[Credential], tokens: bool = False) -> str:
    """Where a refused caller should send a credential, for the 401's message (`tokens`: Entra ID tokens
    are accepted too)."""
    kinds = {c.header for c in accepted} | ({"entra"} if tokens else set())
    names = (
        ("x-api-key", "x-api-key"),
        ("bearer", "Authorization: Bearer"),
        ("entra", "Authorization: Bearer (an Entra ID token)"),
    )
    return " / ".join(name for kind, name in names if kind in kinds)


def configured(settings: Settings, scope: Scope) -> bool:
    """Whether acrguard checks a credential of its own for `scope` (a secret, or Entra ID tokens)."""
    return bool(credentials(settings, scope)) or bool(settings.entra_tenant_id)


def check(headers: Mapping[str, str], settings: Settings, scope: Scope) -> Denial | None:
    """None when `headers` carry a credential that opens `scope` (a configured secret in its header, or a
    valid Entra ID token with a role for it), else the Denial. Meant for when `configured` says so."""
    accepted = credentials(settings, scope)
    if matches(headers, accepted):
        return None
    try:
        verifier = entra_verifier(settings)
    except SettingsError as err:
        log.error("Entra ID tokens cannot be checked: %s", err)
        return Denial(500, "Misconfigured", str(err))
    token = bearer(headers)
    if verifier is not None and token and entra.looks_like_jwt(token):
        return _token_denial(verifier, token, scope)
    hint = ""
    if entra.looks_like_jwt(_lowered(headers).get(API_KEY_HEADER, "")):
        hint = " (x-api-key carries the API key only; send a token as Authorization: Bearer)"
    return unauthorized(f"missing or wrong {wanted(accepted, verifier is not None)}{hint}")


def _token_denial(verifier: entra.TokenVerifier, token: str, scope: Scope) -> Denial | None:
    try:
        principal = verifier.verify(token)
    except entra.TokenRefused as err:
        return unauthorized(f"Entra ID token refused: {err}", token_read=True)
    except entra.KeysUnavailable as err:
        log.error("Entra ID signing keys unavailable: %s", err)
        return Denial(503, "Unavailable", "Entra ID signing keys unavailable; try again later", True)
    if principal.roles & SCOPE_ROLES[scope]:
        return None
    needed = " or ".join(sorted(SCOPE_ROLES[scope]))
    return Denial(403, "Forbidden", f"the Entra ID token has no app role for this request ({needed})", True)


# One verifier, with its cached keys, per Entra ID configuration (tests and serve reconfigure).
_VERIFIERS: dict[entra.EntraConfig, entra.TokenVerifier] = {}
_VERIFIERS_LOCK = threading.Lock()


def entra_verifier(settings: Settings) -> entra.TokenVerifier | None:
    """The verifier of `settings`' Entra ID configuration (None without a tenant), made on first use and kept
    with its keys; SettingsError when the configuration cannot be used."""
    config = entra.config_from(settings)
    if config is None:
        return None
    return cached_verifier(config)


def cached_verifier(config: entra.EntraConfig) -> entra.TokenVerifier:
    """The verifier of `config`, made on first use and kept with its keys."""
    with _VERIFIERS_LOCK:
        found = _VERIFIERS.get(config)
        if found is None:
            found = _VERIFIERS[config] = jwks.verifier(config)
        return found


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


# --------------------------------------------------------------------------------------------------
# event deliveries checked by the host

_DELIVERY_CHECKED: ContextVar[bool] = ContextVar("acrguard_delivery_checked", default=False)


@contextmanager
def checked_delivery() -> Iterator[None]:
    """Marks the event handlers called inside as reached through a delivery whose credential the caller
    (serve's Event Grid endpoint) checked: the Event Grid trigger receives no request to check itself."""
    token = _DELIVERY_CHECKED.set(True)
    try:
        yield
    finally:
        _DELIVERY_CHECKED.reset(token)


def delivery_checked() -> bool:
    return _DELIVERY_CHECKED.get()
