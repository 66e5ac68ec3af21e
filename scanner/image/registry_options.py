"""The registries acrguard may reach, each with its own credential, and the options of a registry client (kept
apart from the adapter so callers need not import the Azure SDK).

`RegistryAccess` is the allow-list: the service intake refuses an event naming any other host before anything
is queued, and the client factory (`scanner.image.registry.make_client`) refuses to build a client for one, so
no path reaches a registry the settings do not name. A credential belongs to exactly one host (compared
exactly, `host[:port]` in lower case) and is never sent anywhere else.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, cast

from scanner.model.errors import RegistryError
from scanner.model.settings import Settings, SettingsError, env_name

CredentialKind = Literal["identity", "basic", "docker", "anonymous"]
ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us", ".azurecr.de")


class RegistryNotAllowed(RegistryError):
    """A host that is not one of the allowed registries: refused before any connection is made."""


def normal_host(host: str) -> str:
    """How hosts are compared: exactly, in lower case (DNS names are case-insensitive)."""
    return host.strip().lower()


def default_kind(host: str) -> CredentialKind:
    """An ACR authenticates with the managed identity, any other registry anonymously."""
    return "identity" if normal_host(host).split(":")[0].endswith(ACR_SUFFIXES) else "anonymous"


@dataclass(frozen=True)
class Registry:
    """One registry acrguard may reach: its `host[:port]` and how it authenticates there.

    `identity`: DefaultAzureCredential through ACR's token exchange with this host; `basic`: `username` and
    `password`; `docker`: the `auths` entry for exactly this host in the docker config file `docker_config`;
    `anonymous`: none. Credentials go out only after this host answered 401 (see `scanner.image.registry`)."""

    host: str
    credential: CredentialKind = "anonymous"
    insecure: bool = False  # plain HTTP
    username: str = ""
    password: str = field(default="", repr=False)
    docker_config: str = ""  # a docker config.json, for `docker`

    def basic(self) -> tuple[str, str] | None:
        """The basic credentials of this host: its own, or its docker config entry; None for the other kinds."""
        if self.credential == "basic":
            return self.username, self.password
        if self.credential == "docker":
            found = docker_credentials(Path(self.docker_config), self.host)
            if found is None:
                raise RegistryError(f"{self.host}: docker config {self.docker_config} has no auths entry for it")
            return found
        return None


@dataclass(frozen=True)
class RegistryAccess:
    """The allow-list: the registries that may be reached, one entry per host. Empty: none may."""

    registries: tuple[Registry, ...] = ()

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(r.host for r in self.registries)

    def get(self, host: str) -> Registry | None:
        wanted = normal_host(host)
        return next((r for r in self.registries if r.host == wanted), None)

    def require(self, host: str) -> Registry:
        """The entry of `host`; RegistryNotAllowed (one line) when the settings do not name it."""
        found = self.get(host)
        if found is None:
            raise RegistryNotAllowed(
                f"registry {host[:100]!r} is not an allowed registry (name it in {env_name('registries')}): refused"
            )
        return found

    def with_registry(self, registry: Registry) -> RegistryAccess:
        """These entries with `registry` in place of any for its host."""
        kept = tuple(r for r in self.registries if r.host != registry.host)
        return RegistryAccess((*kept, registry))

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistryAccess:
        """`ACRGUARD_REGISTRIES` with their credentials, and the `ACRGUARD_INSECURE_REGISTRIES` (plain HTTP),
        which are allowed registries too. A credential the settings give a host that is not allowed, or
        `ACRGUARD_REGISTRY_USERNAME`/`_PASSWORD` bound to no host, is a SettingsError: a credential that would
        silently go unused (or, before, went to every registry) is a misconfiguration to say out loud."""
        allowed = dict(settings.registries)
        for host in sorted(settings.insecure_registries):
            allowed.setdefault(host, "")
        credentials = {host: (user, password) for host, user, password in settings.registry_credentials}
        stray = sorted(set(credentials) - set(allowed))
        if stray:
            raise SettingsError(
                f"{env_name('registry_credentials')}: {stray[0]} is not an allowed registry (name it in "
                f"{env_name('registries')})"
            )
        legacy = settings.registry_username, settings.registry_password
        legacy_hosts: list[str] = []
        entries = []
        for host, kind in allowed.items():
            # The kind was checked when read (`scanner.model.settings`); unnamed, it follows from what is given.
            chosen = cast(CredentialKind, kind) if kind else "basic" if host in credentials else default_kind(host)
            entry = Registry(host, chosen, insecure=host in settings.insecure_registries)
            if chosen != "basic" and host in credentials:
                raise SettingsError(
                    f"{env_name('registry_credentials')}: {host} is a {chosen} registry in {env_name('registries')}"
                    " (credentials are for `=basic` ones)"
                )
            if chosen == "basic":
                if host in credentials:
                    user, password = credentials[host]
                elif all(legacy):
                    user, password = str(legacy[0]), str(legacy[1])
                    legacy_hosts.append(host)
                else:
                    raise SettingsError(
                        f"{env_name('registries')}: {host}=basic has no credentials (give them in "
                        f"{env_name('registry_credentials')})"
                    )
                entry = replace(entry, username=user, password=password)
            elif chosen == "docker":
                entry = replace(entry, docker_config=docker_config_file(settings))
            entries.append(entry)
        if any(legacy) and not legacy_hosts:
            raise SettingsError(
                f"{env_name('registry_username')}/{env_name('registry_password')} are no longer sent to every "
                f"registry: set both, and name their registry as HOST=basic in {env_name('registries')} (or use "
                f"{env_name('registry_credentials')})"
            )
        return cls(tuple(entries))

    def naming(
        self,
        host: str,
        *,
        insecure: bool = False,
        username: str | None = None,
        password: str | None = None,
        docker_config: str | None = None,
        default_docker_config: str = "",
    ) -> RegistryAccess:
        """These entries plus the one registry a command line names (`acrguard scan HOST/REPO`): the user asked
        for it, so it may be reached. Its credential: the command line's (`--username`/`--password-stdin`,
        `--docker-config`), else the settings' entry for this host, else the default docker config's entry
        for exactly this host, else the managed identity for an ACR, else none."""
        wanted = normal_host(host)
        configured = self.get(wanted)
        insecure = insecure or (configured is not None and configured.insecure)
        given = docker_credentials(Path(docker_config), wanted) if docker_config else None
        if username and password:
            chosen = Registry(wanted, "basic", insecure, username, password)
        elif given is not None:
            chosen = Registry(wanted, "basic", insecure, *given)
        elif configured is not None:
            chosen = replace(configured, insecure=insecure)
        else:
            found = docker_credentials(Path(default_docker_config), wanted) if default_docker_config else None
            if found is not None:
                chosen = Registry(wanted, "basic", insecure, *found)
            else:
                chosen = Registry(wanted, default_kind(wanted), insecure)
        return self.with_registry(chosen)


def docker_config_file(settings: Settings) -> str:
    """The docker `config.json`: under $DOCKER_CONFIG, else ~/.docker."""
    directory = Path(settings.docker_config) if settings.docker_config else Path.home() / ".docker"
    return str(directory / "config.json")


def docker_credentials(path: Path, host: str) -> tuple[str, str] | None:
    """The `auths` entry of a docker config file for exactly `host` (as docker writes it: bare, or as an
    https/http URL of that host); None when the file or the entry is missing."""
    if not path.is_file():
        return None
    try:
        auths = json.loads(path.read_text()).get("auths", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise RegistryError(f"docker config {path}: cannot read ({exc})") from None
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v2/"):
        entry = auths.get(key) if isinstance(auths, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except ValueError:
                raise RegistryError(f"docker config {path}: auth for {host} is not base64 user:password") from None
            return user, password
    return None


@dataclass(frozen=True)
class RegistryOptions:
    """What a registry client is made with: the allow-list (with each host's credential and scheme) and the
    connection's options."""

    registries: RegistryAccess = field(default_factory=RegistryAccess)
    ca_file: str | None = None
    retries: int = 2
    max_blob_size: int = 32 * 1024**3

    def with_settings(self, settings: Settings) -> RegistryOptions:
        """These options with the configured registries (`RegistryAccess.from_settings`), and the configured CA
        bundle unless these options name one."""
        return replace(
            self,
            registries=RegistryAccess.from_settings(settings),
            ca_file=self.ca_file or settings.registry_ca_file,
        )
