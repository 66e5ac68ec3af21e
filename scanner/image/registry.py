"""Registry source: the OCI distribution /v2/ API through azure-containerregistry's client.

Only `get_manifest` and the blob GET are used: the `/acr/v1/` calls answer 404 on a plain
distribution registry. Library errors are translated here, so callers see only RegistryError and
DigestMismatchError.

`make_client` is the one way to a registry (the source here, tag resolution, gate actions): it refuses a
host the allow-list does not name, sends a credential only to its own registry and only after that registry
challenged (`scanner.image.registry_auth`), and connects only through `scanner.image.egress`.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from azure.core.pipeline.policies import HTTPPolicy, SansIOHTTPPolicy
from azure.core.pipeline.transport import RequestsTransport

from scanner.image.egress import Egress, egress_session
from scanner.image.manifest import Descriptor
from scanner.image.reference import RegistryReference
from scanner.image.registry_auth import AllowHttp, BasicAfterChallenge, OwnOriginOnly, origin
from scanner.image.registry_options import RegistryOptions
from scanner.image.resolve import ImageSource
from scanner.image.streams import VerifyingReader
from scanner.model.errors import DigestMismatchError, RegistryError


def make_client(ref: RegistryReference, options: RegistryOptions) -> ContainerRegistryClient:
    """A client for the registry `ref` names, which must be one of `options.registries` (else
    RegistryNotAllowed, before any connection): its own credential, and connections only through the
    address checks of `scanner.image.egress`."""
    registry = options.registries.require(ref.registry)
    scheme = "http" if registry.insecure else "https"
    endpoint = f"{scheme}://{registry.host}"
    own = origin(endpoint)
    # 1 MiB reads instead of azure-core's 4 KiB default: per-chunk overhead dominated blob streaming.
    transport_options: dict[str, Any] = {"connection_data_block_size": 1 << 20}
    if options.ca_file:
        transport_options["connection_verify"] = options.ca_file
    session = egress_session(Egress.for_registries(options.registries))
    transport = RequestsTransport(session=session, session_owner=True, **transport_options)
    per_call: list[SansIOHTTPPolicy[Any, Any]] = [AllowHttp()] if registry.insecure else []
    per_retry: list[HTTPPolicy[Any, Any]] = []
    basic = registry.basic()
    if basic is not None:
        per_retry.append(BasicAfterChallenge(own, *basic))
    per_retry.append(OwnOriginOnly(registry.host, own))
    credential = None
    if registry.credential == "identity":
        from azure.identity import DefaultAzureCredential

        # Used by the SDK's challenge policy only: exchanged for an ACR token with this endpoint, on its 401.
        credential = DefaultAzureCredential()
    return ContainerRegistryClient(
        endpoint,
        credential,
        transport=transport,
        per_call_policies=per_call,
        per_retry_policies=per_retry,
        retry_total=options.retries,
        retry_backoff_factor=0.3,
    )


def translate_error(exc: Exception, what: str, has_credentials: bool = False) -> Exception:
    if isinstance(exc, KeyError) and exc.args == ("service",):
        # The SDK's challenge policy only speaks ACR's bearer-token exchange; a registry that answers
        # 401 with a Basic challenge surfaces as this KeyError.
        if has_credentials:
            return RegistryError(f"{what}: authentication failed: the registry refused the credentials")
        return RegistryError(
            f"{what}: authentication required: give --username/--password-stdin, "
            "a docker config with auths for this host, or name it in ACRGUARD_REGISTRIES with its credential"
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
        self.has_credentials = options.registries.require(ref.registry).credential != "anonymous"

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
            # One streamed GET through the client's own pipeline (its auth, retries, redirects and our policies):
            # `download_blob` asks in sequential 4 MiB ranges, a round trip each, and hashes the blob a second
            # time, where VerifyingReader already bounds it and checks its size and digest as it streams.
            stream = self.client._client.container_registry_blob.get_blob(self.ref.repository, descriptor.digest)
        except (AzureError, ValueError, KeyError) as exc:
            raise translate_error(exc, what, self.has_credentials) from None
        if stream is None:  # a 307 the pipeline did not follow
            raise RegistryError(f"{what}: the registry redirected the blob elsewhere and it was not followed")
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
