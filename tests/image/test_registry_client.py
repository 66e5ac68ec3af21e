"""Which credential the registry adapter picks (no network: the client is only constructed)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from scanner.image.reference import parse_registry_reference
from scanner.image.registry import basic_credentials, make_client
from scanner.image.registry_options import RegistryOptions
from scanner.model.settings import Settings


def configured(options: RegistryOptions) -> RegistryOptions:
    """The options as a command line gives them, over the settings in the environment (as the CLI makes them)."""
    return options.with_settings(Settings.from_environ())


def test_acr_hosts_use_a_token_credential(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("ACRGUARD_REGISTRY_USERNAME", raising=False)
    client = make_client(parse_registry_reference("myreg.azurecr.io/app:1"), configured(RegistryOptions()))
    assert type(client._credential).__name__ == "DefaultAzureCredential"
    plain = make_client(parse_registry_reference("127.0.0.1:5000/app:1"), configured(RegistryOptions(insecure=True)))
    assert plain._credential is None


def test_basic_credentials_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    auth = base64.b64encode(b"cfguser:cfgpass").decode()
    config.write_text(json.dumps({"auths": {"https://reg.example": {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("ACRGUARD_REGISTRY_USERNAME", raising=False)
    assert basic_credentials("reg.example", configured(RegistryOptions())) == ("cfguser", "cfgpass")
    assert basic_credentials("other.example", configured(RegistryOptions())) is None
    monkeypatch.setenv("ACRGUARD_REGISTRY_USERNAME", "envuser")
    monkeypatch.setenv("ACRGUARD_REGISTRY_PASSWORD", "envpass")
    assert basic_credentials("reg.example", configured(RegistryOptions())) == ("envuser", "envpass")
    assert basic_credentials("reg.example", configured(RegistryOptions(username="u", password="p"))) == ("u", "p")
    # basic credentials win over the token credential for an ACR host (admin user or token)
    client = make_client(
        parse_registry_reference("myreg.azurecr.io/app:1"), configured(RegistryOptions(username="u", password="p"))
    )
    assert client._credential is None
