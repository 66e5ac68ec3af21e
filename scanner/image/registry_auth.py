"""The registry client's own policies in the azure-core pipeline: who gets the Authorization header.

What the SDK does by itself (azure-containerregistry 1.2, azure-core 1.41): its challenge policy answers a
401 Bearer challenge with ACR's token exchange against the client's own endpoint; azure-core's RedirectPolicy
drops Authorization on every redirect and its SensitiveHeaderCleanupPolicy once the domain changed. These
policies add: basic credentials only after the registry's own challenge (before, they went up front on every
request), and a last check before the wire that nothing but the registry's own origin gets an Authorization
header or a request with a body.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy, SansIOHTTPPolicy

from scanner.model.errors import RegistryError


class AllowHttp(SansIOHTTPPolicy[Any, Any]):
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


class BasicAfterChallenge(HTTPPolicy[Any, Any]):
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


class OwnOriginOnly(HTTPPolicy[Any, Any]):
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
