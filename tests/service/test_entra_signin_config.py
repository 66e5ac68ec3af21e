"""Sign-in with Microsoft's configuration: off without a client id, and every unusable combination a
SettingsError naming the variable (never a sign-in sent somewhere unexpected)."""

from __future__ import annotations

import pytest

from scanner.model.settings import Settings, SettingsError
from scanner.service.entra_signin import challenge_of, config_from
from tests.service.entra_support import TENANT

GOOD = {
    "ACRGUARD_ENTRA_TENANT_ID": TENANT,
    "ACRGUARD_ENTRA_CLIENT_ID": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "ACRGUARD_ENTRA_CLIENT_SECRET": "s3cret",
}
BASE = "https://acrguard.example.net"


def settings(**changes: str) -> Settings:
    return Settings.from_environ({k: v for k, v in (GOOD | changes).items() if v})


def test_off_without_a_client_id() -> None:
    assert config_from(settings(ACRGUARD_ENTRA_CLIENT_ID=""), BASE) is None


def test_a_usable_configuration() -> None:
    config = config_from(settings(), BASE)
    assert config is not None
    assert config.redirect_uri == f"{BASE}/api/dashboard/login/callback"
    assert config.authorize_url == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize"
    assert config.token_url == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert config.id_tokens.audiences == (GOOD["ACRGUARD_ENTRA_CLIENT_ID"],)
    assert config.id_tokens.jwks_url == f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("changes", "base", "named"),
    [
        ({"ACRGUARD_ENTRA_TENANT_ID": ""}, BASE, "ACRGUARD_ENTRA_TENANT_ID"),
        ({"ACRGUARD_ENTRA_TENANT_ID": "contoso"}, BASE, "ACRGUARD_ENTRA_TENANT_ID"),
        ({"ACRGUARD_ENTRA_CLIENT_SECRET": ""}, BASE, "ACRGUARD_ENTRA_CLIENT_SECRET"),
        ({"ACRGUARD_ENTRA_AUTHORITY": "https://login.evil.example"}, BASE, "ACRGUARD_ENTRA_AUTHORITY"),
        ({"ACRGUARD_ENTRA_AUTHORITY": "http://login.microsoftonline.com"}, BASE, "ACRGUARD_ENTRA_AUTHORITY"),
        ({"ACRGUARD_ENTRA_JWKS_URL": "https://keys.evil.example/keys"}, BASE, "ACRGUARD_ENTRA_JWKS_URL"),
        ({}, "", "ACRGUARD_PUBLIC_URL"),
        ({}, "http://acrguard.example.net", "ACRGUARD_PUBLIC_URL"),
    ],
)
def test_unusable_configurations_name_the_variable(changes: dict[str, str], base: str, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        config_from(settings(**changes), base)


def test_a_stand_in_on_this_machine_is_allowed() -> None:
    config = config_from(settings(ACRGUARD_ENTRA_AUTHORITY="http://127.0.0.1:8123"), "http://127.0.0.1:7071")
    assert config is not None and config.token_url.startswith("http://127.0.0.1:8123/")


def test_pkce_challenge_is_rfc_7636s() -> None:
    # RFC 7636, appendix B.
    assert challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
