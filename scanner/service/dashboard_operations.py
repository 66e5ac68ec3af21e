"""The dashboard's operations page as data: the dead letters (scan requests may be requeued) and the usage
meter per registry for the current and the previous month (billable first scans, free rescans)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from scanner.queue import ScanQueue
from scanner.service import manage
from scanner.service.dashboard import text
from scanner.store.ports import Lookups, UsageMeter


class OperationsStore(Lookups, UsageMeter, Protocol):
    """What the page reads: the registries (from the lookups) and their usage."""


def operations(store: OperationsStore, events: ScanQueue, scans: ScanQueue, query: Mapping[str, str]) -> dict[str, Any]:
    registry = text(query, "registry")
    letters = manage.list_dead_letters(events, scans)
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    registries = sorted({c.registry for c in store.health_counts()} | ({registry} if registry else set()))
    usage = []
    for name in registries:
        if registry and name != registry:
            continue
        counts = store.usage(name, month)
        usage.append({"registry": name, "billable": counts.billable, "free": counts.free, "events": counts.events})
    return {
        "dead_letters": [_letter(v) for v in reversed(letters)],  # newest first
        "dropped": {"event": events.dropped_dead_letters(), "scan": scans.dropped_dead_letters()},
        "queue_depth": scans.depth(),
        "usage": usage,
        "month": month.strftime("%Y-%m"),
        "filters": {"registry": registry},
    }


def _letter(view: manage.DeadLetterView) -> dict[str, Any]:
    body = view.body if isinstance(view.body, dict) else {}
    image = "/".join(str(body.get(k, "")) for k in ("registry", "repository") if body.get(k))
    return {
        "id": view.id,
        "kind": view.kind,
        "error": view.error,
        "dead_at": view.dead_at,
        "attempts": view.attempts,
        "image": image,
        "digest": str(body.get("digest", "")),
    }


def requeue(letter_id: str, events: ScanQueue, scans: ScanQueue) -> str:
    """A scan dead letter back on the scan queue (`manage.requeue_dead_letter`: 404/409 as the API)."""
    return manage.requeue_dead_letter(letter_id, events, scans)
