"""Every setting acrguard takes from its environment (app settings in Azure, environment variables locally),
each declared once with its variable, type, default and meaning, and the one place that reads them:
`Settings.from_environ()`.

The composition roots (the CLI commands, `acrguard serve` and `worker`, the function app's `clients`) build a
`Settings` and hand plain values down: nothing else in scanner reads the environment. README.md's settings
table is checked against these declarations (tests/model/test_settings.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from scanner.model.errors import AcrguardError
from scanner.model.limits import Limits
from scanner.model.severity_order import DEFAULT_SEVERITY_ORDER, SeverityOrderError, parse_severity_order
from scanner.model.types import INCOMPLETE_POLICIES, IncompletePolicy

log = logging.getLogger(__name__)
T = TypeVar("T")


class SettingsError(AcrguardError):
    """A setting holds a value that cannot be used; the message is one line naming the variable."""


@dataclass(frozen=True)
class Setting:
    """One declared setting. `env` ending in `<NAME>` declares a family: every variable with that prefix."""

    env: str
    default: object
    meaning: str  # one line, as README.md's settings table gives it
    reader: Callable[[Setting, Mapping[str, str]], object]  # one of the readers below

    @property
    def prefix(self) -> str | None:
        return self.env.removesuffix("<NAME>") if self.env.endswith("<NAME>") else None

    def read(self, environ: Mapping[str, str]) -> object:
        """Its value in `environ`: the default when unset or empty."""
        return self.reader(self, environ)


# --------------------------------------------------------------------------------------------------
# readers: how a value is read; an unset or empty variable is the default


def _text(setting: Setting, environ: Mapping[str, str]) -> object:
    """Surrounding blanks dropped."""
    return environ.get(setting.env, "").strip() or setting.default


def _verbatim(setting: Setting, environ: Mapping[str, str]) -> object:
    """As given (paths, secrets): an empty value is unset."""
    return environ.get(setting.env) or setting.default


def _flag(setting: Setting, environ: Mapping[str, str]) -> object:
    """Only the word `true` (any case) turns it on: a setting that opens access must be said exactly."""
    return environ.get(setting.env, "").strip().lower() == "true"


def _hosts(setting: Setting, environ: Mapping[str, str]) -> object:
    """Comma-separated host[:port]s, compared in lower case."""
    return frozenset(h.strip().lower() for h in environ.get(setting.env, "").split(",") if h.strip())


# A registry's host as the distribution reference names it: a DNS name or a bracketed IPv6 address, and a port.
_REGISTRY_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?"
)
REGISTRY_KINDS = ("identity", "basic", "docker", "anonymous")


def _registry_host(text: str, where: str) -> str:
    host = text.strip().lower()
    if not _REGISTRY_HOST.fullmatch(host):
        raise SettingsError(f"{where}: {text.strip()[:80]!r} is not a registry HOST[:PORT]")
    return host


def _registry_list(setting: Setting, environ: Mapping[str, str]) -> object:
    """Comma-separated `HOST[:PORT]` entries, each with an optional `=KIND`; hosts compared in lower case. The
    kind is "" where none is given (its user picks the default)."""
    found: dict[str, str] = {}
    for item in environ.get(setting.env, "").split(","):
        if not item.strip():
            continue
        text, _, kind = item.partition("=")
        host = _registry_host(text, setting.env)
        kind = kind.strip().lower()
        if kind and kind not in REGISTRY_KINDS:
            raise SettingsError(
                f"{setting.env}: {host}: unknown credential kind {kind[:20]!r} (known: {', '.join(REGISTRY_KINDS)})"
            )
        if host in found:
            raise SettingsError(f"{setting.env}: {host} is named twice")
        found[host] = kind
    return tuple(found.items())


# A container registry's Azure resource id.
_REGISTRY_RESOURCE = re.compile(
    r"/subscriptions/([^/]{1,100})/resourceGroups/([^/]{1,100})/providers/Microsoft\.ContainerRegistry"
    r"/registries/([A-Za-z0-9]{1,50})",
    re.IGNORECASE,
)


def _registry_resources(setting: Setting, environ: Mapping[str, str]) -> object:
    """Comma-separated registry resource ids, each optionally after `HOST[:PORT]=` (without one, the login server
    is `<name>.azurecr.io`): `(host, subscription, resource group, name)` each."""
    found: dict[str, tuple[str, str, str, str]] = {}
    for item in environ.get(setting.env, "").split(","):
        if not item.strip():
            continue
        text, _, resource = item.rpartition("=")
        match = _REGISTRY_RESOURCE.fullmatch(resource.strip())
        if match is None:
            raise SettingsError(f"{setting.env}: {resource.strip()[:120]!r} is not a container registry resource id")
        sub, group, name = match.groups()
        host = _registry_host(text, setting.env) if text.strip() else f"{name.lower()}.azurecr.io"
        if host in found:
            raise SettingsError(f"{setting.env}: {host} is named twice")
        found[host] = (host, sub, group, name)
    return tuple(found.values())


def _credentials(setting: Setting, environ: Mapping[str, str]) -> object:
    """A JSON object of `HOST[:PORT]` to `{"username", "password"}`; errors never quote a value (they are
    secrets)."""
    text = environ.get(setting.env, "").strip()
    if not text:
        return setting.default
    try:
        document = json.loads(text)
    except ValueError:
        raise SettingsError(f"{setting.env}: not a JSON object of HOST to {{username, password}}") from None
    if not isinstance(document, dict):
        raise SettingsError(f"{setting.env}: not a JSON object of HOST to {{username, password}}")
    found: dict[str, tuple[str, str]] = {}
    for key, entry in document.items():
        host = _registry_host(key, setting.env)
        if not isinstance(entry, dict) or set(entry) != {"username", "password"}:
            raise SettingsError(f"{setting.env}: {host}: expected exactly the fields username and password")
        username, password = entry["username"], entry["password"]
        if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
            raise SettingsError(f"{setting.env}: {host}: username and password must be non-empty strings")
        if host in found:
            raise SettingsError(f"{setting.env}: {host} is named twice")
        found[host] = (username, password)
    return tuple((host, user, password) for host, (user, password) in found.items())


def _names(setting: Setting, environ: Mapping[str, str]) -> object:
    """Comma-separated names, in the order given."""
    return tuple(n.strip() for n in environ.get(setting.env, "").split(",") if n.strip())


def _whole(unit: str) -> Callable[[Setting, Mapping[str, str]], object]:
    """A whole number; anything else is a SettingsError naming the variable (its range is its user's to check)."""

    def read(setting: Setting, environ: Mapping[str, str]) -> object:
        text = environ.get(setting.env, "").strip()
        if not text:
            return setting.default
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"{setting.env}: {text[:40]!r} is not a whole number of {unit}") from None

    return read


