"""Sign-in with Microsoft for the dashboard: the OpenID Connect authorization code flow with PKCE against
the configured tenant, ending in the same session cookie the API-key login sets.

A browser cannot send the bearer token the API accepts, so the dashboard signs its user in itself:

1. `start`: a random `state`, `nonce` and PKCE verifier, kept in a short-lived signed cookie (the caller
   seals it, `scanner.service.dashboard_session.seal`); the user goes to the tenant's authorize endpoint
   with the state, the nonce and the verifier's S256 challenge.
2. `finish` (the callback): the state must be the cookie's; the code is redeemed at the tenant's token
   endpoint with the verifier and the client secret (`redeem_code`: only the configured authority, which
   is Microsoft's sign-in host over HTTPS or this machine, no redirect followed, the answer bounded); the
   ID token is checked by the API's own verifier (`scanner.service.entra`: RS256 by a key of the tenant's
   JWKS, the tenant's issuer and `tid`, audience the client id, expiry) and its `nonce` must be the
   cookie's. Its app roles decide, as for the API: Findings.Write writes, Findings.Read reads, none is
   refused.

The redirect URI is built from the configuration (`ACRGUARD_PUBLIC_URL`, or the app's host name in Azure),
never from the request's Host header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scanner import __version__
from scanner.model.errors import AcrguardError
from scanner.model.hosts import is_loopback
from scanner.model.settings import Settings, SettingsError, env_name
from scanner.service import access, entra
from scanner.service.jwks import TIMEOUT_SECONDS

CALLBACK_PATH = "/api/dashboard/login/callback"
FLOW_COOKIE = "acrguard_signin"
FLOW_COOKIE_PATH = "/api/dashboard/login"  # sent back only to the sign-in routes
FLOW_SECONDS = 600  # how long a user may take at Microsoft's sign-in page
MAX_TOKEN_RESPONSE = 64 * 1024  # a token response is a few kB
MAX_CODE_CHARS = 4096  # Entra's codes are about 1 kB
SCOPES = "openid profile"


class SignInRefused(AcrguardError):
    """The callback does not complete a sign-in this dashboard started (state, code, ID token); one line."""


class SignInUnavailable(AcrguardError):
    """The token endpoint could not be asked (unreachable, an answer too large or unreadable); one line."""


class NoRole(AcrguardError):
    """A valid sign-in whose user has no app role that opens the dashboard."""


@dataclass(frozen=True)
class SignInConfig:
    tenant: str
    client_id: str
    client_secret: str = field(repr=False)
    authority: str
    redirect_uri: str
    id_tokens: entra.EntraConfig  # how ID tokens are checked: audience the client id

    @property
    def authorize_url(self) -> str:
        return f"{self.authority}/{self.tenant}/oauth2/v2.0/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.authority}/{self.tenant}/oauth2/v2.0/token"


@dataclass(frozen=True)
class SignedIn:
    can_write: bool
    name: str  # what the ID token calls the user, for the page


def config_from(settings: Settings, public_base: str) -> SignInConfig | None:
    """The sign-in configuration (None without a client id); a SettingsError naming the variable when it
    cannot be used: no tenant or secret, an authority elsewhere than Microsoft's sign-in host or this
    machine, or no public URL to build the redirect URI from."""
    client_var, secret_var = env_name("entra_client_id"), env_name("entra_client_secret")
    client_id = settings.entra_client_id.strip()
    if not client_id:
        return None
    tenant = settings.entra_tenant_id.strip().lower()
    if not tenant:
        raise SettingsError(f"{client_var} is set but {env_name('entra_tenant_id')} is not: name the tenant")
    if not settings.entra_client_secret:
        raise SettingsError(f"{client_var} is set but {secret_var} is not: the code is redeemed with it")
    authority = settings.entra_authority.rstrip("/")
    if not entra.trusted_host(authority):
        raise SettingsError(
            f"{env_name('entra_authority')}: {authority[:100]!r}: sign-in goes only to "
            f"https://{entra.MICROSOFT_LOGIN_HOST} or this machine"
        )
    if not public_base:
        raise SettingsError(f"{client_var} is set but the dashboard's address is unknown: set {env_name('public_url')}")
    base = urllib.parse.urlsplit(public_base)
    if base.scheme != "https" and not is_loopback((base.hostname or "").lower()):
        raise SettingsError(f"{env_name('public_url')}: sign-in returns to https only (or this machine)")
    jwks_url = ""
    if not settings.entra_jwks_file:
        jwks_url = settings.entra_jwks_url or f"{authority}/{tenant}/discovery/v2.0/keys"
        if not entra.trusted_host(jwks_url):
            raise SettingsError(f"{env_name('entra_jwks_url')}: {jwks_url[:100]!r}: not a trusted host")
    if not entra.is_tenant_id(tenant):
        raise SettingsError(f"{env_name('entra_tenant_id')}: {tenant[:60]!r} is not a tenant id (a GUID)")
    id_tokens = entra.EntraConfig(tenant, (client_id,), entra.issuers_for(tenant), jwks_url, settings.entra_jwks_file)
    return SignInConfig(
        tenant, client_id, settings.entra_client_secret, authority, public_base + CALLBACK_PATH, id_tokens
    )


def start(config: SignInConfig, target: str, now: int) -> tuple[str, dict[str, Any]]:
    """Where to send the browser, and what the flow cookie must hold until it comes back."""
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    query = {
        "client_id": config.client_id,
        "response_type": "code",
        "redirect_uri": config.redirect_uri,
        "response_mode": "query",
        "scope": SCOPES,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge_of(verifier),
        "code_challenge_method": "S256",
    }
    flow = {"exp": now + FLOW_SECONDS, "s": state, "n": nonce, "v": verifier, "t": target}
    return f"{config.authorize_url}?{urllib.parse.urlencode(query)}", flow


def challenge_of(verifier: str) -> str:
    """PKCE's S256 challenge of a verifier (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


