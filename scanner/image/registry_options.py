"""Options for registry access (kept apart from the adapter so callers need not import the Azure SDK)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegistryOptions:
    insecure: bool = False  # plain HTTP
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    docker_config: str | None = None  # path to a docker config.json
    retries: int = 2
    max_blob_size: int = 32 * 1024**3
