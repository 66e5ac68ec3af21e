"""The vulnerability database published as a blob (`ACRGUARD_DB_BLOB_URL`), so that every reader (the
function app's instances, the Container Apps worker) scans with the database the update timer built.

The timer publishes: the database file, its sha256 in the blob's metadata, then a manifest blob beside it
(`vulndb.json` for `…/vulndb.sqlite`: `{"digest": "sha256:…", "size": N, "updated": "…"}`), written last so
that a reader never sees a manifest naming a database not yet uploaded. A reader checks the manifest at most
every `check_seconds`; when its digest is not the local copy's, the blob is streamed to a temporary file
beside the local copy (bounded by the manifest's size and `max_bytes`), its sha256 checked against the
manifest, and only then swapped in by rename. Any failure keeps the previous verified copy (and is logged);
with no verified copy at all the reader fails closed, naming the blob: with a blob configured, the small
bundled snapshot is never a silent stand-in for the real database.

Which copy was verified is recorded beside it (`<file>.verified.json`: its digest and the file's identity),
so a new process trusts its predecessor's download without hashing it again, and a file replaced by anything
else (an update run in this process) is not taken for the verified one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from scanner.model.errors import AcrguardError, one_line

log = logging.getLogger(__name__)

MANIFEST_MAX_BYTES = 64 * 1024
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 1024 * 1024
# One lock per local copy, shared by the timer's publisher and every reader in the process: a download
# never swaps a file the update is writing or about to publish.
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class DbBlobError(AcrguardError):
    """The published database cannot be used and no verified copy is at hand; one line naming the blob."""


@dataclass(frozen=True)
class Manifest:
    """What the publisher says the blob holds."""

    digest: str  # sha256:<hex>
    size: int
    updated: str

    def to_json(self) -> bytes:
        return json.dumps({"digest": self.digest, "size": self.size, "updated": self.updated}).encode()

    @classmethod
    def parse(cls, data: bytes, where: str) -> Manifest:
        """A manifest from untrusted bytes; anything unexpected is a DbBlobError naming `where`."""
        if len(data) > MANIFEST_MAX_BYTES:
            raise DbBlobError(f"{where}: manifest larger than {MANIFEST_MAX_BYTES} bytes")
        try:
            document = json.loads(data)
        except ValueError:
            raise DbBlobError(f"{where}: manifest is not JSON") from None
        if not isinstance(document, dict):
            raise DbBlobError(f"{where}: manifest is not a JSON object")
        digest, size, updated = document.get("digest"), document.get("size"), document.get("updated", "")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise DbBlobError(f"{where}: manifest digest is not sha256:<64 hex>")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise DbBlobError(f"{where}: manifest size is not a whole number of bytes")
        return cls(digest, size, str(updated)[:64])


def manifest_url(blob_url: str) -> str:
    """The manifest beside the database blob: `…/vulndb.sqlite` -> `…/vulndb.json`."""
    head, _, name = blob_url.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name.strip(".") else name
    return f"{head}/{stem}.json"


def check_blob_url(url: str) -> str:
    """`https://ACCOUNT.blob.core.windows.net/CONTAINER/NAME` (an emulator's path-style URL too): a container
    and a blob name, no query (a SAS token is a key: the identity signs in instead)."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"[:100]  # never a query: it may hold a SAS token
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise DbBlobError(
            f"database blob {shown!r}: not an https://ACCOUNT.blob.core.windows.net/CONTAINER/NAME URL (no query)"
        )
    if len(segments) < 2 or parts.path.endswith("/"):
        raise DbBlobError(f"database blob {shown!r}: the URL names no container and blob")
    return url


def identity_credential() -> Any:
    """DefaultAzureCredential: the managed identity in Azure (a user-assigned one named by `AZURE_CLIENT_ID`).
    Building it reaches no network; the first token request does."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def file_digest(path: Path) -> tuple[str, int]:
    """`sha256:<hex>` and the size of a file, streamed."""
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return f"sha256:{sha.hexdigest()}", size


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path, threading.Lock())


def _identity(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


class DbBlob:
    """The database blob of `url` and its local copy at `local`."""

    def __init__(
        self,
        url: str,
        local: Path,
        *,
        credential: Any = None,
        max_bytes: int = 4096 * 1024 * 1024,
        check_seconds: float = 300,
    ) -> None:
        from azure.storage.blob import BlobClient, LinearRetry

        self.url = check_blob_url(url)
        self.local = local
        self.max_bytes = max_bytes
        self.check_seconds = check_seconds
        credential = credential if credential is not None else identity_credential()
        try:
            # A few quick retries: a reader waits on them before its scan, and checks again at the next interval.
            retry = LinearRetry(backoff=1, random_jitter_range=1, retry_total=3)
            self._blob = BlobClient.from_blob_url(self.url, credential=credential, retry_policy=retry)
            self._manifest = BlobClient.from_blob_url(manifest_url(self.url), credential=credential, retry_policy=retry)
        except ValueError as err:
            raise DbBlobError(f"database blob {self.url}: {one_line(err)}") from err
        self._checked_at: float | None = None

    def close(self) -> None:
        self._blob.close()
        self._manifest.close()

    # ---------------------------------------------------------------------------------------------
    # the local copy

    @property
    def _sidecar(self) -> Path:
        return self.local.with_name(self.local.name + ".verified.json")

    def verified_digest(self) -> str | None:
        """The digest of the local copy if it is the one last verified (or published) here, else None."""
        try:
            record = json.loads(self._sidecar.read_bytes()[:MANIFEST_MAX_BYTES])
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("file") != _identity(self.local):
            return None
        digest = record.get("digest")
        return digest if isinstance(digest, str) and _DIGEST.fullmatch(digest) else None

    def _record_verified(self, digest: str) -> None:
        record = json.dumps({"digest": digest, "file": _identity(self.local)}).encode()
        fd, tmp = tempfile.mkstemp(prefix=".verified-", dir=self.local.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(record)
            os.replace(tmp, self._sidecar)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Held while this process writes the local copy itself (the update timer): readers keep away."""
        with _lock_for(self.local):
            yield

    # ---------------------------------------------------------------------------------------------
    # the publisher

    def publish(self) -> bool:
        """Uploads the local copy (called under `writing()`) unless the manifest already names it; whether it
        uploaded. The local copy is ours (the update built it): it is recorded as verified first."""
        if not self.local.is_file():
            raise DbBlobError(f"database blob {self.url}: nothing to publish at {self.local}")
        digest, size = file_digest(self.local)
        self._record_verified(digest)
        try:
            current = self._read_manifest()
        except DbBlobError:
            current = None  # none yet, or unreadable: the upload writes a good one
        if current is not None and current.digest == digest and current.size == size:
            return False
        from azure.core.exceptions import AzureError
        from azure.storage.blob import ContentSettings

        manifest = Manifest(digest, size, datetime.now(UTC).isoformat(timespec="seconds"))
        try:
            with self.local.open("rb") as f:
                self._blob.upload_blob(f, length=size, overwrite=True, metadata={"sha256": digest.split(":", 1)[1]})
            self._manifest.upload_blob(
                manifest.to_json(),
                overwrite=True,
                content_settings=ContentSettings(content_type="application/json"),
            )
        except AzureError as err:
            raise DbBlobError(f"database blob {self.url}: upload failed: {_reason(err)}") from err
        log.info("database blob %s: published %s (%d bytes)", self.url, digest, size)
        return True

    # ---------------------------------------------------------------------------------------------
    # the readers

    def refresh(self, force: bool = False) -> Path:
        """The local copy's path, brought up to the published database when a check is due (or `force`). A
        failed check keeps a verified copy; without one it is a DbBlobError naming the blob."""
        lock = _lock_for(self.local)
        if not lock.acquire(blocking=False):
            # This process is writing the copy itself (the update timer), or another thread is downloading it:
            # the verified copy meanwhile, else wait for them (an update's new file is verified once written).
            if self.verified_digest() is not None:
                return self.local
            lock.acquire()
        try:
            verified = self.verified_digest()
            due = self._checked_at is None or time.monotonic() - self._checked_at >= self.check_seconds
            if verified is not None and not (due or force):
                return self.local
            try:
                self._sync(verified)
            except DbBlobError as err:
                self._checked_at = time.monotonic()
                if verified is None:
                    raise DbBlobError(f"{err}; no verified copy at {self.local} to scan with") from err
                log.warning("%s; scanning with the verified copy %s (%s)", err, self.local, verified)
                return self.local
            self._checked_at = time.monotonic()
            return self.local
        finally:
            lock.release()

    def _read_manifest(self) -> Manifest:
        from azure.core.exceptions import AzureError

        where = f"database blob {self.url}"
        try:
            data = self._manifest.download_blob(offset=0, length=MANIFEST_MAX_BYTES + 1).readall()
        except AzureError as err:
            raise DbBlobError(f"{where}: manifest unreadable: {_reason(err)}") from err
        return Manifest.parse(data, where)

    def _sync(self, verified: str | None) -> None:
        manifest = self._read_manifest()
        if manifest.digest == verified:
            return
        where = f"database blob {self.url}"
        if manifest.size > self.max_bytes:
            raise DbBlobError(f"{where}: {manifest.size} bytes, over the bound of {self.max_bytes}")
        from azure.core.exceptions import AzureError

        self.local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".download-", dir=self.local.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    downloader = self._blob.download_blob()
                    if downloader.size != manifest.size:
                        raise DbBlobError(f"{where}: {downloader.size} bytes where its manifest says {manifest.size}")
                    digest = _stream(downloader.chunks(), out, manifest.size, where)
                except AzureError as err:
                    raise DbBlobError(f"{where}: download failed: {_reason(err)}") from err
                out.flush()
                os.fsync(out.fileno())
            if digest != manifest.digest:
                raise DbBlobError(f"{where}: digest {digest} is not the manifest's {manifest.digest}: refused")
            os.replace(tmp, self.local)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._record_verified(digest)
        log.info("database blob %s: downloaded and verified %s (%d bytes)", self.url, digest, manifest.size)


def _reason(err: BaseException) -> str:
    """A service error as its status and code (its message repeats the whole XML body), anything else as one line."""
    from azure.core.exceptions import HttpResponseError

    if isinstance(err, HttpResponseError) and err.status_code is not None:
        code = getattr(err, "error_code", None) or err.reason or ""  # error_code: the storage SDK sets it
        return f"HTTP {err.status_code} {code}".strip()
    return one_line(err, 200)


def _stream(chunks: Iterator[bytes], out: BinaryIO, size: int, where: str) -> str:
    """Writes `chunks` to `out`, refusing more than `size` bytes; their sha256."""
    sha = hashlib.sha256()
    written = 0
    for chunk in chunks:
        written += len(chunk)
        if written > size:
            raise DbBlobError(f"{where}: more than the manifest's {size} bytes")
        sha.update(chunk)
        out.write(chunk)
    if written != size:
        raise DbBlobError(f"{where}: {written} bytes where its manifest says {size}")
    return f"sha256:{sha.hexdigest()}"