def _window(setting: Setting, environ: Mapping[str, str]) -> object:
    """A timer's window, at least 1: a bad value is logged and the default used, so that one typo does not
    stop the timer."""
    text = environ.get(setting.env, "").strip()
    try:
        value = int(text) if text else setting.default
    except ValueError:
        log.warning("%s=%r is not a number; using %s", setting.env, text, setting.default)
        value = setting.default
    return max(cast(int, value), 1)


def _base_url(setting: Setting, environ: Mapping[str, str]) -> object:
    """An http(s) URL without query or fragment, its trailing slash dropped; anything else is a SettingsError."""
    text = environ.get(setting.env, "").strip()
    if not text:
        return setting.default
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(f"{setting.env}: {text[:80]!r} is not an http(s)://host[:port][/path] URL")
    return text.rstrip("/")


def _blob_url(setting: Setting, environ: Mapping[str, str]) -> object:
    """An http(s) URL naming a container and a blob, without query: a SAS token there would be a key in an app
    setting (the identity signs in instead); errors never quote the query."""
    text = environ.get(setting.env, "").strip()
    if not text:
        return setting.default
    parts = urlsplit(text)
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"[:100]
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise SettingsError(
            f"{setting.env}: {shown!r} is not an https://ACCOUNT.blob.core.windows.net/CONTAINER/NAME URL"
        )
    if len([s for s in parts.path.split("/") if s]) < 2 or parts.path.endswith("/"):
        raise SettingsError(f"{setting.env}: {shown!r} names no container and blob")
    return text


