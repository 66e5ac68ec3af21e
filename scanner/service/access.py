"""The credentials acrguard checks itself, shared by the function handlers (`scanner.azure.auth`) and the
host `acrguard serve` plays (`scanner.localhost.serve`).

Each secret is accepted in one header only, so a leaked token is never a key and the reverse:

    ACRGUARD_API_KEY       x-api-key                reads and writes
    ACRGUARD_API_TOKEN     Authorization: Bearer    reads and writes
    ACRGUARD_EVENTS_TOKEN  Authorization: Bearer    registry events only (notifications, Event Grid)

Every configured secret of a scope is compared, in constant time, whatever came first, so timing tells
nothing about which one nearly matched. What a Functions host checks (function keys) is its own business:
`delivery_checked` is how the host serve plays tells a handler that it checked an event delivery.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from scanner.model.settings import Settings, env_name

Scope = Literal["read", "write", "events"]

API_KEY_HEADER = "x-api-key"


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


def wanted(accepted: list[Credential]) -> str:
    """Where a refused caller should send a credential, for the 401's message."""
    kinds = {c.header for c in accepted}
    names = (("x-api-key", "x-api-key"), ("bearer", "Authorization: Bearer"))
    return " / ".join(name for kind, name in names if kind in kinds)


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
