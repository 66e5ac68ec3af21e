"""Rows of ACR's resource log `ContainerRegistryRepositoryEvents` (Log Analytics) → `RegistryEvent`s. Pure, no I/O.

This is the only per-image pull record ACR keeps (azure-interfaces.md §7), and the one confirmed record of an
`az acr import` (§1). Columns used: `TimeGenerated, OperationName, LoginServer, Repository, Tag, Digest,
MediaType, ResultType, CorrelationId` (Azure Monitor table reference). A malformed row becomes a one-line
error naming the row and the column; the rest of the batch is still read.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from scanner.service.events import MANIFEST_MEDIA_TYPES, Kind, RegistryEvent, iso_time

SOURCE = "log-analytics"  # the pull ledger's source for these records (the ledger is keyed by time and source)
TABLE = "ContainerRegistryRepositoryEvents"

# Untag changes no image content and the tag history is fed by pushes; unknown operations are ignored too.
_OPERATIONS: dict[str, Kind] = {"pull": "pull", "push": "push", "importimage": "import", "delete": "delete"}

# The columns the query projects. `column_ifexists` keeps the query valid if a workspace's schema lacks one.
QUERY = f"""{TABLE}
| where OperationName in~ ("Pull", "Push", "importImage", "Delete")
| project TimeGenerated, OperationName, LoginServer, Repository, Tag, Digest, MediaType, ResultType,
    CorrelationId = column_ifexists("CorrelationId", "")
| order by TimeGenerated asc"""

# OCI image-spec digest grammar: algorithm ":" encoded.
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
# ResultType's vocabulary is not documented (UNCONFIRMED): HTTP status codes and Azure's common words are both
# accepted; anything else is reported as malformed rather than guessed.
_SUCCESS_WORDS = frozenset({"success", "succeeded", "ok"})
_FAILURE_WORDS = frozenset({"failed", "failure", "error", "unauthorized", "forbidden", "notfound"})


class RowError(ValueError):
    """One row that cannot be read; the message names the row and the column."""


@dataclass(frozen=True)
class BadRow:
    index: int  # position in the batch, so that the caller can keep the row itself with its error
    error: str  # one line naming the row and the column


@dataclass(frozen=True)
class ParsedRows:
    events: tuple[RegistryEvent, ...]
    skipped: int  # rows that cannot be keyed (no digest)
    ignored: int  # Untag, charts and other non-images, failed operations, unknown operations
    errors: tuple[BadRow, ...]


def parse_rows(rows: Iterable[Mapping[str, Any]]) -> ParsedRows:
    """Every row of a query result, in order. Never raises for a bad row."""
    events: list[RegistryEvent] = []
    skipped = ignored = 0
    errors: list[BadRow] = []
    for index, row in enumerate(rows):
        try:
            outcome = parse_row(row, index)
        except RowError as err:
            errors.append(BadRow(index, str(err)))
            continue
        if isinstance(outcome, RegistryEvent):
            events.append(outcome)
        elif outcome == "skipped":
            skipped += 1
        else:
            ignored += 1
    return ParsedRows(tuple(events), skipped, ignored, tuple(errors))


def parse_row(row: Mapping[str, Any], index: int = 0) -> RegistryEvent | Literal["skipped", "ignored"]:
    """One row: a `RegistryEvent`, or "skipped" (no digest) or "ignored"; `RowError` when malformed."""
    where = f"{TABLE} row {index}"
    if not isinstance(row, Mapping):
        raise RowError(f"{where}: not a row of named columns ({type(row).__name__})")
    operation = _text(row, "OperationName", where, required=True)
    kind = _OPERATIONS.get(operation.lower())
    if kind is None:
        return "ignored"
    if not _succeeded(row.get("ResultType"), where):
        return "ignored"  # a failed pull fetched nothing; a failed push stored nothing
    media_type = _text(row, "MediaType", where)
    # An empty MediaType is kept: the log does not promise it on every operation (deletes in particular).
    if media_type and media_type not in MANIFEST_MEDIA_TYPES:
        return "ignored"  # Helm charts, signatures' blobs and other artifacts that are not images
    registry = _text(row, "LoginServer", where, required=True).lower()
    repository = _text(row, "Repository", where, required=True)
    digest = _text(row, "Digest", where)
    if not digest:
        return "skipped"  # e.g. a pull by tag that failed to resolve, a repository delete: nothing to key
    if not _DIGEST.fullmatch(digest):
        raise RowError(f"{where}: column 'Digest' is not a digest: {digest!r:.80}")
    at = _time(row.get("TimeGenerated"), where)
    tag = _text(row, "Tag", where) or None
    event_id = row_id(kind, registry, repository, digest, tag, at, _text(row, "CorrelationId", where))
    # Pulls are keyed by digest: the tag only says how the client asked (as for registry notifications).
    return RegistryEvent(kind, registry, repository, digest, None if kind == "pull" else tag, media_type, at, event_id)


def row_id(
    kind: str, registry: str, repository: str, digest: str, tag: str | None, at: datetime, correlation: str
) -> str:
    """A stable id from the row's content: the same row read again by an overlapping window has the same id,
    so replays stay idempotent wherever the id is used (dead letters, logs)."""
    material = json.dumps([kind, registry, repository, digest, tag or "", at.isoformat(), correlation])
    return f"{SOURCE}:{hashlib.sha256(material.encode()).hexdigest()[:32]}"


def _succeeded(value: Any, where: str) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        raise RowError(f"{where}: column 'ResultType' is not a result: {value!r}")
    if isinstance(value, int):
        return value == 0 or 200 <= value < 400
    if not isinstance(value, str):
        raise RowError(f"{where}: column 'ResultType' is not a result: {value!r:.40}")
    text = value.strip()
    if not text:
        return True
    if text.isdigit():
        return _succeeded(int(text), where)
    word = text.lower().replace(" ", "")
    if word in _SUCCESS_WORDS:
        return True
    if word in _FAILURE_WORDS:
        return False
    raise RowError(f"{where}: column 'ResultType' has an unknown value {value!r:.40}")


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        parsed = _parse_time(value.strip(), where)
    else:
        raise RowError(f"{where}: column 'TimeGenerated' is missing")
    # Log Analytics datetimes are UTC; a naive value can only mean UTC.
    return parsed.replace(tzinfo=UTC) if parsed.utcoffset() is None else parsed.astimezone(UTC)


def _parse_time(text: str, where: str) -> datetime:
    try:
        return iso_time(text)
    except ValueError as err:
        raise RowError(f"{where}: column 'TimeGenerated' is not an ISO 8601 time: {text!r:.60}") from err


def _text(row: Mapping[str, Any], column: str, where: str, *, required: bool = False) -> str:
    value = row.get(column)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RowError(f"{where}: column '{column}' is not text: {value!r:.60}")
    value = value.strip()
    if required and not value:
        raise RowError(f"{where}: column '{column}' is missing")
    return value
