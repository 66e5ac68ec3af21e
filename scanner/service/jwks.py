"""Where Entra ID's signing keys are read from (the I/O `scanner.service.entra` is handed as a loader): the
tenant's JWKS over HTTPS, or a JWKS file (an air-gapped deployment, tests).

A fetch has a timeout, follows no redirect (a JWKS that moved elsewhere is not followed there) and reads at
most `MAX_JWKS_BYTES`; a file is read to the same bound. Every failure is one `KeysUnavailable` line naming
the URL or path.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scanner import __version__
from scanner.service.entra import EntraConfig, KeySet, KeysUnavailable, TokenVerifier

MAX_JWKS_BYTES = 256 * 1024  # Microsoft's JWKS is about 10 kB
TIMEOUT_SECONDS = 10.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def https_loader(
    url: str, *, timeout: float = TIMEOUT_SECONDS, context: ssl.SSLContext | None = None
) -> Callable[[], bytes]:
    """Fetches `url` (checked by `entra.config_from`) on each call. `context`: the TLS trust (default the
    system's; tests pass their own CA)."""
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect(), urllib.request.HTTPSHandler(context=context)]
    if urllib.parse.urlsplit(url).hostname in ("127.0.0.1", "::1", "localhost"):
        handlers.append(urllib.request.ProxyHandler({}))  # a stand-in on this machine is never behind a proxy
    opener = urllib.request.build_opener(*handlers)

    def load() -> bytes:
        request = urllib.request.Request(
            url, headers={"User-Agent": f"acrguard/{__version__}", "Accept": "application/json"}
        )
        try:
            with opener.open(request, timeout=timeout) as response:
                data: bytes = response.read(MAX_JWKS_BYTES + 1)
        except urllib.error.HTTPError as err:
            err.close()
            raise KeysUnavailable(f"{url}: HTTP {err.code}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as err:
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
            raise KeysUnavailable(f"{url}: cannot fetch the signing keys ({reason})") from None
        if len(data) > MAX_JWKS_BYTES:
            raise KeysUnavailable(f"{url}: signing keys larger than {MAX_JWKS_BYTES} bytes")
        return data

    return load


def file_loader(path: str) -> Callable[[], bytes]:
    """Reads the JWKS file at `path` on each call."""

    def load() -> bytes:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_JWKS_BYTES + 1)
        except OSError as err:
            raise KeysUnavailable(f"{path}: cannot read the signing keys ({err.strerror})") from None
        if len(data) > MAX_JWKS_BYTES:
            raise KeysUnavailable(f"{path}: signing keys larger than {MAX_JWKS_BYTES} bytes")
        return data

    return load


def verifier(config: EntraConfig, *, context: ssl.SSLContext | None = None) -> TokenVerifier:
    """A verifier whose keys come from the configured file, else the configured (or the tenant's) URL."""
    if config.jwks_file:
        keys = KeySet(file_loader(config.jwks_file), str(Path(config.jwks_file)))
    else:
        keys = KeySet(https_loader(config.jwks_url, context=context), config.jwks_url)
    return TokenVerifier(config, keys)
