"""`open_queue`: the one place that picks a queue backend from a setting."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

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
) -> ScanQueue:
    """`sqlite:///abs/path.db` or a plain file path opens the embedded SQLite queue; a Storage connection
    string (`UseDevelopmentStorage=true`, `DefaultEndpointsProtocol=...;AccountName=...`, or one naming a
    `QueueEndpoint=`) opens Azure Storage Queues, the SDK being imported only then. The bounds: see
    `ScanQueue`."""
    text = str(url).strip()
    if not text:
        raise QueueError("queue: no queue location given")
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
