"""The scan-request queue contract: the message, the lease, the dead letter and `ScanQueue`.

Delivery is at least once: a received message is leased (invisible to other consumers) for a visibility
timeout; a consumer that dies without completing it lets it reappear with a higher dequeue count. So the
same request may be processed twice, and consumers must be idempotent (a scan of a digest is).
"""

from __future__ import annotations

import json
import re
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, get_args

from scanner.queue.errors import QueueError

Reason = Literal["push", "import", "rescan", "manual"]
REASONS: tuple[str, ...] = get_args(Reason)
DEFAULT_MAX_ATTEMPTS = 5
MAX_LEASE = 7 * 24 * 3600

# OCI image-spec digest grammar: algorithm ":" encoded.
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_TEXT_FIELDS = ("registry", "repository", "digest", "reason", "requested_at", "request_id")


@dataclass(frozen=True)
class ScanRequest:
    """One image digest to scan, and why. The JSON form is the queue message body."""

    registry: str
    repository: str
    digest: str
    tag: str | None
    reason: Reason
    requested_at: datetime
    request_id: str

    def __post_init__(self) -> None:
        for name in ("registry", "repository", "request_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or value != value.strip():
                raise QueueError(f"scan request: field '{name}' must be a non-empty string without spaces")
        if not isinstance(self.digest, str) or not _DIGEST.fullmatch(self.digest):
            raise QueueError(f"scan request: field 'digest' is not a digest: {self.digest!r:.80}")
        if self.tag is not None and (not isinstance(self.tag, str) or not self.tag):
            raise QueueError("scan request: field 'tag' must be null or a non-empty string")
        if self.reason not in REASONS:
            raise QueueError(f"scan request: field 'reason' must be one of {', '.join(REASONS)}: {self.reason!r:.40}")
        if not isinstance(self.requested_at, datetime) or self.requested_at.utcoffset() is None:
            raise QueueError("scan request: field 'requested_at' must be a timezone-aware time")

    @classmethod
    def create(
        cls, registry: str, repository: str, digest: str, *, tag: str | None = None, reason: Reason = "push"
    ) -> ScanRequest:
        """A new request stamped now (UTC) with a fresh id."""
        return cls(registry, repository, digest, tag, reason, datetime.now(UTC), uuid.uuid4().hex)

    def dedupe_key(self, scanner_version: str) -> str:
        """The identity of the work: the same digest in the same registry scanned by the same scanner
        gives the same result, whatever the repository, tag or reason."""
        return f"{self.registry}@{self.digest}#{scanner_version}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "registry": self.registry,
                "repository": self.repository,
                "digest": self.digest,
                "tag": self.tag,
                "reason": self.reason,
                "requested_at": self.requested_at.isoformat(),
                "request_id": self.request_id,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ScanRequest:
        """Decodes a message body; any defect raises `QueueError` naming the field. Unknown keys are
        ignored so that a newer producer can add fields without poisoning an older consumer."""
        try:
            data: Any = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise QueueError(f"scan request: body is not JSON: {err}") from err
        if not isinstance(data, dict):
            raise QueueError(f"scan request: body must be a JSON object, not {type(data).__name__}")
        for name in _TEXT_FIELDS:
            if name not in data:
                raise QueueError(f"scan request: field '{name}' is missing")
            if not isinstance(data[name], str):
                raise QueueError(f"scan request: field '{name}' must be a string")
        tag = data.get("tag")
        if tag is not None and not isinstance(tag, str):
            raise QueueError("scan request: field 'tag' must be null or a string")
        try:
            requested_at = datetime.fromisoformat(data["requested_at"])
        except ValueError as err:
            raise QueueError(f"scan request: field 'requested_at' is not an ISO 8601 time: {err}") from err
        return cls(
            registry=data["registry"],
            repository=data["repository"],
            digest=data["digest"],
            tag=tag,
            reason=data["reason"],
            requested_at=requested_at,
            request_id=data["request_id"],
        )


@dataclass(frozen=True)
class Sent:
    """The outcome of `send`: the id of the message carrying the work, and whether that message was
    already pending under the same dedupe key (so nothing new was queued)."""

    message_id: str
    deduplicated: bool = False


@dataclass(frozen=True)
class Message:
    """A received (leased) message. `pop_receipt` is the lease token: `complete`, `fail` and `extend`
    need the latest one, and `extend` hands out a new one."""

    id: str
    pop_receipt: str
    dequeue_count: int
    request: ScanRequest
    raw: str


@dataclass(frozen=True)
class DeadLetter:
    """A message that will not be retried any more: its body as received, why, and after how many
    deliveries (`attempts`)."""

    id: str
    raw: str
    error: str
    attempts: int
    dead_at: datetime


def check_seconds(what: str, seconds: int, minimum: int) -> int:
    """Lease lengths both backends accept: Azure allows 1 s (receive) or 0 s (update) up to 7 days."""
    if not minimum <= seconds <= MAX_LEASE:
        raise QueueError(f"queue: {what} must be between {minimum} and {MAX_LEASE} seconds, not {seconds}")
    return seconds


def abandoned_error(attempts: int) -> str:
    """The error of a message whose consumers kept dying (or timing out) without completing or failing it:
    without this limit a request that crashes its consumer would be redelivered forever."""
    return f"abandoned: delivered {attempts} times without being completed (consumer died or lease expired)"


class ScanQueue(ABC):
    """A queue of `ScanRequest`s with leases, retries and a dead-letter queue."""

    def __init__(self, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        if max_attempts < 1:
            raise QueueError(f"queue: max_attempts must be at least 1, not {max_attempts}")
        self.max_attempts = max_attempts

    def send(self, request: ScanRequest, dedupe_key: str | None = None) -> Sent:
        """Queues a request. With `dedupe_key`, a pending message with the same key makes this a no-op
        (best effort, see the backend); consumers must be idempotent anyway."""
        return self.send_raw(request.to_json(), dedupe_key)

    @abstractmethod
    def send_raw(self, body: str, dedupe_key: str | None = None) -> Sent:
        """Queues a body as it is: for requeued dead letters and bodies built by other producers. A body
        that is not a scan request is dead-lettered by `receive`."""

    @abstractmethod
    def receive(self, max_messages: int = 1, visibility_timeout: int = 300) -> list[Message]:
        """Leases up to `max_messages` visible messages for `visibility_timeout` seconds. Bodies that are
        not scan requests, and messages delivered more than `max_attempts` times, go to the dead-letter
        queue here instead of being returned, so fewer messages than available may come back."""

    @abstractmethod
    def complete(self, message: Message) -> None:
        """Deletes a processed message. Raises `LeaseLostError` if the lease is gone."""

    @abstractmethod
    def fail(self, message: Message, error: str, retry_after: int = 0) -> bool:
        """Releases a message for another attempt after `retry_after` seconds, or, once it has been
        delivered `max_attempts` times, moves it to the dead-letter queue with `error`. Returns True when
        it was dead-lettered. Raises `LeaseLostError` if the lease is gone."""

    @abstractmethod
    def extend(self, message: Message, seconds: int) -> Message:
        """Keeps the lease for `seconds` more from now, for a long scan; returns the message with its new
        lease token. Raises `LeaseLostError` if the lease is gone."""

    @abstractmethod
    def dead_letters(self) -> list[DeadLetter]:
        """The dead-letter queue, oldest first."""

    @abstractmethod
    def requeue_dead_letter(self, dead_letter_id: str) -> Sent:
        """Moves a dead letter back to the queue as a fresh message (dequeue count 0). Raises
        `QueueError` if there is no such dead letter."""

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources need not close
        """Releases connections."""

    def __enter__(self) -> ScanQueue:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
