"""`open_queue`: the one place that picks a queue backend from a setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit

from scanner.model.hosts import is_loopback
from scanner.queue.errors import QueueError
from scanner.queue.interface import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DEAD_LETTERS,
    DEFAULT_MAX_QUEUED_PER_REGISTRY,
    ScanQueue,
)

DEFAULT_QUEUE_NAME = "scan-requests"


def open_queue(
    url: str | Path,
    queue_name: str = DEFAULT_QUEUE_NAME,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    *,
    max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS,
    max_queued_per_registry: int = DEFAULT_MAX_QUEUED_PER_REGISTRY,
    credential: Any = None,
) -> ScanQueue:
    """`sqlite:///abs/path.db` or a plain file path opens the embedded SQLite queue; a Storage connection
    string (`UseDevelopmentStorage=true`, `DefaultEndpointsProtocol=...;AccountName=...`, or one naming a
    `QueueEndpoint=`) opens Azure Storage Queues, the SDK being imported only then; so does a queue service
    URL (`https://ACCOUNT.queue.core.windows.net`), signed in with `credential` (default: the managed
    identity, through DefaultAzureCredential; an emulator's path-style URL `http://127.0.0.1:PORT/ACCOUNT`
    takes an account-key credential). The bounds: see `ScanQueue`."""
    text = str(url).strip()
    if not text:
        raise QueueError("queue: no queue location given")
    if text.startswith(("https://", "http://")):
        from scanner.queue.azure_queue import AzureStorageQueue

        return AzureStorageQueue(
            service_url(text),
            queue_name,
            max_attempts,
            max_dead_letters=max_dead_letters,
            max_queued_per_registry=max_queued_per_registry,
            credential=credential if credential is not None else identity_credential(),
        )
    if _is_connection_string(text):
        from scanner.queue.azure_queue import AzureStorageQueue

        return AzureStorageQueue(
            text,
            queue_name,
            max_attempts,
            max_dead_letters=max_dead_letters,
            max_queued_per_registry=max_queued_per_registry,
        )
    from scanner.queue.sqlite_queue import SqliteQueue

    if text.startswith("sqlite:"):
        parsed = urlparse(text)
        if parsed.netloc or not parsed.path:
            raise QueueError(f"queue: {text!r} is not sqlite:///path")
        return SqliteQueue(
            unquote(parsed.path),
            queue_name,
            max_attempts,
            max_dead_letters=max_dead_letters,
            max_queued_per_registry=max_queued_per_registry,
        )
    if "://" in text:
        raise QueueError(f"queue: unsupported queue location {text.split('://')[0]}://…")
    return SqliteQueue(
        text,
        queue_name,
        max_attempts,
        max_dead_letters=max_dead_letters,
        max_queued_per_registry=max_queued_per_registry,
    )


def _is_connection_string(text: str) -> bool:
    keys = {part.split("=", 1)[0].strip().lower() for part in text.split(";") if "=" in part}
    return bool(keys & {"usedevelopmentstorage", "defaultendpointsprotocol", "queueendpoint", "accountname"})


def service_url(text: str) -> str:
    """A queue service URL checked: `https://HOST` (the account's queue endpoint; acrguard names its queues
    itself), or an emulator's `http(s)://LOOPBACK:PORT/ACCOUNT`. No query: a SAS token is a key, and keys
    belong in a connection string, not in a URL that gets logged."""
    shown = text.split("?", 1)[0].split("#", 1)[0][:100]
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise QueueError(f"queue: {shown!r} is not a queue service URL") from None
    if parts.query or parts.fragment or parts.username or parts.password or not parts.hostname:
        raise QueueError(f"queue: {shown!r}: a queue service URL is https://ACCOUNT.queue.core.windows.net, no more")
    path = parts.path.strip("/")
    loopback = is_loopback(parts.hostname)
    if parts.scheme == "http" and not loopback:
        raise QueueError(f"queue: {shown!r}: a queue service is reached over https (plain http: local emulators only)")
    if path and (not loopback or "/" in path):
        raise QueueError(
            f"queue: {shown!r}: name the account's queue service URL, not a queue (acrguard names its queues)"
        )
    return f"{parts.scheme}://{parts.netloc}" + (f"/{path}" if path else "")


def identity_credential() -> Any:
    """DefaultAzureCredential: the managed identity in Azure (a user-assigned one named by `AZURE_CLIENT_ID`),
    the developer's sign-in locally. Building it reaches no network; the first token request does."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
