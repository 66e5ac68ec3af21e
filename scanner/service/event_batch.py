"""Health-changed events of a rescan, published a batch of images at a time.

A rescan after a database update may change thousands of images at once, an event each. Sent one POST per
event, publishing cost more than re-assessing; held until the batch of images is re-assessed, they go out
together: an Event Grid topic takes them as arrays (`EventGridPublisher.send_many`), a webhook one POST each
over its kept-alive connection, as before. An event that cannot be published is logged with its image, as a
single one is: the findings are stored whatever the receiver says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from scanner.model.errors import one_line
from scanner.policy.gate_actions import Publisher, PublishResult

log = logging.getLogger(__name__)


@runtime_checkable
class SendsMany(Protocol):
    """A publisher that reports, per event, what happened to a batch (`_HttpPublisher.send_many`)."""

    def send_many(self, events: Sequence[Mapping[str, Any]]) -> list[PublishResult]: ...


def send_each(publisher: Publisher, events: Sequence[Mapping[str, Any]]) -> list[PublishResult]:
    """`events` through `publisher`, in batches when it can: what happened to each, never raised."""
    if isinstance(publisher, SendsMany):
        return publisher.send_many(events)
    results = []
    for event in events:
        try:
            publisher.publish(event)
            results.append(PublishResult(True, 1))
        except Exception as err:  # the findings are stored; a dead receiver must not fail the rescan
            results.append(PublishResult(False, 1, error=one_line(err)))
    return results


def publish_all(publisher: Publisher, events: Sequence[Mapping[str, Any]]) -> int:
    """Publishes `events` (`send_each`); logs each event not published, with its subject, and returns how
    many were not."""
    failed = 0
    for event, result in zip(events, send_each(publisher, events), strict=True):
        if not result.ok:
            failed += 1
            log.warning("health-changed event for %s not published: %s", _subject(event), result.error)
    return failed


def _subject(event: Mapping[str, Any]) -> str:
    return str(event.get("subject", "?"))[:300]


class EventBatch:
    """A `Publisher` that holds events until `flush`, which publishes them through `inner` (`publish_all`)."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self._pending: list[Mapping[str, Any]] = []

    def publish(self, event: Mapping[str, Any]) -> None:
        self._pending.append(event)

    def flush(self) -> int:
        """Publishes what is held; how many events could not be published."""
        pending, self._pending = self._pending, []
        return publish_all(self.inner, pending) if pending else 0
