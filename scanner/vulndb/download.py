"""HTTP(S) downloads of feeds: streamed to a file in chunks (an osv.dev archive is hundreds of MB), with
conditional requests, redirects followed only to https, and every failure (status, connection, short body) as
one `FeedError`."""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from scanner import __version__
from scanner.model.hosts import is_loopback
from scanner.vulndb.errors import FeedError

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60.0
# A bound on one download, so that a misbehaving server cannot fill the disk (osv.dev's largest archive is far less).
MAX_DOWNLOAD_BYTES = 16 << 30


@dataclass(frozen=True)
class Fetched:
    url: str
    path: Path | None  # None when the server said 304 Not Modified
    etag: str | None
    last_modified: str | None
    size: int

    @property
    def not_modified(self) -> bool:
        return self.path is None


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


class _HttpsRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to https (a feed's download is never downgraded to plain http), or, for a server on
    this machine (a test, a local mirror), from plain http on loopback to plain http on loopback."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        target = urllib.parse.urlsplit(newurl)
        source = urllib.parse.urlsplit(req.full_url)
        local = is_loopback(source.hostname or "") and is_loopback(target.hostname or "")
        if target.scheme != "https" and not (local and target.scheme == "http"):
            raise FeedError(f"{req.full_url}: redirect to {newurl[:200]} refused (a feed is followed only to https)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(url: str) -> urllib.request.OpenerDirector:
    # Proxies from the environment apply to real feeds; a server on this machine is never reached through one.
    host = urllib.parse.urlsplit(url).hostname or ""
    if is_loopback(host):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}), _HttpsRedirects)
    return urllib.request.build_opener(_HttpsRedirects)


@contextmanager
def fetch(
    url: str,
    directory: Path,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Iterator[Fetched]:
    """GET `url` into a temporary file in `directory` (deleted on exit). With `etag`/`last_modified` from the copy
    held, the request is conditional and an unchanged feed yields `not_modified` without a body. A body over
    `max_bytes` is a `FeedError`."""
    headers = {"User-Agent": f"acrguard/{__version__}", "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers)
    try:
        response = _opener(url).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304:
            yield Fetched(url, None, etag, last_modified, 0)
            return
        raise FeedError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise FeedError(f"{url}: cannot connect ({reason})") from exc
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".acrguard-download-", suffix=".part", dir=directory)
    path = Path(name)
    try:
        with response, os.fdopen(handle, "wb") as out:
            size = _copy(url, response, out, max_bytes)
            new_etag = response.headers.get("ETag")
            new_last_modified = response.headers.get("Last-Modified")
        yield Fetched(url, path, new_etag, new_last_modified, size)
    finally:
        path.unlink(missing_ok=True)


# Told (url, bytes so far, total or None) after each chunk, when set: the CLI's progress bar. A context variable,
# so the download code needs no parameter for it and concurrent updates (other threads) are not reported.
DOWNLOAD_PROGRESS: ContextVar[Callable[[str, int, int | None], None] | None] = ContextVar(
    "DOWNLOAD_PROGRESS", default=None
)


def _copy(url: str, response: http.client.HTTPResponse, out: IO[bytes], max_bytes: int = MAX_DOWNLOAD_BYTES) -> int:
    write = out.write
    expected = response.headers.get("Content-Length")
    total = int(expected) if expected is not None and expected.isdigit() else None
    report = DOWNLOAD_PROGRESS.get()
    size = 0
    try:
        while chunk := response.read(CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise FeedError(f"{url}: download larger than {max_bytes} bytes, stopped")
            write(chunk)
            if report is not None:
                report(url, size, total)
    except (http.client.HTTPException, OSError) as exc:
        raise FeedError(f"{url}: download interrupted after {size} bytes ({type(exc).__name__}: {exc})") from exc
    if expected is not None and expected.isdigit() and int(expected) != size:
        raise FeedError(f"{url}: download truncated: {size} of {expected} bytes")
    return size
