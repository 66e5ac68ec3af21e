"""Entra ID bearer tokens: the configuration checks, the token checks against keys a local HTTPS server
hands out (or a JWKS file), the signing keys' cache, and how tokens sit beside the API key and token."""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.model.settings import Settings, SettingsError
from scanner.service import access, entra, jwks
from scanner.service.entra import EntraConfig, KeySet, KeysUnavailable, TokenRefused, TokenVerifier
from tests.service.entra_support import (
    AUDIENCE,
    CLIENT_ID,
    OTHER_TENANT,
    TENANT,
    V1_ISSUER,
    V2_ISSUER,
    JwksEndpoint,
    Signer,
    forged,
    hs256_with,
    jwks_endpoint,
    write_jwks,
)
from tests.tlspki import make_pki


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def endpoint(signer: Signer, pki: tuple[Path, Path, Path]) -> Iterator[JwksEndpoint]:
    with jwks_endpoint({"keys": [signer.jwk()]}, tls=pki[1:]) as served:
        yield served


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _config(url: str = "", file: str = "") -> EntraConfig:
    return EntraConfig(TENANT, (AUDIENCE, CLIENT_ID), entra.issuers_for(TENANT), url, file)


def _verifier(endpoint: JwksEndpoint, pki: tuple[Path, Path, Path], clock: Clock | None = None) -> TokenVerifier:
    context = ssl.create_default_context(cafile=str(pki[0]))
    load = jwks.https_loader(endpoint.url, context=context)
    return TokenVerifier(_config(endpoint.url), KeySet(load, endpoint.url, clock=clock or Clock()))


def _refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRefused) as caught:
        verifier.verify(token)
    return str(caught.value)


# --------------------------------------------------------------------------------------------------
# configuration


def _settings(**values: Any) -> Settings:
    return Settings(**{"entra_tenant_id": TENANT, "entra_audience": (AUDIENCE,), **values})


def test_the_tenant_gives_the_issuers_and_the_keys_url() -> None:
    assert entra.config_from(Settings()) is None
    config = entra.config_from(_settings(entra_tenant_id=TENANT.upper()))
    assert config == EntraConfig(
        TENANT,
        (AUDIENCE,),
        (V1_ISSUER, V2_ISSUER),
        f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys",
        "",
    )
    from_file = entra.config_from(_settings(entra_jwks_file="/keys.json"))
    assert from_file is not None and (from_file.jwks_url, from_file.jwks_file) == ("", "/keys.json")
    environ = {"ACRGUARD_ENTRA_TENANT_ID": TENANT, "ACRGUARD_ENTRA_AUDIENCE": f"{AUDIENCE}, {CLIENT_ID}"}
    assert Settings.from_environ(environ).entra_audience == (AUDIENCE, CLIENT_ID)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"entra_tenant_id": ""}, "ACRGUARD_ENTRA_AUDIENCE is set but ACRGUARD_ENTRA_TENANT_ID is not"),
        ({"entra_tenant_id": "contoso.onmicrosoft.com"}, "is not a tenant id (a GUID)"),
        ({"entra_audience": ()}, "ACRGUARD_ENTRA_AUDIENCE is not set"),
        ({"entra_jwks_url": "https://evil.example/keys"}, "fetched only from https://login.microsoftonline.com"),
        ({"entra_jwks_url": "https://login.microsoftonline.com.evil.example/k"}, "fetched only from"),
        ({"entra_jwks_url": f"http://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"}, "fetched only from"),
        ({"entra_jwks_url": "https://10.0.0.5/keys"}, "fetched only from"),
        ({"entra_jwks_url": "file:///etc/keys.json"}, "fetched only from"),
        ({"entra_jwks_url": "https://127.0.0.1/k", "entra_jwks_file": "/k.json"}, "are both set"),
    ],
)
def test_settings_that_cannot_be_used_are_refused_at_configuration(values: dict[str, Any], message: str) -> None:
    settings = _settings(**values)
    with pytest.raises(SettingsError, match=re.escape(message)):
        entra.config_from(settings)
    # A request reaching a handler with them is answered 500, never let through.
    denial = access.check({"Authorization": "Bearer a.b.c"}, settings, "read")
    assert denial is not None and (denial.status, denial.code) == (500, "Misconfigured")


