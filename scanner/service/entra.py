"""Microsoft Entra ID bearer tokens: which tenant, audiences, issuers and signing keys acrguard trusts
(`EntraConfig`, from the settings), the tenant's signing keys held with a TTL (`KeySet`), and the check of
one token (`TokenVerifier`). The keys are read through a loader the caller passes (`scanner.service.jwks`
fetches them over HTTPS or reads a file), so everything here runs on bytes.

A token is accepted when it is a JWS signed with RS256 (`none`, HS256 and every other algorithm are refused
before any key is looked up) by a key of the tenant's JWKS named by its `kid`, is within `exp`/`nbf` (give or
take `LEEWAY` seconds), names one of the configured audiences in `aud`, one of the tenant's issuers in `iss`
(v1 `https://sts.windows.net/{tid}/`, v2 `https://login.microsoftonline.com/{tid}/v2.0`) and the tenant in
`tid`. What it may do is its `roles` claim (app roles, see `READ_ROLE`, `WRITE_ROLE`, `EVENTS_ROLE`).
Tokens are verified by PyJWT; nothing here parses a signature.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK

from scanner.model.errors import AcrguardError
from scanner.model.hosts import is_loopback
from scanner.model.settings import Settings, SettingsError, env_name

log = logging.getLogger(__name__)

# The app roles an app registration declares for acrguard (README "Entra ID"): a token carries the ones
# assigned to its caller (an application or a user) in its `roles` claim.
READ_ROLE = "Findings.Read"  # the lookups: sub-assessments, images, health
WRITE_ROLE = "Findings.Write"  # everything the API key opens: reads, management operations, events
EVENTS_ROLE = "Events.Send"  # only the registry-event endpoints (notifications, Event Grid deliveries)

ALGORITHMS = ("RS256",)  # what Entra ID signs access tokens with; anything else is refused unread
LEEWAY = 60  # seconds of clock skew allowed on exp and nbf
MAX_TOKEN_CHARS = 16 * 1024  # Entra access tokens are a few kB; a header this long is not one
MAX_KEYS = 100  # keys kept from one JWKS (Microsoft's has about ten)
KEYS_TTL = 3600.0  # seconds a JWKS is used before it is read again
REFETCH_COOLDOWN = 60.0  # seconds between two reloads forced by an unknown `kid`

MICROSOFT_LOGIN_HOST = "login.microsoftonline.com"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A compact JWS: three base64url parts (the last, the signature, empty for `alg: none`).
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class TokenRefused(AcrguardError):
    """A bearer token that is not an acceptable Entra ID token; the message says briefly why."""


class KeysUnavailable(AcrguardError):
    """The signing keys could not be read (unreachable, too large, not a JWKS); one line naming the source."""


def jwks_url_for(tenant: str) -> str:
    return f"https://{MICROSOFT_LOGIN_HOST}/{tenant}/discovery/v2.0/keys"


def issuers_for(tenant: str) -> tuple[str, str]:
    """The `iss` of the tenant's v1 and v2 access tokens (which one a token has follows the API's
    `accessTokenAcceptedVersion` in its app manifest)."""
    return (f"https://sts.windows.net/{tenant}/", f"https://{MICROSOFT_LOGIN_HOST}/{tenant}/v2.0")


def is_tenant_id(text: str) -> bool:
    """Whether `text` (lower case) is a tenant id: a GUID."""
    return _GUID.fullmatch(text) is not None


def looks_like_jwt(text: str) -> bool:
    """Whether `text` has the shape of a compact JWS (the API key and token need not, and are never read as one)."""
    return _COMPACT.fullmatch(text) is not None


# --------------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class EntraConfig:
    tenant: str
    audiences: tuple[str, ...]
    issuers: tuple[str, ...]
    jwks_url: str  # "" when the keys come from `jwks_file`
    jwks_file: str


def config_from(settings: Settings) -> EntraConfig | None:
    """The Entra ID configuration of `settings`, None when no tenant is set; a SettingsError (naming the
    variable) when it cannot be used: a tenant that is no GUID, no audience, a JWKS URL on a host other than
    Microsoft's sign-in host or this machine, or both a URL and a file."""
    tenant_var, audience_var = env_name("entra_tenant_id"), env_name("entra_audience")
    url_var, file_var = env_name("entra_jwks_url"), env_name("entra_jwks_file")
    tenant = settings.entra_tenant_id.strip().lower()
    if not tenant:
        given = (audience_var, settings.entra_audience), (url_var, settings.entra_jwks_url)
        for name, value in (*given, (file_var, settings.entra_jwks_file)):
            if value:
                raise SettingsError(f"{name} is set but {tenant_var} is not: set the tenant to accept Entra ID tokens")
        return None
    if _GUID.fullmatch(tenant) is None:
        raise SettingsError(f"{tenant_var}: {tenant[:60]!r} is not a tenant id (a GUID)")
    audiences = tuple(a for a in settings.entra_audience if a)
    if not audiences:
        raise SettingsError(
            f"{audience_var} is not set: name the app registration's Application ID URI (api://…) or client id"
        )
    if settings.entra_jwks_url and settings.entra_jwks_file:
        raise SettingsError(f"{url_var} and {file_var} are both set: the keys come from one of them")
    url = ""
    if not settings.entra_jwks_file:
        url = settings.entra_jwks_url or jwks_url_for(tenant)
        _check_jwks_url(url, url_var)
    return EntraConfig(tenant, audiences, issuers_for(tenant), url, settings.entra_jwks_file)


