"""Who may read findings. In Azure the host checks function keys (auth level FUNCTION) before a handler
runs. Elsewhere (Core Tools, a container) the host checks nothing, so the handlers do: a configured
`ACRGUARD_API_KEY` (header `x-api-key`) or `ACRGUARD_API_TOKEN` (`Authorization: Bearer`). With neither
configured outside Azure, findings stay closed unless `ACRGUARD_ALLOW_ANONYMOUS=true` says otherwise; that
setting opens reads only: writes (scan requests, rules, requeues) always need a key or token.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping

import azure.functions as func

KEY_SETTING = "ACRGUARD_API_KEY"
TOKEN_SETTING = "ACRGUARD_API_TOKEN"
ANONYMOUS_SETTING = "ACRGUARD_ALLOW_ANONYMOUS"
# App Service sets these on every Azure instance; Core Tools and plain containers do not.
_AZURE_MARKERS = ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME")


def _secrets(env: Mapping[str, str]) -> list[str]:
    return [value for value in (env.get(KEY_SETTING, ""), env.get(TOKEN_SETTING, "")) if value]


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


def authorize(
    req: func.HttpRequest, env: Mapping[str, str] | None = None, *, write: bool = False
) -> func.HttpResponse | None:
    """None when the caller may read findings (or, with `write`, change something), else the 401 to return."""
    env = os.environ if env is None else env
    secrets = _secrets(env)
    if secrets:
        offered = _presented(dict(req.headers))
        # Every pair is compared (no early exit) so timing does not tell which secret nearly matched.
        ok = [_matches(o, s) for o in offered for s in secrets]
        return None if any(ok) else _unauthorized("missing or wrong x-api-key / Authorization: Bearer")
    if any(env.get(marker) for marker in _AZURE_MARKERS):
        return None  # the Functions host has already required a function key
    if not write and env.get(ANONYMOUS_SETTING, "").strip().lower() == "true":
        return None
    return _unauthorized(f"no credentials configured: set {KEY_SETTING} or {TOKEN_SETTING}")


def _unauthorized(message: str) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"error": {"code": "Unauthorized", "message": message}}),
        status_code=401,
        mimetype="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="acrguard"'},
    )
