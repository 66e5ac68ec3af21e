"""Who may call the handlers.

acrguard's own credentials (`scanner.service.access`): `ACRGUARD_API_KEY` as `x-api-key`,
`ACRGUARD_API_TOKEN` as `Authorization: Bearer`, for the event endpoints `ACRGUARD_EVENTS_TOKEN` as
`Authorization: Bearer`, and with `ACRGUARD_ENTRA_TENANT_ID` Entra ID access tokens as `Authorization:
Bearer`, their app roles deciding what they open. When one is configured for a request's scope, it is
required, in Azure too (behind the Functions host's key check, which comes first on routes that are not
anonymous).

Without one, the handlers trust a Functions host's function-key check only where they know it happens:
inside the host's Python worker (its module is loaded in this process, which no other way of running the
handlers does) on an App Service instance (`WEBSITE_INSTANCE_ID`), or where the operator says the host
checks keys (`ACRGUARD_TRUST_FUNCTIONS_HOST=true`, a Functions container). The Core Tools host checks no
keys locally and `acrguard serve` is no Functions host, so `WEBSITE_SITE_NAME` or `WEBSITE_INSTANCE_ID`
alone (a container on App Service has them) opens nothing. Otherwise every request is refused, except
reads when `ACRGUARD_ALLOW_ANONYMOUS=true` opens them; writes and events never are anonymous.

The Event Grid trigger gets no request to check: in Azure the host checks the `eventgrid_extension`
system key in the subscription's `?code=` (and App Service Authentication, when enabled, an Entra
ID-authenticated delivery's token); under `acrguard serve` its webhook checks the delivery
(`access.delivery_checked`); anywhere else a delivery is refused.
"""

from __future__ import annotations

import sys

import azure.functions as func

from scanner.model.settings import Settings, env_name
from scanner.service import access
from scanner.service.config import clients

KEY_SETTING = env_name("api_key")
TOKEN_SETTING = env_name("api_token")
EVENTS_SETTING = env_name("events_token")
TENANT_SETTING = env_name("entra_tenant_id")
# The Functions host's Python worker: `azure_functions_worker` up to Python 3.12, `proxy_worker` after.
WORKER_MODULES = ("azure_functions_worker", "proxy_worker")


def http_auth_level(settings: Settings) -> func.AuthLevel:
    """The Functions host's key check for the HTTP routes: a function key (FUNCTION), unless Microsoft Entra ID
    is configured. Then acrguard checks every request's token itself (`authorize` never trusts the host once a
    tenant is set), and a caller with only a token (Azure's SDKs, Entra-authenticated services) must get through
    the host: ANONYMOUS at the host, authenticated here."""
    return func.AuthLevel.ANONYMOUS if settings.entra_tenant_id else func.AuthLevel.FUNCTION


def under_functions_worker() -> bool:
    """Whether these handlers run in the Functions host's Python worker process."""
    return any(name in sys.modules for name in WORKER_MODULES)


def host_checks_keys(settings: Settings) -> bool:
    """Whether a Functions host known to check function keys stands in front of the handlers."""
    return under_functions_worker() and (settings.on_app_service or settings.trust_functions_host)


def authorize(
    req: func.HttpRequest, settings: Settings | None = None, *, write: bool = False, events: bool = False
) -> access.Denial | None:
    """None when the caller may read findings (with `write`: change something; with `events`: deliver
    registry events), else why not (the handler answers with its status: 401, or 403 for an Entra ID token
    without the role). `settings` default to the process's (`clients.settings()`)."""
    settings = clients.settings() if settings is None else settings
    scope: access.Scope = "events" if events else "write" if write else "read"
    if access.configured(settings, scope):
        return access.check(dict(req.headers), settings, scope)
    if host_checks_keys(settings):
        return None  # the host has already required a function key
    if scope == "read" and settings.allow_anonymous:
        return None
    also = f", or {EVENTS_SETTING} for event senders" if scope == "events" else ""
    return access.unauthorized(
        f"no credentials configured: set {KEY_SETTING}, {TOKEN_SETTING} or {TENANT_SETTING}{also}"
    )


def authorize_delivery(settings: Settings | None = None) -> str | None:
    """None when an Event Grid trigger's delivery came through a host that checked its key, else why not."""
    settings = clients.settings() if settings is None else settings
    if access.delivery_checked() or host_checks_keys(settings):
        return None
    return (
        "Event Grid delivery refused: no host checked its key here (Azure's Functions host on App Service, "
        f"{env_name('trust_functions_host')}=true, or acrguard serve's webhook do)"
    )
