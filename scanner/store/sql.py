"""What the SQLite and PostgreSQL adapters share: the transaction protocol, the dialect, value encoding."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator, Sequence
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

    def write(self, statement: Rows, rows: Sequence[Params]) -> None:
        """`statement` over `rows`, in order: nothing for no rows; SQLite runs `Rows.one` once a row in the
        driver's loop, PostgreSQL `Rows.arrays` once for them all, one binary array a column."""
        ...


@dataclass(frozen=True)
class Rows:
    """A statement over many rows. `one` takes one row's parameters (run once a row: SQLite's executemany is
    the driver's own loop); `arrays` (PostgreSQL) takes one array a column and all the rows at once through
    `unnest`, one statement a batch (the pipelined executemany still paid ~25 µs of driver time a row)."""

    one: str
    arrays: str


def unnested(*types: str) -> str:
    """`unnest` of one array parameter a column, for `Rows.arrays`."""
    return "unnest(" + ", ".join(f"CAST(? AS {t}[])" for t in types) + ")"


def _whole(document: str) -> str:
    return document


@dataclass(frozen=True)
class Dialect:
    """The only places SQLite and PostgreSQL differ for this store."""

    name: str
    # Appended to the SELECT that takes a store lock: SQLite's BEGIN IMMEDIATE already serialises writers.
    lock_suffix: str
    # How a stored finding's document is read to compare it with a new one, and the same of the new one: whole
    # (SQLite reads it in process), or a digest the server computes (PostgreSQL: a rescan compares every open
    # finding of thousands of images, and shipping each document cost more than the comparison saves).
    stored_document: str = "f.finding"
    fingerprint: Callable[[str], str] = _whole


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


# A cursor is `payload.mac`: the payload the base64url of the last key's JSON, the mac the base64url of an
# HMAC-SHA256 over (purpose, payload) under the store's own key (`SqlLookups._cursor_key`). Nothing of a
# cursor is decoded before its mac checks, so a forged, truncated or re-encoded one is refused unread.
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,4000}\.[A-Za-z0-9_-]{43}")


def _mac(secret: bytes, purpose: str, payload: str) -> str:
    digest = hmac.new(secret, f"acrguard-cursor/{purpose}/{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode_cursor(secret: bytes, purpose: str, key: Sequence[str]) -> str:
    """The opaque, signed cursor of a page ending at `key`, for the listing named `purpose`."""
    payload = base64.urlsafe_b64encode(dumps(list(key)).encode()).decode().rstrip("=")
    return f"{payload}.{_mac(secret, purpose, payload)}"


def decode_cursor(secret: bytes, purpose: str, cursor: str, size: int) -> list[str]:
    """The key a cursor of this store's `purpose` listing carries; anything it did not issue is a CursorError."""
    if not _CURSOR.fullmatch(cursor):
        raise CursorError("invalid page cursor")
    payload, mac = cursor.split(".")
    if not hmac.compare_digest(mac.encode(), _mac(secret, purpose, payload).encode()):
        raise CursorError("invalid page cursor: not signed by this store")
    try:
        key = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError) as err:  # signed but unreadable: issued by another format of this store
        raise CursorError("invalid page cursor") from err
    if not isinstance(key, list) or len(key) != size or not all(isinstance(k, str) for k in key):
        raise CursorError("invalid page cursor")
    return key


# Keys per `WITH k AS (VALUES …)` list (`key_lists`): two parameters each, far below both dialects' limits.
KEY_LIST_SIZE = 200


def key_lists(keys: Sequence[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    """(registry, digest) keys as `WITH k (registry, digest) AS (VALUES …)` prefixes with their parameters,
    KEY_LIST_SIZE keys each: a join with the list uses the tables' primary keys in both dialects."""
    for start in range(0, len(keys), KEY_LIST_SIZE):
        chunk = keys[start : start + KEY_LIST_SIZE]
        values = ", ".join(["(CAST(? AS TEXT), CAST(? AS TEXT))"] * len(chunk))
        yield f"WITH k (registry, digest) AS (VALUES {values})", [part for key in chunk for part in key]
