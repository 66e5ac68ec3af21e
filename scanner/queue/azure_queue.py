"""Azure Storage Queues (and Azurite) through azure-storage-queue.

Bodies are base64 text, as the Functions host's queue trigger and output binding expect. The service
keeps the lease (visibility timeout, pop receipt) and the dequeue count; dead letters go to
`<name>-poison`, the queue the Functions host itself uses, as a JSON envelope holding the body and the
error. Messages are sent with no expiry: the service's default time-to-live (7 days) would silently drop
work that waited too long.

Deduplication is best effort only: Storage Queues cannot look a message up by anything but its id (Service
Bus has duplicate detection, Storage Queues do not), so this object remembers the keys it sent for
`dedupe_window` seconds. Another process, or the same one after the window, queues the work again.

The bounds are approximate too. Storage Queues cannot count messages by registry, so the per-registry bound
is checked against the whole queue's approximate length (stricter with several registries). Beyond
`max_dead_letters`, the poison queue's oldest visible messages are deleted and counted in its metadata
(`dropped`): processes trimming at once may count a little low.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.storage.queue import QueueClient, QueueMessage, TextBase64EncodePolicy

from scanner.queue.errors import LeaseLostError, QueueError
from scanner.queue.interface import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DEAD_LETTERS,
    DEFAULT_MAX_QUEUED_PER_REGISTRY,
    DeadLetter,
    Message,
    ScanQueue,
    ScanRequest,
    Sent,
    abandoned_error,
    check_seconds,
    queue_full_error,
)

log = logging.getLogger(__name__)

_QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,55}")  # room for "-poison" in 63
_LEASE_LOST_CODES = {"MessageNotFound", "PopReceiptMismatch"}
_ENVELOPE = "acrguard_dead_letter"
_BROWSE_LEASE = 30  # seconds a dead letter stays hidden while dead_letters/requeue look through the queue
_NEVER_EXPIRE = -1
_DROPPED = "dropped"  # the poison queue's metadata entry counting dead letters dropped over the bound


class AzureStorageQueue(ScanQueue):
    """A Storage queue and its `-poison` twin, created on first use."""

    def __init__(
        self,
        connection_string: str,
        queue_name: str = "scan-requests",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        dedupe_window: float = 600.0,
        max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS,
        max_queued_per_registry: int = DEFAULT_MAX_QUEUED_PER_REGISTRY,
        credential: Any = None,
    ) -> None:
        """`connection_string` is a Storage connection string, or, with `credential` (a token or account-key
        credential), the account's queue service URL."""
        super().__init__(max_attempts, max_dead_letters, max_queued_per_registry)
        if not _QUEUE_NAME.fullmatch(queue_name):
            raise QueueError(f"queue: {queue_name!r} is not a Storage queue name (3-56 of a-z 0-9 -)")
        self.name = queue_name
        self.dedupe_window = dedupe_window
        self._sent_keys: dict[str, tuple[float, str]] = {}
        self._ready = False
        try:
            # Encode only: decoding is done per message so that one body that is not base64 cannot fail
            # a whole batch (which would redeliver it forever) and can be dead-lettered instead.
            if credential is None:
                self._main = QueueClient.from_connection_string(
                    connection_string, queue_name, message_encode_policy=TextBase64EncodePolicy()
                )
                self._poison = QueueClient.from_connection_string(
                    connection_string, f"{queue_name}-poison", message_encode_policy=TextBase64EncodePolicy()
                )
            else:
                self._main = QueueClient(
                    connection_string, queue_name, credential, message_encode_policy=TextBase64EncodePolicy()
                )
                self._poison = QueueClient(
                    connection_string,
                    f"{queue_name}-poison",
                    credential,
                    message_encode_policy=TextBase64EncodePolicy(),
                )
        except (ValueError, AzureError) as err:
            what = "connection string" if credential is None else "queue service URL"
            raise QueueError(f"queue {queue_name}: bad {what}: {_first_line(err)}") from err

    @contextmanager
    def _azure(self, action: str) -> Iterator[None]:
        """Translates SDK errors at the boundary; a stale pop receipt means the lease is gone."""
        try:
            yield
        except HttpResponseError as err:
            code = _error_code(err)
            if code in _LEASE_LOST_CODES:
                raise LeaseLostError(f"queue {self.name}: {action}: lease lost ({code})") from err
            status = code or f"HTTP {err.status_code}"
            raise QueueError(f"queue {self.name}: {action}: {status}: {_first_line(err)}") from err
        except AzureError as err:
            raise QueueError(f"queue {self.name}: {action}: {_first_line(err)}") from err

    def _ensure(self) -> None:
        if self._ready:
            return
        for client in (self._main, self._poison):
            try:
                with self._azure("create queue"):
                    client.create_queue()
            except QueueError as err:
                if not isinstance(err.__cause__, ResourceExistsError):
                    raise
        self._ready = True

    def _enqueue(self, body: str, dedupe_key: str | None, registry: str | None) -> Sent:
        self._ensure()
        now = time.monotonic()
        if dedupe_key is not None:
            self._sent_keys = {k: v for k, v in self._sent_keys.items() if v[0] > now}
            if dedupe_key in self._sent_keys:
                return Sent(self._sent_keys[dedupe_key][1], deduplicated=True)
        if registry is not None:
            with self._azure("count"):
                queued = self._main.get_queue_properties().approximate_message_count or 0
            if queued >= self.max_queued_per_registry:
                error = queue_full_error(registry, queued)
                return Sent(self._keep_dead(body, error, 0), refused=error)
        with self._azure("send"):
            sent = self._main.send_message(body, time_to_live=_NEVER_EXPIRE)
        if dedupe_key is not None:
            self._sent_keys[dedupe_key] = (now + self.dedupe_window, sent.id)
        return Sent(sent.id)

    def receive(self, max_messages: int = 1, visibility_timeout: int = 300) -> list[Message]:
        if max_messages < 1:
            raise QueueError(f"queue: max_messages must be at least 1, not {max_messages}")
        check_seconds("visibility_timeout", visibility_timeout, 1)
        self._ensure()
        with self._azure("receive"):
            items = list(
                self._main.receive_messages(
                    max_messages=max_messages,
                    messages_per_page=min(max_messages, 32),  # the service's limit per call
                    visibility_timeout=visibility_timeout,
                )
            )
        received: list[Message] = []
        for item in items:
            # Received messages always carry both; the SDK types them optional for other operations.
            count, receipt = item.dequeue_count or 1, item.pop_receipt or ""
            raw, error = _decode(item.content)
            if count > self.max_attempts:
                # Delivered max_attempts times and never completed nor failed: its consumers keep dying.
                error = abandoned_error(count - 1)
            request: ScanRequest | None = None
            if error is None:
                try:
                    request = ScanRequest.from_json(raw)
                except QueueError as err:
                    error = str(err)
            if request is None or error is not None:
                # If our fresh lease is already gone, whoever holds the message now buries it in turn.
                with contextlib.suppress(LeaseLostError):
                    self._bury(item.id, receipt, raw, error or "", min(count, self.max_attempts))
                continue
            received.append(Message(item.id, receipt, count, request, raw))
        return received

    def complete(self, message: Message) -> None:
        with self._azure(f"complete {message.id}"):
            self._main.delete_message(message.id, message.pop_receipt)

    def fail(self, message: Message, error: str, retry_after: int = 0) -> bool:
        check_seconds("retry_after", retry_after, 0)
        if message.dequeue_count >= self.max_attempts:
            self._bury(message.id, message.pop_receipt, message.raw, error, message.dequeue_count)
            return True
        with self._azure(f"fail {message.id}"):
            self._main.update_message(message.id, message.pop_receipt, visibility_timeout=retry_after)
        return False

    def extend(self, message: Message, seconds: int) -> Message:
        check_seconds("extend", seconds, 0)
        with self._azure(f"extend {message.id}"):
            updated = self._main.update_message(message.id, message.pop_receipt, visibility_timeout=seconds)
        return replace(message, pop_receipt=updated.pop_receipt or "")

    def dead_letter(self, body: str, error: str) -> str:
        self._ensure()
        return self._keep_dead(body, error, 0)

    def depth(self) -> int:
        self._ensure()
        with self._azure("read the queue's length"):
            return int(self._main.get_queue_properties().approximate_message_count or 0)

    def dropped_dead_letters(self) -> int:
        self._ensure()
        with self._azure("read dead-letter count"):
            metadata = self._poison.get_queue_properties().metadata or {}
        return _count(metadata.get(_DROPPED))

    def dead_letters(self) -> list[DeadLetter]:
        # Peeking stops at 32 messages, so browse by leasing every dead letter briefly and releasing it.
        items = self._lease_poison()
        try:
            letters = [_dead_letter(item) for item in items]
        finally:
            self._release(items)
        return sorted(letters, key=lambda letter: letter.dead_at)

    def requeue_dead_letter(self, dead_letter_id: str) -> Sent:
        items = self._lease_poison()
        found = next((item for item in items if item.id == dead_letter_id), None)
        try:
            if found is None:
                raise QueueError(f"queue {self.name}: no dead letter {dead_letter_id!r}")
            # Send before deleting: dying in between leaves a duplicate, never a loss.
            sent = self.send_raw(_dead_letter(found).raw)
            with self._azure(f"requeue {dead_letter_id}"):
                self._poison.delete_message(found.id, found.pop_receipt)
        finally:
            self._release([item for item in items if item is not found])
        return sent

    def close(self) -> None:
        self._main.close()
        self._poison.close()

    def _bury(self, message_id: str, pop_receipt: str, raw: str, error: str, attempts: int) -> None:
        """Poison first, then delete: a crash in between duplicates the dead letter instead of losing it
        (and so does a lease lost in between: the next holder buries it again)."""
        self._ensure()
        self._keep_dead(raw, error, attempts, message_id)
        with self._azure(f"dead-letter {message_id}"):
            self._main.delete_message(message_id, pop_receipt)

    def _keep_dead(self, raw: str, error: str, attempts: int, message_id: str = "") -> str:
        """Sends a dead letter to the poison queue, then trims that queue to the bound; the letter's id."""
        log.warning("queue %s: message %s dead-lettered after %d attempts: %s", self.name, message_id, attempts, error)
        envelope = {
            _ENVELOPE: 1,
            "body": raw,
            "error": error,
            "attempts": attempts,
            "dead_at": datetime.now(UTC).isoformat(),
            "message_id": message_id,
        }
        with self._azure("dead-letter"):
            sent = self._poison.send_message(json.dumps(envelope), time_to_live=_NEVER_EXPIRE)
        self._trim_poison()
        return str(sent.id)

    def _trim_poison(self) -> None:
        """Deletes the oldest dead letters beyond `max_dead_letters` and adds them to the `dropped` count."""
        with self._azure("count dead letters"):
            properties = self._poison.get_queue_properties()
        excess = (properties.approximate_message_count or 0) - self.max_dead_letters
        dropped = 0
        with self._azure("drop dead letters"):
            while dropped < excess:
                batch = min(excess - dropped, 32)
                page = list(self._poison.receive_messages(max_messages=batch, visibility_timeout=_BROWSE_LEASE))
                if not page:
                    break  # the rest are leased by someone browsing them; the next dead letter trims again
                for item in page:
                    self._poison.delete_message(item.id, item.pop_receipt)
                dropped += len(page)
            if dropped:
                total = _count((properties.metadata or {}).get(_DROPPED)) + dropped
                self._poison.set_queue_metadata({**(properties.metadata or {}), _DROPPED: str(total)})
                log.warning(
                    "queue %s: over %d dead letters: dropped the %d oldest (%d dropped in all)",
                    self.name,
                    self.max_dead_letters,
                    dropped,
                    total,
                )

    def _lease_poison(self) -> list[QueueMessage]:
        self._ensure()
        items: list[QueueMessage] = []
        with self._azure("read dead letters"):
            while True:
                page = list(self._poison.receive_messages(max_messages=32, visibility_timeout=_BROWSE_LEASE))
                items.extend(page)
                if len(page) < 32:
                    return items

    def _release(self, items: list[QueueMessage]) -> None:
        for item in items:
            try:
                with self._azure("release dead letter"):
                    self._poison.update_message(item.id, item.pop_receipt, visibility_timeout=0)
            except QueueError as err:
                # It becomes visible again when the browse lease ends anyway.
                log.warning("queue %s: %s", self.name, err)


