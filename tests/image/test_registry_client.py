"""Which registries may be reached and with which credential, per host (no network: the client is only
constructed). The wire-level checks (no header before a challenge, none to another host) are in
tests/security/test_registry_allowlist.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from scanner.image.reference import parse_registry_reference
from scanner.image.registry import make_client
from scanner.image.registry_options import Registry, RegistryAccess, RegistryNotAllowed, RegistryOptions
from scanner.model.errors import RegistryError
from scanner.model.settings import Settings, SettingsError


def access(environ: dict[str, str]) -> RegistryAccess:
    return RegistryAccess.from_settings(Settings.from_environ(environ))


def docker_config(directory: Path, host_key: str, user: str, password: str) -> Path:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {host_key: {"auth": auth}}}))
    return directory / "config.json"


def test_the_settings_name_each_registry_with_its_own_credential(tmp_path: Path) -> None:
    docker_config(tmp_path, "https://ghcr.example", "cfguser", "cfgpass")
    found = access(
        {
            "ACRGUARD_REGISTRIES": "MyReg.azurecr.io, registry.lan:5000=basic, ghcr.example=docker, "
            "public.example=anonymous, other.azurecr.io=anonymous",
            "ACRGUARD_REGISTRY_CREDENTIALS": json.dumps({"registry.lan:5000": {"username": "u", "password": "p"}}),
            "ACRGUARD_INSECURE_REGISTRIES": "registry.lan:5000,127.0.0.1:5001",
            "DOCKER_CONFIG": str(tmp_path),
        }
    )
    assert found.hosts == {
        "myreg.azurecr.io",
        "registry.lan:5000",
        "ghcr.example",
        "public.example",
        "other.azurecr.io",
        "127.0.0.1:5001",
    }
    assert found.require("myreg.azurecr.io") == Registry("myreg.azurecr.io", "identity")
    assert found.require("registry.lan:5000") == Registry("registry.lan:5000", "basic", True, "u", "p")
    assert found.require("ghcr.example").basic() == ("cfguser", "cfgpass")
    assert found.require("public.example").basic() is None
    assert found.require("other.azurecr.io").credential == "anonymous"
    # An insecure registry is an allowed one, anonymous unless given a credential.
    assert found.require("127.0.0.1:5001") == Registry("127.0.0.1:5001", "anonymous", True)
    # Exact host[:port]: another port, a longer name or a prefix is another registry.
    for other in ("registry.lan", "registry.lan:5001", "myreg.azurecr.io.evil.example", "169.254.169.254"):
        with pytest.raises(RegistryNotAllowed, match="is not an allowed registry"):
            found.require(other)
    # The password stays out of every repr (logs).
    assert "'p'" not in repr(found) and "password='p'" not in repr(found)


def test_no_registry_is_allowed_by_default() -> None:
    with pytest.raises(RegistryNotAllowed, match=r"^registry 'myreg.azurecr.io' is not an allowed registry"):
        access({}).require("myreg.azurecr.io")


def test_a_host_with_credentials_defaults_to_basic() -> None:
    found = access(
        {
            "ACRGUARD_REGISTRIES": "reg.example",
            "ACRGUARD_REGISTRY_CREDENTIALS": '{"reg.example": {"username": "u", "password": "p"}}',
        }
    )
    assert found.require("reg.example").basic() == ("u", "p")


def test_the_old_username_and_password_go_only_to_a_named_basic_host() -> None:
    legacy = {"ACRGUARD_REGISTRY_USERNAME": "envuser", "ACRGUARD_REGISTRY_PASSWORD": "envpass"}
    found = access({**legacy, "ACRGUARD_REGISTRIES": "reg.example=basic,other.example"})
    assert found.require("reg.example").basic() == ("envuser", "envpass")
    assert found.require("other.example").basic() is None
    # Bound to no host: one line saying what to set instead (they used to go to every registry).
    with pytest.raises(SettingsError) as caught:
        access({**legacy, "ACRGUARD_REGISTRIES": "reg.example"})
    message = str(caught.value)
    assert "no longer sent to every registry" in message and "HOST=basic in ACRGUARD_REGISTRIES" in message
    with pytest.raises(SettingsError, match="no longer sent to every registry"):
        access({"ACRGUARD_REGISTRY_USERNAME": "envuser"})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ACRGUARD_REGISTRIES": "reg.example=token"}, "ACRGUARD_REGISTRIES: reg.example: unknown credential kind"),
        ({"ACRGUARD_REGISTRIES": "https://reg.example"}, "ACRGUARD_REGISTRIES: 'https://reg.example' is not a"),
        ({"ACRGUARD_REGISTRIES": "a.example,A.example"}, "ACRGUARD_REGISTRIES: a.example is named twice"),
        ({"ACRGUARD_REGISTRIES": "reg.example=basic"}, "ACRGUARD_REGISTRIES: reg.example=basic has no credentials"),
        ({"ACRGUARD_REGISTRY_CREDENTIALS": "{not json"}, "ACRGUARD_REGISTRY_CREDENTIALS: not a JSON object"),
        (
            {"ACRGUARD_REGISTRY_CREDENTIALS": '{"reg.example": {"username": "u", "password": "hunter2"}}'},
            "ACRGUARD_REGISTRY_CREDENTIALS: reg.example is not an allowed registry",
        ),
        (
            {
                "ACRGUARD_REGISTRIES": "reg.example=docker",
                "ACRGUARD_REGISTRY_CREDENTIALS": '{"reg.example": {"username": "u", "password": "hunter2"}}',
            },
            "ACRGUARD_REGISTRY_CREDENTIALS: reg.example is a docker registry",
        ),
        (
            {"ACRGUARD_REGISTRIES": "r.example", "ACRGUARD_REGISTRY_CREDENTIALS": '{"r.example": {"password": "x"}}'},
            "ACRGUARD_REGISTRY_CREDENTIALS: r.example: expected exactly the fields username and password",
        ),
    ],
)
def test_a_bad_registry_setting_is_one_line_naming_it(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        access(environ)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text and "hunter2" not in text


def test_the_command_line_names_one_more_registry(tmp_path: Path) -> None:
    configured = access(
        {
            "ACRGUARD_REGISTRIES": "reg.example=basic,myreg.azurecr.io",
            "ACRGUARD_REGISTRY_CREDENTIALS": '{"reg.example": {"username": "u", "password": "p"}}',
        }
    )
    default_config = str(docker_config(tmp_path, "cli.example", "cfguser", "cfgpass"))
    # Its own credentials for the named host; the settings' other hosts keep theirs.
    named = configured.naming("Other.example", username="cli", password="pw")
    assert named.require("other.example") == Registry("other.example", "basic", False, "cli", "pw")
    assert named.require("reg.example").basic() == ("u", "p")
    # No credential given: the settings' entry for exactly this host, else the default docker config's, else
    # the managed identity for an ACR, else none; never another host's.
    assert configured.naming("reg.example", insecure=True).require("reg.example").basic() == ("u", "p")
    cli = configured.naming("cli.example", default_docker_config=default_config).require("cli.example")
    assert cli.basic() == ("cfguser", "cfgpass")
    assert configured.naming("new.azurecr.io").require("new.azurecr.io").credential == "identity"
    stranger = configured.naming("stranger.example", default_docker_config=default_config)
    assert stranger.require("stranger.example") == Registry("stranger.example", "anonymous")


def test_the_client_factory_refuses_a_host_it_is_not_given() -> None:
    options = RegistryOptions(RegistryAccess((Registry("reg.example"),)))
    with pytest.raises(RegistryNotAllowed, match=r"'evil\.example' is not an allowed registry"):
        make_client(parse_registry_reference("evil.example/app:1"), options)
    with pytest.raises(RegistryNotAllowed):
        make_client(parse_registry_reference("reg.example:444/app:1"), options)


def test_the_client_uses_the_hosts_own_credential(tmp_path: Path) -> None:
    options = RegistryOptions(
        RegistryAccess(
            (
                Registry("myreg.azurecr.io", "identity"),
                Registry("admin.azurecr.io", "basic", username="u", password="p"),
                Registry("127.0.0.1:5000", "anonymous", insecure=True),
                Registry("docker.example", "docker", docker_config=str(tmp_path / "missing.json")),
            )
        )
    )
    client = make_client(parse_registry_reference("myreg.azurecr.io/app:1"), options)
    assert type(client._credential).__name__ == "DefaultAzureCredential"
    # Basic credentials for an ACR host (admin user, token) are its kind: no token credential.
    assert make_client(parse_registry_reference("admin.azurecr.io/app:1"), options)._credential is None
    assert make_client(parse_registry_reference("127.0.0.1:5000/app:1"), options)._credential is None
    with pytest.raises(RegistryError, match=r"docker config .* has no auths entry for it"):
        make_client(parse_registry_reference("docker.example/app:1"), options)
