"""Registry source: the OCI distribution /v2/ API through azure-containerregistry's client.

Only `get_manifest` and `download_blob` are used: the `/acr/v1/` calls answer 404 on a plain
distribution registry. Library errors are translated here, so callers see only RegistryError and
DigestMismatchError.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from azure.containerregistry import ContainerRegistryClient, DigestValidationError
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from scanner.image.manifest import Descriptor
from scanner.image.reference import RegistryReference
from scanner.image.registry_options import RegistryOptions
from scanner.image.resolve import ImageSource
from scanner.image.streams import VerifyingReader
from scanner.model.errors import DigestMismatchError, RegistryError

ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us", ".azurecr.de")


class _AllowHttp(SansIOHTTPPolicy[Any, Any]):
    """The SDK refuses bearer auth over http:// even without a credential; this lifts it client-wide."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.context["enforce_https"] = False


class _BasicAuth(SansIOHTTPPolicy[Any, Any]):
    """Pre-emptive basic credentials (distribution's htpasswd, ACR admin user or tokens)."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._header = f"Basic {token}"

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.http_request.headers["Authorization"] = self._header


def basic_credentials(registry: str, options: RegistryOptions) -> tuple[str, str] | None:
    """Basic credentials: the options' username and password, else the docker config file's `auths` entry for
    the host (`options.docker_config`, else ~/.docker/config.json). The configured ones
    (ACRGUARD_REGISTRY_USERNAME/PASSWORD, $DOCKER_CONFIG) come in through `RegistryOptions.with_settings`."""
    if options.username and options.password:
        return options.username, options.password
    path = Path(options.docker_config) if options.docker_config else Path.home() / ".docker" / "config.json"
    if not path.is_file():
        return None
    try:
        auths = json.loads(path.read_text()).get("auths", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise RegistryError(f"docker config {path}: cannot read ({exc})") from None
    for key in (registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v2/"):
        entry = auths.get(key) if isinstance(auths, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except ValueError:
                raise RegistryError(f"docker config {path}: auth for {registry} is not base64 user:password") from None
            return user, password
    return None


def make_client(ref: RegistryReference, options: RegistryOptions) -> ContainerRegistryClient:
    scheme = "http" if options.insecure else "https"
    # 1 MiB reads instead of azure-core's 4 KiB default: per-chunk overhead dominated blob streaming.
    kwargs: dict[str, Any] = {
        "retry_total": options.retries,
        "retry_backoff_factor": 0.3,
        "connection_data_block_size": 1 << 20,
    }
    if options.ca_file:
        kwargs["connection_verify"] = options.ca_file
    policies: list[SansIOHTTPPolicy[Any, Any]] = []
    if options.insecure:
        policies.append(_AllowHttp())
    credential = None
    basic = basic_credentials(ref.registry, options)
    if basic is not None:
        policies.append(_BasicAuth(*basic))
    elif ref.registry.endswith(ACR_SUFFIXES):
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    if policies:
        kwargs["per_call_policies"] = policies
    return ContainerRegistryClient(f"{scheme}://{ref.registry}", credential, **kwargs)


def translate_error(exc: Exception, what: str, has_credentials: bool = False) -> Exception:
    if isinstance(exc, KeyError) and exc.args == ("service",):
        # The SDK's challenge policy only speaks ACR's bearer-token exchange; a registry that answers
        # 401 with a Basic challenge surfaces as this KeyError.
        if has_credentials:
            return RegistryError(f"{what}: authentication failed: the registry refused the credentials")
        return RegistryError(
            f"{what}: authentication required: give --username/--password-stdin, "
            "ACRGUARD_REGISTRY_USERNAME/ACRGUARD_REGISTRY_PASSWORD or a docker config with auths for this host"
        )
    if isinstance(exc, DigestValidationError):
        return DigestMismatchError(f"{what}: {exc}")
    if isinstance(exc, ResourceNotFoundError):
        return RegistryError(f"{what}: not found in the registry")
    if isinstance(exc, ClientAuthenticationError):
        return RegistryError(f"{what}: authentication failed ({_first_line(exc)})")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        detail = _first_line(exc)
        hint = " (a plain-HTTP registry? add --insecure)" if "WRONG_VERSION_NUMBER" in detail.upper() else ""
        return RegistryError(f"{what}: cannot reach the registry ({detail}){hint}")
    if isinstance(exc, HttpResponseError):
        return RegistryError(f"{what}: registry answered HTTP {exc.status_code} ({_first_line(exc)})")
    return RegistryError(f"{what}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


class RegistrySource(ImageSource):
    def __init__(self, ref: RegistryReference, options: RegistryOptions) -> None:
        self.ref = ref
        self.reference = str(ref)
        self.options = options
        self.client = make_client(ref, options)
        self.has_credentials = basic_credentials(ref.registry, options) is not None

    def _manifest(self, tag_or_digest: str, what: str) -> tuple[Any, str, str]:
        try:
            result = self.client.get_manifest(self.ref.repository, tag_or_digest)
        except (AzureError, ValueError, KeyError) as exc:
            raise translate_error(exc, what, self.has_credentials) from None
        media_type = str(result.media_type or "").split(";")[0].strip()
        return result.manifest, media_type, str(result.digest)

    def root(self) -> tuple[Any, str, str]:
        return self._manifest(self.ref.tag_or_digest, f"{self.reference}: manifest")

    def document(self, descriptor: Descriptor, what: str) -> Any:
        doc, _, _ = self._manifest(descriptor.digest, what)
        return doc

    def open_blob(self, descriptor: Descriptor, what: str) -> VerifyingReader:
        try:
            stream = self.client.download_blob(self.ref.repository, descriptor.digest)
        except (AzureError, ValueError, KeyError) as exc:
            raise translate_error(exc, what, self.has_credentials) from None
        return VerifyingReader(
            self._chunks(stream, what),
            descriptor.digest,
            descriptor.size,
            self.options.max_blob_size,
            what,
        )

    @staticmethod
    def _chunks(stream: Iterator[bytes], what: str) -> Iterator[bytes]:
        try:
            yield from stream
        except (AzureError, ValueError, KeyError) as exc:
            raise translate_error(exc, what) from None

    def close(self) -> None:
        self.client.close()
