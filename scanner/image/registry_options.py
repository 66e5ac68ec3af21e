"""Options for registry access (kept apart from the adapter so callers need not import the Azure SDK)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from scanner.model.settings import Settings


@dataclass(frozen=True)
class RegistryOptions:
    insecure: bool = False  # plain HTTP
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    docker_config: str | None = None  # path to a docker config.json
    retries: int = 2
    max_blob_size: int = 32 * 1024**3

    def with_settings(self, settings: Settings) -> RegistryOptions:
        """These options with the configured credentials where they name none: ACRGUARD_REGISTRY_USERNAME and
        _PASSWORD unless both a username and a password are given here, and the `config.json` under
        $DOCKER_CONFIG unless a docker config file is named here."""
        options = self
        configured = settings.registry_username, settings.registry_password
        if not (self.username and self.password) and all(configured):
            options = replace(options, username=configured[0], password=configured[1])
        if not self.docker_config and settings.docker_config:
            options = replace(options, docker_config=str(Path(settings.docker_config) / "config.json"))
        return options