def _one_of(*choices: str) -> Callable[[Setting, Mapping[str, str]], object]:
    """One of `choices` (any case); anything else is a SettingsError naming the variable and the choices."""

    def read(setting: Setting, environ: Mapping[str, str]) -> object:
        text = environ.get(setting.env, "").strip().lower()
        if not text:
            return setting.default
        if text not in choices:
            raise SettingsError(f"{setting.env}: {text[:40]!r} is not one of {', '.join(choices)}")
        return text

    return read


def _severity_order(setting: Setting, environ: Mapping[str, str]) -> object:
    """A comma-separated list of severity sources (`model.severity_order`); an unknown one is a SettingsError."""
    text = environ.get(setting.env, "").strip()
    if not text:
        return setting.default
    try:
        return parse_severity_order(text)
    except SeverityOrderError as err:
        raise SettingsError(f"{setting.env}: {err}") from None


def _family(setting: Setting, environ: Mapping[str, str]) -> dict[str, str]:
    prefix = setting.prefix or ""
    return {k[len(prefix) :]: v for k, v in sorted(environ.items()) if k.startswith(prefix)}


def _limits(setting: Setting, environ: Mapping[str, str]) -> object:
    limits = cast(Limits, setting.default)
    for name, value in _family(setting, environ).items():
        try:
            limits = limits.with_overrides({name: value})
        except AcrguardError as err:
            raise SettingsError(f"{setting.prefix}{name}: {err}") from None
    return limits


def _pairs(setting: Setting, environ: Mapping[str, str]) -> object:
    """NAME=VALUE pairs checked by their user (the sandbox's job limits are not known down here)."""
    return tuple(_family(setting, environ).items())


def _declare(
    env: str,
    default: T,
    meaning: str,
    reader: Callable[[Setting, Mapping[str, str]], object] = _text,
    *,
    secret: bool = False,
) -> T:
    """A Settings field declared as the setting `env`; a secret stays out of the settings' repr (and so out
    of logs)."""
    setting = Setting(env, default, meaning, reader)
    declared: T = field(default=default, repr=not secret, metadata={"setting": setting})
    return declared


# --------------------------------------------------------------------------------------------------
# the settings