def test_keys_on_this_machine_are_allowed_for_stand_ins() -> None:
    for url in ("http://127.0.0.1:8080/keys", "https://localhost/keys", "http://[::1]:9/keys"):
        config = entra.config_from(_settings(entra_jwks_url=url))
        assert config is not None and config.jwks_url == url


# --------------------------------------------------------------------------------------------------
# tokens


def test_a_valid_token_gives_its_principal_and_roles(
    signer: Signer, endpoint: JwksEndpoint, pki: tuple[Path, Path, Path]
) -> None:
    verifier = _verifier(endpoint, pki)
    principal = verifier.verify(signer.token(("Findings.Read", "Other.Role")))
    assert principal.roles == {"Findings.Read", "Other.Role"}
    assert (principal.client, principal.subject) == (CLIENT_ID, "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9")
    # v1 tokens (the app manifest's default accessTokenAcceptedVersion) and the client id as audience
    v1 = signer.token(iss=V1_ISSUER, aud=CLIENT_ID, azp=None, appid=CLIENT_ID, roles=None)
    assert verifier.verify(v1).roles == frozenset() and verifier.verify(v1).client == CLIENT_ID
    # within the leeway on either side
    now = int(time.time())
    assert verifier.verify(signer.token(exp=now - 20, nbf=now + 20)).roles == {"Findings.Read"}
    assert endpoint.fetches == 1  # the keys are kept


