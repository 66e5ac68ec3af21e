"""What the SQLite and PostgreSQL adapters share: the transaction protocol, the dialect, value encoding."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from scanner.store.errors import CursorError

Row = tuple[Any, ...]
Params = Sequence[Any]
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Tx(Protocol):
    """One open transaction. SQL uses `?` placeholders; the adapter translates them for its driver."""

    def rows(self, sql: str, params: Params = ()) -> list[Row]: ...

    def run(self, sql: str, params: Params = ()) -> int:
        """Execute; the number of rows changed."""
        ...


@dataclass(frozen=True)
class Dialect:
    """The only places SQLite and PostgreSQL differ for this store."""

    name: str
    # Appended to the SELECT that takes a store lock: SQLite's BEGIN IMMEDIATE already serialises writers.
    lock_suffix: str


def to_text(at: datetime) -> str:
    """Fixed-width UTC text, so comparisons and MIN/MAX order correctly as strings in both dialects."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: the findings store takes timezone-aware times")
    return at.astimezone(UTC).strftime(_TIME_FORMAT)


def from_text(value: str | None) -> datetime | None:
    """The inverse of `to_text`. `fromisoformat` reads the stored `…Z` text (Python 3.11+) about 50 times
    faster than `strptime`, which led the lookup profiles (benchmarks/README.md, http_lookup)."""
    if value is None:
        return None
    at = datetime.fromisoformat(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def req_time(value: str) -> datetime:
    at = from_text(value)
    assert at is not None
    return at


def utc_text() -> str:
    return to_text(datetime.now(UTC))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(value: str | bytes) -> Any:
    # orjson: the lookups decode a document per finding and per summary; it returns the same values as json.
    # Documents json.dumps wrote with NaN or Infinity (which orjson refuses) still decode through json.
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)


def encode_cursor(key: Sequence[str]) -> str:
    return base64.urlsafe_b64encode(dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    """The opaque cursor is the last key of the previous page; anything else is a client error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, TypeError) as err:
        raise CursorError(f"invalid page cursor {cursor!r}") from err
    if not isinstance(key, list) or len(key) != size or not all(isinstance(k, str) for k in key):
        raise CursorError(f"invalid page cursor {cursor!r}")
    return key