def _decode(content: Any) -> tuple[str, str | None]:
    """Base64 text as the Functions host writes it; a body that is not is kept verbatim with an error."""
    text = content if isinstance(content, str) else str(content)
    try:
        return base64.b64decode(text, validate=True).decode("utf-8"), None
    except (binascii.Error, ValueError):
        return text, "scan request: body is not base64-encoded UTF-8 text"


def _dead_letter(item: QueueMessage) -> DeadLetter:
    """Our envelope, or a bare body that the Functions host moved here (it records no error)."""
    raw, _ = _decode(item.content)
    inserted = item.inserted_on or datetime.now(UTC)
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get(_ENVELOPE) == 1:
        try:
            return DeadLetter(
                item.id,
                str(data["body"]),
                str(data["error"]),
                int(data["attempts"]),
                datetime.fromisoformat(str(data["dead_at"])),
            )
        except (KeyError, TypeError, ValueError):
            pass
    return DeadLetter(item.id, raw, "moved to the poison queue by another consumer (no error recorded)", 0, inserted)


def _count(text: object) -> int:
    try:
        return max(int(str(text)), 0)
    except ValueError:
        return 0


def _error_code(err: HttpResponseError) -> str | None:
    """The storage error code as its wire name (the SDK hands out str enums or plain strings)."""
    code = getattr(err, "error_code", None)
    if isinstance(code, Enum):
        return str(code.value)
    return str(code) if code else None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