def trusted_host(url: str) -> bool:
    """Whether `url` is on Microsoft's sign-in host over HTTPS, or on this machine (a stand-in: tests, a local
    mirror): the only places signing keys are fetched from and sign-in codes redeemed at."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host == MICROSOFT_LOGIN_HOST:
        return True
    return parts.scheme in ("http", "https") and is_loopback(host)


def _check_jwks_url(url: str, variable: str) -> None:
    """Anywhere but a trusted host could hand out keys that sign anything, so it is refused."""
    if trusted_host(url):
        return
    raise SettingsError(
        f"{variable}: {url[:100]!r}: signing keys are fetched only from https://{MICROSOFT_LOGIN_HOST} or this "
        f"machine; keep other keys in a file ({env_name('entra_jwks_file')})"
    )


# --------------------------------------------------------------------------------------------------
# signing keys


def parse_jwks(data: bytes, where: str) -> dict[str, PyJWK]:
    """The RSA signing keys of a JWKS document by `kid`. Keys of other types, for encryption (`use` other
    than `sig`), without a `kid` or unreadable are left out; a document without any usable key is an error."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise KeysUnavailable(f"{where}: not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise KeysUnavailable(f"{where}: not a JWKS (no `keys` array)")
    keys: dict[str, PyJWK] = {}
    for entry in entries[:MAX_KEYS]:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("alg", "RS256") != "RS256":
            continue
        try:
            keys[kid] = PyJWK(entry, algorithm="RS256")
        except jwt.PyJWTError:
            log.warning("%s: key %s cannot be read; left out", where, kid[:60])
    if not keys:
        raise KeysUnavailable(f"{where}: no RSA signing key")
    return keys


class KeySet:
    """A JWKS read through `load` on first use and again once `ttl` seconds old; a `kid` not in it reloads
    it at once (a key Microsoft just started using), at most once per `cooldown` seconds so that tokens with
    made-up key ids cannot make every request a fetch. A reload that fails keeps the keys already held."""

    def __init__(
        self,
        load: Callable[[], bytes],
        where: str,
        *,
        ttl: float = KEYS_TTL,
        cooldown: float = REFETCH_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self.where, self._ttl, self._cooldown, self._clock = load, where, ttl, cooldown, clock
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] | None = None
        self._loaded_at = 0.0
        self._forced_at: float | None = None

    def key(self, kid: str) -> PyJWK | None:
        """The key named `kid`, or None when the keys (reloaded once, cooldown permitting) do not hold it."""
        with self._lock:
            now = self._clock()
            if self._keys is None or now - self._loaded_at >= self._ttl:
                self._reload(now)
            assert self._keys is not None
            found = self._keys.get(kid)
            if found is None and (self._forced_at is None or now - self._forced_at >= self._cooldown):
                self._forced_at = now
                self._reload(now)
                found = self._keys.get(kid)
            return found

    def _reload(self, now: float) -> None:
        try:
            keys = parse_jwks(self._load(), self.where)
        except KeysUnavailable as err:
            if self._keys is None:
                raise
            log.warning("Entra ID signing keys not reloaded, the ones held stay in use: %s", err)
            return
        self._keys, self._loaded_at = keys, now


# --------------------------------------------------------------------------------------------------
# tokens


@dataclass(frozen=True)
class Principal:
    """Who an accepted token speaks for: the object id of the user or application, its client, its roles."""

    subject: str
    client: str
    roles: frozenset[str]


class TokenVerifier:
    def __init__(self, config: EntraConfig, keys: KeySet) -> None:
        self.config, self.keys = config, keys

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; TokenRefused saying why not, KeysUnavailable when the keys
        cannot be read."""
        return principal_of(self.claims(token))

    def claims(self, token: str) -> Mapping[str, Any]:
        """The claims of a valid token (an ID token's `nonce` is its caller's to check); refusals as `verify`."""
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRefused(f"token longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused("not a JWT") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenRefused(f"algorithm {str(alg)[:20]!r} not accepted (RS256 only)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("no key id (kid) in the token's header")
        key = self.keys.key(kid)
        if key is None:
            raise TokenRefused(f"unknown signing key {kid[:60]!r}")
        claims = self._decode(token, key)
        if claims.get("tid") != self.config.tenant:
            raise TokenRefused("wrong tenant (tid)")
        return claims

    def _decode(self, token: str, key: PyJWK) -> Mapping[str, Any]:
        try:
            claims: Mapping[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=list(self.config.audiences),
                issuer=list(self.config.issuers),
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud", "tid"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("token not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("wrong audience (aud)") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("wrong issuer (iss)") from None
        except jwt.MissingRequiredClaimError as err:
            raise TokenRefused(f"no {err.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("signature does not verify") from None
        except jwt.PyJWTError as err:
            raise TokenRefused(f"invalid token ({type(err).__name__})") from None
        return claims


def principal_of(claims: Mapping[str, Any]) -> Principal:
    """Who verified claims speak for, and their app roles."""
    roles = claims.get("roles")
    return Principal(
        subject=_text(claims.get("oid")) or _text(claims.get("sub")),
        client=_text(claims.get("azp")) or _text(claims.get("appid")),
        roles=frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset(),
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
