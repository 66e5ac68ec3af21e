"""The scan-request queue contract: the message, the lease, the dead letter and `ScanQueue`.

Delivery is at least once: a received message is leased (invisible to other consumers) for a visibility
timeout; a consumer that dies without completing it lets it reappear with a higher dequeue count. So the
same request may be processed twice, and consumers must be idempotent (a scan of a digest is).

Both ends are bounded: a registry has at most `max_queued_per_registry` scans queued (one more goes to the
dead letters with the reason, to be requeued once the queue drains: refused, never silently dropped), and
at most `max_dead_letters` dead letters are kept (the oldest are dropped and counted).
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

from scanner.model.settings import env_name
from scanner.queue.errors import QueueError

Reason = Literal["push", "import", "rescan", "manual"]
REASONS: tuple[str, ...] = get_args(Reason)
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_DEAD_LETTERS = 10_000
DEFAULT_MAX_QUEUED_PER_REGISTRY = 10_000
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
    already pending under the same dedupe key (so nothing new was queued). `refused` is set when the queue
    for the request's registry was full: the request went to the dead letters with that reason instead,
    `message_id` being the dead letter's."""

    message_id: str
    deduplicated: bool = False
    refused: str = ""


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


def queue_full_error(registry: str, queued: int) -> str:
    """Why a scan request was dead-lettered instead of queued."""
    return (
        f"refused: {queued} scans of {registry} are already queued, the most one registry may have "
        f"({env_name('max_queued_per_registry')}); requeue this dead letter once they have drained"
    )


def registry_of(body: str) -> str | None:
    """The registry a message body names, if it is a scan request's JSON (for counting per registry)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    registry = data.get("registry") if isinstance(data, dict) else None
    return registry if isinstance(registry, str) else None


def abandoned_error(attempts: int) -> str:
    """The error of a message whose consumers kept dying (or timing out) without completing or failing it:
    without this limit a request that crashes its consumer would be redelivered forever."""
    return f"abandoned: delivered {attempts} times without being completed (consumer died or lease expired)"


class ScanQueue(ABC):
    """A queue of `ScanRequest`s with leases, retries and a dead-letter queue."""

    def __init__(
        self,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS,
        max_queued_per_registry: int = DEFAULT_MAX_QUEUED_PER_REGISTRY,
    ) -> None:
        for name, value in (
            ("max_attempts", max_attempts),
            ("max_dead_letters", max_dead_letters),
            ("max_queued_per_registry", max_queued_per_registry),
        ):
            if value < 1:
                raise QueueError(f"queue: {name} must be at least 1, not {value}")
        self.max_attempts = max_attempts
        self.max_dead_letters = max_dead_letters
        self.max_queued_per_registry = max_queued_per_registry

    def send(self, request: ScanRequest, dedupe_key: str | None = None) -> Sent:
        """Queues a request. With `dedupe_key`, a pending message with the same key makes this a no-op
        (best effort, see the backend); consumers must be idempotent anyway. When `max_queued_per_registry`
        requests of its registry are queued already, the request is dead-lettered instead (`Sent.refused`)."""
        return self._enqueue(request.to_json(), dedupe_key, request.registry)

    def send_raw(self, body: str, dedupe_key: str | None = None) -> Sent:
        """Queues a body as it is: for bodies built by other producers. A body that is not a scan request
        is dead-lettered by `receive`. No per-registry bound applies."""
        return self._enqueue(body, dedupe_key, None)

    @abstractmethod
    def _enqueue(self, body: str, dedupe_key: str | None, registry: str | None) -> Sent:
        """`send_raw`, bounded per registry when `registry` is given (see `send`)."""

    @abstractmethod
    def dead_letter(self, body: str, error: str) -> str:
        """Keeps a body as a dead letter at once, never queued (an event nobody could read); its id."""

    @abstractmethod
    def depth(self) -> int:
        """How many requests are queued (waiting or leased; dead letters not counted). Azure Storage gives an
        approximate count."""

    @abstractmethod
    def dropped_dead_letters(self) -> int:
        """How many dead letters were dropped, the oldest first, to keep at most `max_dead_letters`."""

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
        """The dead-letter queue, oldest first (at most `max_dead_letters`)."""

    @abstractmethod
    def requeue_dead_letter(self, dead_letter_id: str) -> Sent:
        """Moves a dead letter back to the queue as a fresh message (dequeue count 0): the operator's
        explicit request, so no per-registry bound applies. Raises `QueueError` if there is no such dead
        letter."""

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources need not close
        """Releases connections."""

    def __enter__(self) -> ScanQueue:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