def flow_cookie(value: str, secure: bool) -> str:
    """The `Set-Cookie` of a sign-in in progress. `SameSite=Lax`: the callback is a top-level navigation
    from Microsoft's site, to which a Strict cookie would not be sent."""
    flags = f"Path={FLOW_COOKIE_PATH}; Max-Age={FLOW_SECONDS}; HttpOnly; SameSite=Lax"
    return f"{FLOW_COOKIE}={value}; {flags}" + ("; Secure" if secure else "")


Redeem = Callable[[SignInConfig, str, str], str]


def finish(
    config: SignInConfig, flow: Mapping[str, Any] | None, state: str, code: str, redeem: Redeem | None = None
) -> SignedIn:
    """The signed-in user of a callback (`state`, `code` from its query; `flow` the unsealed cookie, None
    when missing or expired). SignInRefused, SignInUnavailable, entra.KeysUnavailable, NoRole."""
    if flow is None:
        raise SignInRefused("no sign-in in progress in this browser (or it took too long): start again")
    expected_state, nonce, verifier = str(flow.get("s", "")), str(flow.get("n", "")), str(flow.get("v", ""))
    if not state or not hmac.compare_digest(state.encode("utf-8", "replace"), expected_state.encode()):
        raise SignInRefused("the sign-in's state does not match the one this browser started")
    if not code or len(code) > MAX_CODE_CHARS:
        raise SignInRefused("the callback carries no usable authorization code")
    id_token = (redeem or redeem_code)(config, code, verifier)
    try:
        claims = access.cached_verifier(config.id_tokens).claims(id_token)
    except entra.TokenRefused as err:
        raise SignInRefused(f"ID token refused: {err}") from None
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode("utf-8", "replace"), nonce.encode()):
        raise SignInRefused("ID token refused: its nonce is not this sign-in's")
    roles = entra.principal_of(claims).roles
    if not roles & access.SCOPE_ROLES["read"]:
        raise NoRole(f"the account has no app role for acrguard ({entra.READ_ROLE} or {entra.WRITE_ROLE})")
    name = next((v for k in ("preferred_username", "name", "oid") if isinstance(v := claims.get(k), str) and v), "")
    return SignedIn(can_write=bool(roles & access.SCOPE_ROLES["write"]), name=name[:200])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def redeem_code(config: SignInConfig, code: str, verifier: str, *, context: ssl.SSLContext | None = None) -> str:
    """The ID token the token endpoint gives for `code` (with the PKCE verifier and the client secret).
    The endpoint is the configured authority's (checked by `config_from`); no redirect is followed and at
    most `MAX_TOKEN_RESPONSE` bytes are read."""
    form = {
        "grant_type": "authorization_code",
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "code": code,
        "redirect_uri": config.redirect_uri,
        "code_verifier": verifier,
        "scope": SCOPES,
    }
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect(), urllib.request.HTTPSHandler(context=context)]
    if is_loopback((urllib.parse.urlsplit(config.token_url).hostname or "").lower()):
        handlers.append(urllib.request.ProxyHandler({}))  # a stand-in on this machine is never behind a proxy
    request = urllib.request.Request(
        config.token_url,
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "User-Agent": f"acrguard/{__version__}",
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    where = config.token_url
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=TIMEOUT_SECONDS) as response:
            data: bytes = response.read(MAX_TOKEN_RESPONSE + 1)
    except urllib.error.HTTPError as err:
        body = err.read(MAX_TOKEN_RESPONSE)
        err.close()
        # 400 is the endpoint refusing this code (used, expired, another client's): the caller's problem.
        raise SignInRefused(f"{where}: HTTP {err.code}: {_oauth_error(body)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        raise SignInUnavailable(f"{where}: cannot redeem the code ({reason})") from None
    if len(data) > MAX_TOKEN_RESPONSE:
        raise SignInUnavailable(f"{where}: answer larger than {MAX_TOKEN_RESPONSE} bytes")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise SignInUnavailable(f"{where}: answer is not JSON") from None
    token = document.get("id_token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        raise SignInRefused(f"{where}: answer holds no id_token")
    return token


def _oauth_error(body: bytes) -> str:
    """The OAuth error of a refusal (`error`: first line of `error_description`), one bounded line."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "refused"
    if not isinstance(document, dict):
        return "refused"
    error = str(document.get("error", "refused"))[:60]
    description = " ".join(str(document.get("error_description", "")).split())[:200]
    return f"{error}: {description}" if description else error