@dataclass(frozen=True)
class Settings:
    """The process's settings; `Settings()` is every default. Empty strings and None mean unset."""

    # where the service keeps its state
    store: str = _declare("ACRGUARD_STORE", "", "findings store: a SQLite path or `postgresql://…`")
    store_auth: str = _declare(
        "ACRGUARD_STORE_AUTH",
        "password",
        "how acrguard signs in to a PostgreSQL store: `password` (default: the URL's, or libpq's own sources) or "
        "`entra`: an Entra ID access token from the managed identity (DefaultAzureCredential) for each new "
        "connection, the URL's user being the identity's PostgreSQL role",
        _one_of("password", "entra"),
    )
    queue: str = _declare(
        "ACRGUARD_QUEUE",
        "",
        "scan queue: a SQLite path, an Azure Storage connection string, or a queue service URL "
        "`https://ACCOUNT.queue.core.windows.net` reached with the managed identity (DefaultAzureCredential)",
    )
    db: str | None = _declare(
        "ACRGUARD_DB", None, "vulnerability database path (default `~/.cache/acrguard/vulndb.sqlite`)", _verbatim
    )
    db_blob_url: str = _declare(
        "ACRGUARD_DB_BLOB_URL",
        "",
        "where the database is published: a blob URL `https://ACCOUNT.blob.core.windows.net/CONTAINER/vulndb.sqlite`"
        " (managed identity); the update timer uploads there with a `vulndb.json` manifest, every reader downloads"
        " to ACRGUARD_DB and verifies its sha256, and never falls back to the bundled snapshot",
        _blob_url,
    )
    db_blob_check_seconds: int = _declare(
        "ACRGUARD_DB_BLOB_CHECK_SECONDS",
        300,
        "seconds between a reader's checks of the database blob's manifest (default 300)",
        _whole("seconds"),
    )
    db_blob_max_mb: int = _declare(
        "ACRGUARD_DB_BLOB_MAX_MB",
        4096,
        "the largest database blob a reader downloads, in MiB (default 4096)",
        _whole("MiB"),
    )

    # who may call the HTTP API
    api_key: str = _declare(
        "ACRGUARD_API_KEY",
        "",
        "the key a caller presents as `x-api-key` (that header only); `acrguard serve` generates one when neither "
        "key nor token is set",
        _verbatim,
        secret=True,
    )
    api_token: str = _declare(
        "ACRGUARD_API_TOKEN",
        "",
        "a token a caller may present instead, as `Authorization: Bearer` (that header only)",
        _verbatim,
        secret=True,
    )
    allow_anonymous: bool = _declare(
        "ACRGUARD_ALLOW_ANONYMOUS",
        False,
        "`true`: with neither key nor token configured, findings are open to anyone (writes and events never are)",
        _flag,
    )
    website_instance_id: str = _declare(
        "WEBSITE_INSTANCE_ID",
        "",
        "set by App Service on its instances: there the Functions host's function-key check is trusted in place "
        "of acrguard's own (only inside the host's Python worker)",
        _verbatim,
    )
    function_key: str = _declare(
        "ACRGUARD_FUNCTION_KEY",
        "",
        "`acrguard serve` only: the function key (`?code=` or `x-functions-key`) the Functions host would check",
        _verbatim,
        secret=True,
    )

    # Microsoft Entra ID bearer tokens (scanner.service.entra): on when a tenant is set
    entra_tenant_id: str = _declare(
        "ACRGUARD_ENTRA_TENANT_ID",
        "",
        "the Entra ID tenant (a GUID) whose access tokens are accepted as `Authorization: Bearer`; its `tid` and "
        "issuers (v1 and v2) are required of every token",
    )
    entra_audience: tuple[str, ...] = _declare(
        "ACRGUARD_ENTRA_AUDIENCE",
        (),
        "comma-separated audiences (`aud`) accepted: the app registration's Application ID URI (`api://…`) "
        "and/or its client id",
        _names,
    )
    entra_jwks_url: str = _declare(
        "ACRGUARD_ENTRA_JWKS_URL",
        "",
        "where the signing keys are fetched (default the tenant's "
        "`https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys`); only that host or this machine",
    )
    entra_jwks_file: str = _declare(
        "ACRGUARD_ENTRA_JWKS_FILE",
        "",
        "a JWKS file holding the signing keys instead (air-gapped); nothing is fetched",
        _verbatim,
    )
    # Sign-in with Microsoft for the dashboard (scanner.service.entra_signin): on when a client id is set
    entra_client_id: str = _declare(
        "ACRGUARD_ENTRA_CLIENT_ID",
        "",
        "the app registration (client id) the dashboard signs users in with (OpenID Connect, authorization code "
        "with PKCE); its ID tokens' audience. Needs the tenant and the client secret; the redirect URI is "
        "`ACRGUARD_PUBLIC_URL` + `/api/dashboard/login/callback`",
    )
    entra_client_secret: str = _declare(
        "ACRGUARD_ENTRA_CLIENT_SECRET",
        "",
        "that app registration's client secret, sent only to the authority's token endpoint",
        _verbatim,
        secret=True,
    )
    entra_authority: str = _declare(
        "ACRGUARD_ENTRA_AUTHORITY",
        "https://login.microsoftonline.com",
        "where users sign in and codes are redeemed (`{authority}/{tenant}/oauth2/v2.0/authorize` and `/token`); "
        "only Microsoft's sign-in host over https, or this machine (a stand-in)",
        _base_url,
    )

    # the front door: event senders and bounds on what a request can cause
    events_token: str = _declare(
        "ACRGUARD_EVENTS_TOKEN",
        "",
        "an `Authorization: Bearer` token that may only deliver registry events (a registry's notification "
        "`headers`, an Event Grid delivery header)",
        _verbatim,
        secret=True,
    )
    trust_functions_host: bool = _declare(
        "ACRGUARD_TRUST_FUNCTIONS_HOST",
        False,
        "`true`: the Functions host running the handlers checks function keys where `WEBSITE_INSTANCE_ID` is unset "
        "(a Functions container); never trusted in `acrguard serve`",
        _flag,
    )
    max_events_per_request: int = _declare(
        "ACRGUARD_MAX_EVENTS_PER_REQUEST",
        100,
        "events one delivery may carry; more is a 413 and nothing is handled (default 100; keep an Event Grid "
        "subscription's `maxEventsPerBatch` at or below it)",
        _whole("events"),
    )
    max_dead_letters: int = _declare(
        "ACRGUARD_MAX_DEAD_LETTERS",
        10_000,
        "dead letters kept per queue; beyond it the oldest are dropped and counted (default 10000)",
        _whole("dead letters"),
    )
    max_queued_per_registry: int = _declare(
        "ACRGUARD_MAX_QUEUED_PER_REGISTRY",
        10_000,
        "scans queued for one registry; one more is dead-lettered with the reason, not queued (default 10000)",
        _whole("scans"),
    )

    # the queue worker: leases, retries, dead letters
    max_attempts: int = _declare(
        "ACRGUARD_MAX_ATTEMPTS",
        5,
        "deliveries of a scan request before it is dead-lettered with its error (default 5)",
        _whole("attempts"),
    )
    retry_base_seconds: int = _declare(
        "ACRGUARD_RETRY_BASE_SECONDS",
        10,
        "a failed scan is retried after base * 2^(attempt-1) seconds (default 10)",
        _whole("seconds"),
    )
    retry_max_seconds: int = _declare(
        "ACRGUARD_RETRY_MAX_SECONDS",
        900,
        "the longest wait before a retry, in seconds (default 900)",
        _whole("seconds"),
    )
    visibility_timeout: int = _declare(
        "ACRGUARD_VISIBILITY_TIMEOUT",
        300,
        "seconds a worker holds a scan request, renewed while it scans (default 300)",
        _whole("seconds"),
    )

    # policy
    rules: str | None = _declare(
        "ACRGUARD_RULES", None, "directory of disable rules (default `policies/rules` when present)", _verbatim
    )
    templates: str | None = _declare(
        "ACRGUARD_TEMPLATES",
        None,
        "directory of remediation templates overriding the packaged ones by name (default `policies/templates`)",
        _verbatim,
    )
    dashboard_templates: str | None = _declare(
        "ACRGUARD_DASHBOARD_TEMPLATES",
        None,
        "directory of dashboard templates and `dashboard.css` overriding the packaged ones by name"
        " (default `policies/dashboard` when present)",
        _verbatim,
    )
    gates: str | None = _declare(
        "ACRGUARD_GATES", None, "directory of gate policies (default `policies/gates` when present)", _verbatim
    )
    health_webhook: str = _declare(
        "ACRGUARD_HEALTH_WEBHOOK",
        "",
        "URL a health-changed event is posted to whenever an image's health or finding set changes",
    )
    eventgrid_topic_endpoint: str = _declare(
        "ACRGUARD_EVENTGRID_TOPIC_ENDPOINT", "", "an Event Grid topic for those events instead (without a webhook)"
    )
    eventgrid_topic_key: str = _declare(
        "ACRGUARD_EVENTGRID_TOPIC_KEY", "", "that topic's access key", _verbatim, secret=True
    )

    # the links the HTTP API hands out
    public_url: str = _declare(
        "ACRGUARD_PUBLIC_URL",
        "",
        "the API's base URL as its clients reach it, for `nextLink` (default: `https://` and WEBSITE_HOSTNAME in"
        " Azure, `acrguard serve`'s listening address); never taken from a request's `Host`",
        _base_url,
    )
    website_hostname: str = _declare(
        "WEBSITE_HOSTNAME",
        "",
        "set by App Service: the app's default host name (custom domains need ACRGUARD_PUBLIC_URL)",
        _verbatim,
    )

    # registries
    insecure_registries: frozenset[str] = _declare(
        "ACRGUARD_INSECURE_REGISTRIES",
        frozenset(),
        "hosts spoken to over plain HTTP (comma-separated); each is an allowed registry too",
        _hosts,
    )
    registry_username: str | None = _declare(
        "ACRGUARD_REGISTRY_USERNAME",
        None,
        "basic-auth user of the `HOST=basic` registries that ACRGUARD_REGISTRY_CREDENTIALS does not cover"
        " (sent nowhere else)",
        _verbatim,
    )
    registry_password: str | None = _declare(
        "ACRGUARD_REGISTRY_PASSWORD", None, "that user's password", _verbatim, secret=True
    )
    docker_config: str | None = _declare(
        "DOCKER_CONFIG",
        None,
        "directory of the docker `config.json` whose `auths` give the `HOST=docker` registries' (and the CLI's)"
        " credentials (default `~/.docker`)",
        _verbatim,
    )
    registries: tuple[tuple[str, str], ...] = _declare(
        "ACRGUARD_REGISTRIES",
        (),
        "the registries the service may reach (with the insecure ones): `HOST[:PORT]=KIND`, comma-separated; KIND"
        " `identity` (default for ACR), `basic`, `docker` or `anonymous` (default otherwise)",
        _registry_list,
    )
    registry_credentials: tuple[tuple[str, str, str], ...] = _declare(
        "ACRGUARD_REGISTRY_CREDENTIALS",
        (),
        'basic credentials by registry, JSON `{"HOST[:PORT]": {"username": "…", "password": "…"}}`',
        _credentials,
        secret=True,
    )
    registry_resources: tuple[tuple[str, str, str, str], ...] = _declare(
        "ACRGUARD_REGISTRY_RESOURCES",
        (),
        "the registries' Azure resource ids, comma-separated, each optionally after `HOST[:PORT]=` (default login"
        " server `<name>.azurecr.io`): the sub-assessments of a subscription (`list_all`) are theirs",
        _registry_resources,
    )
    registry_ca_file: str | None = _declare(
        "ACRGUARD_REGISTRY_CA_FILE",
        None,
        "CA bundle for registries with a private CA, as `--ca-file` (registry connections ignore REQUESTS_CA_BUNDLE)",
        _verbatim,
    )

    # the timers
    rescan_schedule: str = _declare(
        "ACRGUARD_RESCAN_SCHEDULE",
        "0 0 3 * * *",
        "six-field NCRONTAB of the rescan timer (default `0 0 3 * * *`, 03:00 daily)",
    )
    rescan_days: int = _declare(
        "ACRGUARD_RESCAN_DAYS",
        30,
        "the rescan re-matches the digests pulled within this many days (default 30)",
        _window,
    )
    rescan_after_update: str = _declare(
        "ACRGUARD_RESCAN_AFTER_UPDATE",
        "true",
        "after each database update, re-match the recently pulled digests the update can change (`false`: only "
        "the rescan timer re-matches; default `true`)",
        _one_of("true", "false"),
    )
    log_schedule: str = _declare(
        "ACRGUARD_LOG_SCHEDULE",
        "0 */15 * * * *",
        "six-field NCRONTAB of the resource-log timer (default `0 */15 * * * *`)",
    )
    log_workspace_id: str = _declare(
        "ACRGUARD_LOG_WORKSPACE_ID",
        "",
        "the Log Analytics workspace holding the registry's resource log (unset: the log timer reads nothing)",
    )
    log_endpoint: str = _declare(
        "ACRGUARD_LOG_ENDPOINT",
        "https://api.loganalytics.io",
        "the Log Analytics API (default `https://api.loganalytics.io`, the public cloud's)",
    )
    # continuous export of findings and health changes (Logs Ingestion API)
    export_endpoint: str = _declare(
        "ACRGUARD_EXPORT_ENDPOINT",
        "",
        "the data collection endpoint's logs ingestion URL (https); with `ACRGUARD_EXPORT_RULE_ID`, every change of"
        " an image's findings or health is exported to Log Analytics",
    )
    export_rule_id: str = _declare("ACRGUARD_EXPORT_RULE_ID", "", "the data collection rule's immutable id (`dcr-…`)")
    export_stream: str = _declare(
        "ACRGUARD_EXPORT_STREAM",
        "Custom-AcrguardFindings_CL",
        "the rule's stream (default `Custom-AcrguardFindings_CL`)",
    )
    export_registry_ids: tuple[str, ...] = _declare(
        "ACRGUARD_EXPORT_REGISTRY_IDS",
        (),
        "ARM ids of the monitored registries, comma-separated: the exported rows' subscription, resource group and"
        " registry (unset: the login server's name only)",
        _names,
    )
    # 60 minutes are four runs of the default schedule: a row ingested up to 45 minutes late is still read.
    log_lookback_minutes: int = _declare(
        "ACRGUARD_LOG_LOOKBACK_MINUTES",
        60,
        "minutes of resource log each run reads, overlapping the runs before (default 60)",
        _window,
    )
    db_update_schedule: str = _declare(
        "ACRGUARD_DB_UPDATE_SCHEDULE",
        "0 0 */6 * * *",
        "six-field NCRONTAB of the database-update timer (default `0 0 */6 * * *`)",
    )
    osv_base_url: str | None = _declare(
        "ACRGUARD_OSV_BASE_URL",
        None,
        "the server `db update` (and its timer) fetches the osv.dev archives from (default osv.dev's)",
        _verbatim,
    )
    kev_url: str | None = _declare(
        "ACRGUARD_KEV_URL",
        None,
        "where `db update` (and its timer) fetches CISA's KEV catalog from (default cisa.gov's feed)",
        _verbatim,
    )
    epss_url: str | None = _declare(
        "ACRGUARD_EPSS_URL",
        None,
        "where `db update` (and its timer) fetches FIRST's EPSS scores from (default the current `.csv.gz`)",
        _verbatim,
    )
    cve_release_url: str | None = _declare(
        "ACRGUARD_CVE_RELEASE_URL",
        None,
        "the GitHub release document naming the CVE list's bulk archive for `db update --feed cve` (default "
        "CVEProject/cvelistV5's latest release)",
        _verbatim,
    )
    # osv.dev republishes the big ecosystems' archives several times a day and the update timer runs every 6 h:
    # a week without a newer feed is a broken update, not a quiet feed, yet short enough to matter for a scan.
    feed_max_age_days: int = _declare(
        "ACRGUARD_FEED_MAX_AGE_DAYS",
        7,
        "`db info` warns about a feed whose own date is more than this many days old (default 7; 0: never)",
        _whole("days"),
    )
    db_ecosystems: tuple[str, ...] = _declare(
        "ACRGUARD_DB_ECOSYSTEMS",
        (),
        "the ecosystems the database-update timer fetches (comma-separated; default those of `db update`)",
        _names,
    )

    # bounds
    limits: Limits = _declare(  # noqa: RUF009 - a field(), as every declaration; Limits is frozen
        "ACRGUARD_LIMIT_<NAME>", Limits(), "a safety limit, as `--limit NAME=VALUE` (see Safety limits)", _limits
    )
    job_limits: tuple[tuple[str, str], ...] = _declare(
        "ACRGUARD_JOB_LIMIT_<NAME>",
        (),
        "a limit of the sandboxed scan job, as `--job-limit NAME=VALUE` (see `acrguard job --help`)",
        _pairs,
    )
    # the layer-prefix cache of the sandboxed scan job (scanner.inventory.prefix_cache)
    prefix_cache_dir: str = _declare(
        "ACRGUARD_PREFIX_CACHE_DIR",
        "",
        "where the scan job keeps the replay states of layer prefixes, so that an image sharing its base with one"
        " scanned before parses only the layers above it (default `~/.cache/acrguard/layer-prefixes`)",
    )
    prefix_cache_mb: int = _declare(
        "ACRGUARD_PREFIX_CACHE_MB",
        2048,
        "the layer-prefix cache's size in MiB, least recently used states evicted first; one state takes at most a"
        " quarter of it (default 2048; 0: no prefix cache)",
        _whole("MiB"),
    )

    # failing closed: an image whose inventory is Incomplete (a detector failed or hit a bound)
    gate_on_incomplete: IncompletePolicy = _declare(  # noqa: RUF009 - a field(), as every declaration
        "ACRGUARD_GATE_ON_INCOMPLETE",
        "fail",
        "how a gate without `on_incomplete` judges an Incomplete image: `fail` (default), `findings` or `skip`",
        _one_of(*INCOMPLETE_POLICIES),
    )
    # failing closed: an image the database could not assess (no advisories, or only a selection, for its
    # distribution and release) has not passed anything by having no findings
    gate_on_not_assessed: IncompletePolicy = _declare(  # noqa: RUF009 - a field(), as every declaration
        "ACRGUARD_GATE_ON_NOT_ASSESSED",
        "fail",
        "how a gate without `on_not_assessed` (and `acrguard scan --fail-on`) judges a NotAssessed image: `fail`"
        " (default), `findings` or `skip`",
        _one_of(*INCOMPLETE_POLICIES),
    )

    # whose word rates a finding first
    severity_sources: tuple[str, ...] = _declare(
        "ACRGUARD_SEVERITY_SOURCES",
        DEFAULT_SEVERITY_ORDER,
        "the order severity sources are trusted in, first that rates a finding wins: `vendor` (the distribution's"
        " or advisory's own word), `cvss` (the advisory's and its OSV aliases'), `cna`, `cisa-adp` (CVE records),"
        " `nvd` (NVD records); default `vendor,cvss,cna,cisa-adp,nvd`",
        _severity_order,
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings in `environ` (default: this process's environment); a bad value is a SettingsError."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {name: setting.read(env) for name, setting in SETTINGS.items()}
        return cls(**values)

    @property
    def on_app_service(self) -> bool:
        """On an App Service instance (whose Functions host, if one runs the handlers, checks function keys)."""
        return bool(self.website_instance_id)


# Field name -> declaration, in declaration order.
SETTINGS: Mapping[str, Setting] = {f.name: cast(Setting, f.metadata["setting"]) for f in fields(Settings)}


def env_name(name: str) -> str:
    """The variable behind the field `name` (for messages that tell the user what to set)."""
    return SETTINGS[name].env


def timer_schedule(name: str, environ: Mapping[str, str] | None = None) -> str:
    """One timer's schedule, read alone: the blueprints need it when imported, where a bad value of some
    other setting must not stop the app from loading."""
    return str(SETTINGS[name].read(os.environ if environ is None else environ))
