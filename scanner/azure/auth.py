"""Who may read findings. In Azure the host checks function keys (auth level FUNCTION) before a handler
runs. Elsewhere (Core Tools, a container) the host checks nothing, so the handlers do: a configured
`ACRGUARD_API_KEY` (header `x-api-key`) or `ACRGUARD_API_TOKEN` (`Authorization: Bearer`). With neither
configured outside Azure, findings stay closed unless `ACRGUARD_ALLOW_ANONYMOUS=true` says otherwise; that
setting opens reads only: writes (scan requests, rules, requeues) always need a key or token.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import azure.functions as func

from scanner.model.settings import Settings, env_name
from scanner.service.config import clients

KEY_SETTING = env_name("api_key")
TOKEN_SETTING = env_name("api_token")


def _secrets(settings: Settings) -> list[str]:
    return [value for value in (settings.api_key, settings.api_token) if value]


def _presented(headers: Mapping[str, str]) -> list[str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    offered = [lowered.get("x-api-key", "")]
    scheme, _, credential = lowered.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        offered.append(credential.strip())
    return [value for value in offered if value]


def _matches(offered: str, secret: str) -> bool:
    # compare_digest on bytes: constant time, and str arguments must be ASCII or it raises.
    return hmac.compare_digest(offered.encode(), secret.encode())


def authorize(req: func.HttpRequest, settings: Settings | None = None, *, write: bool = False) -> str | None:
    """None when the caller may read findings (or, with `write`, change something), else why not (the
    handler answers 401 with it). `settings` default to the process's (`clients.settings()`)."""
    settings = clients.settings() if settings is None else settings
    secrets = _secrets(settings)
    if secrets:
        offered = _presented(dict(req.headers))
        # Every pair is compared (no early exit) so timing does not tell which secret nearly matched.
        ok = [_matches(o, s) for o in offered for s in secrets]
        return None if any(ok) else "missing or wrong x-api-key / Authorization: Bearer"
    if settings.in_azure:
        return None  # the Functions host has already required a function key
    if not write and settings.allow_anonymous:
        return None
    return f"no credentials configured: set {KEY_SETTING} or {TOKEN_SETTING}"