def test_what_is_refused_and_why(signer: Signer, endpoint: JwksEndpoint, pki: tuple[Path, Path, Path]) -> None:
    verifier = _verifier(endpoint, pki)
    now = int(time.time())
    early = "token not valid yet (nbf or iat in the future)"
    cases = [
        ("token expired", signer.token(exp=now - 600)),
        (early, signer.token(nbf=now + 600)),
        (early, signer.token(iat=now + 600)),
        ("wrong audience (aud)", signer.token(aud="api://someone-else")),
        ("wrong issuer (iss)", signer.token(iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0")),
        ("wrong tenant (tid)", signer.token(tid=OTHER_TENANT)),
        ("no tid claim", signer.token(tid=None)),
        ("no exp claim", signer.token(exp=None)),
        ("signature does not verify", Signer(kid=signer.kid).token()),
        ("no key id (kid) in the token's header", forged({"alg": "RS256"}, Signer.claims(), b"sig")),
        ("not a JWT", "not-a-token"),
    ]
    for reason, token in cases:
        assert _refused(verifier, token) == reason, reason
    # A token another tenant's key signed for its own tenant names another issuer.
    other = signer.token(iss=f"https://sts.windows.net/{OTHER_TENANT}/", tid=OTHER_TENANT)
    assert _refused(verifier, other) == "wrong issuer (iss)"


def test_other_algorithms_and_oversized_tokens_are_refused_before_any_key_is_fetched(
    signer: Signer, endpoint: JwksEndpoint, pki: tuple[Path, Path, Path]
) -> None:
    verifier = _verifier(endpoint, pki)
    claims = Signer.claims(("Findings.Write",))
    none = forged({"alg": "none", "typ": "JWT", "kid": signer.kid}, claims)
    none_upper = forged({"alg": "None", "kid": signer.kid}, claims)
    # The classic confusion: HS256 keyed with the RSA public key that verifies RS256 tokens.
    confused = hs256_with(signer.public_pem(), claims, signer.kid)
    assert _refused(verifier, none) == "algorithm 'none' not accepted (RS256 only)"
    assert _refused(verifier, none_upper) == "algorithm 'None' not accepted (RS256 only)"
    assert _refused(verifier, confused) == "algorithm 'HS256' not accepted (RS256 only)"
    padded = signer.token(padding="x" * entra.MAX_TOKEN_CHARS)
    assert _refused(verifier, padded) == f"token longer than {entra.MAX_TOKEN_CHARS} characters"
    assert endpoint.fetches == 0


def test_an_unknown_key_refetches_once_then_is_refused(
    signer: Signer, endpoint: JwksEndpoint, pki: tuple[Path, Path, Path]
) -> None:
    clock = Clock()
    verifier = _verifier(endpoint, pki, clock)
    verifier.verify(signer.token())
    assert endpoint.fetches == 1
    stranger = Signer(kid="not-published")
    assert _refused(verifier, stranger.token()) == "unknown signing key 'not-published'"
    assert endpoint.fetches == 2  # fetched once more, in case the tenant had just published it
    # Made-up key ids cannot make every request a fetch: within the cooldown the keys held answer.
    assert _refused(verifier, Signer(kid="made-up").token()) == "unknown signing key 'made-up'"
    assert endpoint.fetches == 2
    # A key the tenant starts using is fetched as soon as a token names it (the cooldown over).
    rotated = Signer(kid="test-key-2")
    endpoint.document = {"keys": [signer.jwk(), rotated.jwk()]}
    clock.now += entra.REFETCH_COOLDOWN
    assert verifier.verify(rotated.token(("Findings.Write",))).roles == {"Findings.Write"}
    assert endpoint.fetches == 3
    verifier.verify(signer.token())
    assert endpoint.fetches == 3
    # Past their TTL the keys are fetched again.
    clock.now += entra.KEYS_TTL
    verifier.verify(signer.token())
    assert endpoint.fetches == 4


def test_keys_that_cannot_be_read(signer: Signer, pki: tuple[Path, Path, Path], tmp_path: Path) -> None:
    context = ssl.create_default_context(cafile=str(pki[0]))
    big = b'{"keys": [' + b" " * jwks.MAX_JWKS_BYTES + b"]}"
    for raw, message in (
        (big, f"signing keys larger than {jwks.MAX_JWKS_BYTES} bytes"),
        (b"<html>", "not JSON"),
        (b'{"keys": {}}', "not a JWKS (no `keys` array)"),
        (
            b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}, {"kty": "RSA", "use": "enc", "kid": "e"}]}',
            "no RSA",
        ),
    ):
        with jwks_endpoint(None, tls=pki[1:], raw=raw) as served:
            keys = KeySet(jwks.https_loader(served.url, context=context), served.url)
            with pytest.raises(KeysUnavailable, match=re.escape(message)):
                keys.key(signer.kid)
    # The system's trust store does not know the test CA: the certificate is checked.
    with (
        jwks_endpoint({"keys": [signer.jwk()]}, tls=pki[1:]) as served,
        pytest.raises(KeysUnavailable, match="cannot fetch the signing keys"),
    ):
        KeySet(jwks.https_loader(served.url), served.url).key(signer.kid)
    with pytest.raises(KeysUnavailable, match="cannot read the signing keys"):
        KeySet(jwks.file_loader(str(tmp_path / "missing.json")), "missing").key(signer.kid)


def test_keys_held_stay_in_use_when_a_refetch_fails(signer: Signer, pki: tuple[Path, Path, Path]) -> None:
    clock = Clock()
    with jwks_endpoint({"keys": [signer.jwk()]}, tls=pki[1:]) as served:
        verifier = _verifier(served, pki, clock)
        verifier.verify(signer.token())
    clock.now += entra.KEYS_TTL  # the server is gone now
    assert verifier.verify(signer.token()).roles == {"Findings.Read"}


# --------------------------------------------------------------------------------------------------
# beside the API key and token: access.check


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _denial(headers: dict[str, str], settings: Settings, scope: access.Scope) -> tuple[int, str] | None:
    denial = access.check(headers, settings, scope)
    return None if denial is None else (denial.status, denial.message)


