"""A window of ACR's resource log → the pipeline: pulls to the ledger, imports and pushes to the scan queue,
deletes marked. Adapters are injected (the Log Analytics query, the store, the queues).

Windows overlap on purpose (Log Analytics ingests late, minutes typically), so every row may be read
several times: pulls are keyed by (registry, repository, digest, time, source) in the ledger, pushes are
deduplicated by the store and the queue, and a malformed row is dead-lettered once under its row id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from scanner.image.registry_options import RegistryAccess, RegistryNotAllowed
from scanner.queue.interface import ScanQueue
from scanner.service.events import RegistryEvent
from scanner.service.pipeline import handle_event, refused_event_body
from scanner.service.resource_log import QUERY, SOURCE, BadRow, parse_rows
from scanner.store.ports import EventIntake

log = logging.getLogger(__name__)
MAX_LOGGED_ERRORS = 10  # one line each; the rest are counted (and all are dead-lettered)


@dataclass(frozen=True)
class QueryResult:
    """Rows of one query, as plain dicts (the SDK's table types never reach the service)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    partial_error: str | None = None  # set when the service returned only part of the result


class LogQuery(Protocol):
    workspace_id: str

    def query(self, kql: str, start: datetime, end: datetime) -> QueryResult: ...


@dataclass(frozen=True)
class ImportCounts:
    rows: int = 0
    pulls: int = 0
    queued: int = 0  # scans queued by import/push rows (not already scanned, not already pending)
    pushes: int = 0  # import and push rows recorded
    deletes: int = 0
    skipped: int = 0  # rows without a digest
    ignored: int = 0
    malformed: int = 0
    refused: int = 0  # rows naming a registry that is not allowed (dead-lettered, nothing recorded)
    partial: bool = False


def import_window(
    source: LogQuery,
    store: EventIntake,
    queue: ScanQueue,
    scanner_version: str,
    now: datetime,
    lookback: timedelta,
    dead_letters: ScanQueue | None = None,
    *,
    registries: RegistryAccess,
) -> ImportCounts:
    """Queries `[now - lookback, now]` and feeds every event to the pipeline. A query that fails as a whole
    raises `LogQueryError` (nothing was read, so nothing is lost: the next window covers it). A row naming a
    registry `registries` does not allow is dead-lettered with the reason, like a malformed one."""
    result = source.query(QUERY, now - lookback, now)
    if result.partial_error:
        log.warning("resource log: %s; using the rows received, the next window reads the rest", result.partial_error)
    parsed = parse_rows(result.rows)
    pulls = queued = pushes = deletes = refused = 0
    for event in parsed.events:
        try:
            handled = handle_event(event, store, queue, scanner_version, pull_source=SOURCE, registries=registries)
        except RegistryNotAllowed as err:
            refused += 1
            _refuse(event, str(err), dead_letters)
            continue
        if handled is not None:
            queued += 1
        if event.kind == "pull":
            pulls += 1
        elif event.kind == "delete":
            deletes += 1
        else:
            pushes += 1
    if parsed.errors:
        _report_malformed(parsed.errors, result.rows, dead_letters)
    return ImportCounts(
        rows=len(result.rows),
        pulls=pulls,
        queued=queued,
        pushes=pushes,
        deletes=deletes,
        skipped=parsed.skipped,
        ignored=parsed.ignored,
        malformed=len(parsed.errors),
        refused=refused,
        partial=result.partial_error is not None,
    )


def _refuse(event: RegistryEvent, error: str, dead_letters: ScanQueue | None) -> None:
    log.error("resource log: %s (%s)", error, event.event_id)
    if dead_letters is not None:
        body = json.dumps({"error": error, "event": refused_event_body(event), "source": SOURCE}, sort_keys=True)
        # Keyed by the row's id: the overlapping next window reads the same row and adds nothing.
        dead_letters.send_raw(body, dedupe_key=f"{SOURCE}:refused:{event.event_id}")


def _report_malformed(bad: Sequence[BadRow], rows: Sequence[Any], dead_letters: ScanQueue | None) -> None:
    for item in bad[:MAX_LOGGED_ERRORS]:
        log.error("resource log: %s", item.error)
    if len(bad) > MAX_LOGGED_ERRORS:
        log.error("resource log: %d more malformed rows", len(bad) - MAX_LOGGED_ERRORS)
    if dead_letters is None:
        return
    for item in bad:
        raw = json.dumps(rows[item.index], sort_keys=True, default=str)
        body = json.dumps({"error": item.error, "event": raw, "source": SOURCE}, sort_keys=True)
        # Keyed by the row's content: the overlapping next window reads the same row and adds nothing.
        key = hashlib.sha256(raw.encode()).hexdigest()[:32]
        dead_letters.send_raw(body, dedupe_key=f"{SOURCE}:malformed:{key}")
