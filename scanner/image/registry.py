"""Registry source: the OCI distribution /v2/ API through azure-containerregistry's client.

Only `get_manifest` and `download_blob` are used: the `/acr/v1/` calls answer 404 on a plain
distribution registry. Library errors are translated here, so callers see only RegistryError and
DigestMismatchError.

`make_client` is the one way to a registry (the source here, tag resolution, gate actions): it refuses a
host the allow-list does not name, sends a credential only to its own registry and only after that registry
challenged, and connects only through `scanner.image.egress`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from azure.containerregistry import ContainerRegistryClient, DigestValidationError
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy, SansIOHTTPPolicy
from azure.core.pipeline.transport import RequestsTransport

from scanner.image.egress import Egress, egress_session
from scanner.image.manifest import Descriptor
from scanner.image.reference import RegistryReference
from scanner.image.registry_options import RegistryOptions
from scanner.image.resolve import ImageSource
from scanner.image.streams import VerifyingReader
from scanner.model.errors import DigestMismatchError, RegistryError


class _AllowHttp(SansIOHTTPPolicy[Any, Any]):
    """The SDK refuses bearer auth over http:// even without a credential; this lifts it client-wide."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.context["enforce_https"] = False


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL: what "the same host" means for credentials."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def _authorization_keys(request: PipelineRequest[Any]) -> list[str]:
    return [k for k in request.http_request.headers if k.lower() == "authorization"]


class _BasicAfterChallenge(HTTPPolicy[Any, Any]):
    """Basic credentials (distribution's htpasswd, ACR admin users and tokens), sent to the registry's own
    origin only, and only once it has answered 401 with a challenge: a host that never asked never sees them.
    After the first challenge the same client sends them with each request to that origin. It sits after the
    SDK's challenge policy (ACR's token exchange), so a registry that accepts the basic credentials on the
    retry never reaches it; a Basic challenge answered 401 again reaches it as the SDK's KeyError('service'),
    which `translate_error` reports as refused credentials."""

    def __init__(self, own: tuple[str, str, int], username: str, password: str) -> None:
        super().__init__()
        self._own = own
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._challenged = False

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        if origin(request.http_request.url) != self._own:
            return self.next.send(request)
        if self._challenged and not _authorization_keys(request):
            request.http_request.headers["Authorization"] = self._header
        response = self.next.send(request)
        sent = [request.http_request.headers[k] for k in _authorization_keys(request)]
        if response.http_response.status_code != 401 or self._header in sent:
            return response
        if not response.http_response.headers.get("WWW-Authenticate"):
            return response
        body = request.http_request.body
        if body is not None and hasattr(body, "seek"):
            body.seek(0)
        self._challenged = True
        for key in _authorization_keys(request):
            del request.http_request.headers[key]
        request.http_request.headers["Authorization"] = self._header
        return self.next.send(request)


class _OwnOriginOnly(HTTPPolicy[Any, Any]):
    """The last word before the wire (after redirects, retries and every authentication policy): a request to
    any origin but the registry's own carries no Authorization header, whoever set it (azure-core drops it on
    a redirect already; the SDK's challenge policy would answer another host's 401 with an ACR token), and
    only GET or HEAD goes there: a redirected POST (ACR's token exchange carries an AAD token in its body)
    or PATCH is refused."""

    def __init__(self, registry: str, own: tuple[str, str, int]) -> None:
        super().__init__()
        self._registry = registry
        self._own = own

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        there = origin(request.http_request.url)
        if there != self._own:
            for key in _authorization_keys(request):
                del request.http_request.headers[key]
            if request.http_request.method.upper() not in ("GET", "HEAD"):
                raise RegistryError(
                    f"{self._registry}: refused to send a {request.http_request.method} to {there[1]}:{there[2]}"
                    " (only the registry itself gets requests with a body)"
                )
        return self.next.send(request)


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
    per_call: list[SansIOHTTPPolicy[Any, Any]] = [_AllowHttp()] if registry.insecure else []
    per_retry: list[HTTPPolicy[Any, Any]] = []
    basic = registry.basic()
    if basic is not None:
        per_retry.append(_BasicAfterChallenge(own, *basic))
    per_retry.append(_OwnOriginOnly(registry.host, own))
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