def test_roles_decide_reads_writes_and_events(
    signer: Signer, pki: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki[0]))  # the settings' path trusts the system's store: here, the test CA
    with jwks_endpoint({"keys": [signer.jwk()]}, tls=pki[1:]) as served:
        settings = _settings(entra_jwks_url=served.url)
        assert access.configured(settings, "read") and not access.configured(Settings(), "read")
        reader, writer = signer.token(("Findings.Read",)), signer.token(("Findings.Write",))
        sender, nobody = signer.token(("Events.Send",)), signer.token(())
        expected = {
            reader: {"read": None, "write": 403, "events": 403},
            writer: {"read": None, "write": None, "events": None},
            sender: {"read": 403, "write": 403, "events": None},
            nobody: {"read": 403, "write": 403, "events": 403},
        }
        for token, scopes in expected.items():
            for scope, status in scopes.items():
                denial = access.check(_bearer(token), settings, scope)  # type: ignore[arg-type]
                assert (denial.status if denial else None) == status, (scope, token[-8:])
        denial = access.check(_bearer(reader), settings, "write")
        assert denial == access.Denial(
            403, "Forbidden", "the Entra ID token has no app role for this request (Findings.Write)", True
        )
        expired = signer.token(exp=int(time.time()) - 600)
        assert _denial(_bearer(expired), settings, "read") == (401, "Entra ID token refused: token expired")
        assert _denial({}, settings, "read") == (401, "missing or wrong Authorization: Bearer (an Entra ID token)")
        assert served.fetches == 1


def test_tokens_keys_and_jwts_stay_distinct(signer: Signer, tmp_path: Path) -> None:
    keys = write_jwks(tmp_path / "keys.json", signer)
    settings = _settings(entra_jwks_file=str(keys), api_key="the-api-key", api_token="the-api-token")
    token = signer.token(("Findings.Write",))
    for headers in (_bearer("the-api-token"), {"x-api-key": "the-api-key"}, _bearer(token)):
        assert access.check(headers, settings, "write") is None, headers
    wanted = "x-api-key / Authorization: Bearer / Authorization: Bearer (an Entra ID token)"
    # A JWT in x-api-key is compared with the API key only, never verified.
    assert _denial({"x-api-key": token}, settings, "read") == (
        401,
        f"missing or wrong {wanted} (x-api-key carries the API key only; send a token as Authorization: Bearer)",
    )
    # The key is no token, and a wrong opaque bearer is not read as a JWT.
    assert _denial(_bearer("the-api-key"), settings, "read") == (401, f"missing or wrong {wanted}")
    # The API token dressed as a JWT (HS256 keyed with it) is not the API token, nor an acceptable JWT.
    as_jwt = hs256_with(b"the-api-token", Signer.claims(("Findings.Write",)), signer.kid)
    assert _denial(_bearer(as_jwt), settings, "read") == (
        401,
        "Entra ID token refused: algorithm 'HS256' not accepted (RS256 only)",
    )
    # Without a tenant a valid JWT opens nothing: it is not the API token.
    plain = Settings(api_token="the-api-token")
    assert _denial(_bearer(token), plain, "read") == (401, "missing or wrong Authorization: Bearer")
    # With only Entra ID configured, an opaque token is refused as missing, not verified.
    only_entra = _settings(entra_jwks_file=str(keys))
    assert _denial(_bearer("the-api-token"), only_entra, "read") == (
        401,
        "missing or wrong Authorization: Bearer (an Entra ID token)",
    )


def test_the_jwks_file_path(signer: Signer, tmp_path: Path) -> None:
    keys = write_jwks(tmp_path / "keys.json", signer)
    settings = _settings(entra_jwks_file=str(keys))
    assert access.check(_bearer(signer.token()), settings, "read") is None
    stranger = Signer(kid="elsewhere")
    assert _denial(_bearer(stranger.token()), settings, "read") == (
        401,
        "Entra ID token refused: unknown signing key 'elsewhere'",
    )


def test_keys_that_cannot_be_fetched_are_a_503(signer: Signer) -> None:
    settings = _settings(entra_jwks_url="http://127.0.0.1:9/keys")  # the discard port: nothing listens
    denial = access.check(_bearer(signer.token()), settings, "read")
    assert denial == access.Denial(503, "Unavailable", "Entra ID signing keys unavailable; try again later", True)
