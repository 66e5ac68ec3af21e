"""What a client may send the HTTP edge, checked before anything else reads it: JSON bodies (bounded in bytes
and depth, strict UTF-8, no lone surrogate, no NUL in any string) and single values (query and route
parameters: no NUL, no lone surrogate).

Why each bound: a body nested ~1,000 levels deep makes Python's recursive JSON code raise RecursionError (a
500) wherever it is encoded again (a dead letter, a stored rule); a lone surrogate cannot be encoded to UTF-8,
so SQLite and the response encoder fail on it; PostgreSQL refuses NUL in text. Each is the client's mistake and
answers 4xx, here, before the value reaches a store or a queue.

orjson parses: it is strict about UTF-8 and surrogate escapes and stops at 1,024 levels in C (no Python
recursion); the walk afterwards enforces the documented depth and finds NUL without recursing either.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from scanner.model.errors import AcrguardError

MAX_DEPTH = 64  # nesting of arrays and objects; the API's own documents are at most ~6 deep
MAX_JSON_BYTES = 4 << 20  # one body; Event Grid delivers at most 1 MB per request

# NUL, and code points in the surrogate range (only reachable as lone surrogates in a Python str).
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


class ClientInputError(AcrguardError):
    """A body or value the edge refuses; `status` (400, or 413 for size) and `code` are its HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.code = "PayloadTooLarge" if status == 413 else "BadRequest"


def text_problem(text: str) -> str | None:
    """Why a client's string cannot be used (NUL, a lone surrogate), or None when it can."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    return "contains NUL (\\u0000)" if found.group() == "\x00" else "contains a lone surrogate (not Unicode text)"


def decode_json(body: bytes, what: str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """`body` parsed as JSON within the bounds; a ClientInputError whose one-line message starts with `what`."""
    if len(body) > max_bytes:
        raise ClientInputError(f"{what}: body of {len(body)} bytes is over the limit of {max_bytes} bytes", 413)
    try:
        body.decode("utf-8")  # strict: a byte offset beats orjson's one message for every encoding fault
    except UnicodeDecodeError as err:
        raise ClientInputError(f"{what}: body is not valid UTF-8 (byte {err.start})") from None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        reason = str(err)
        if "surrogate" in reason:
            raise ClientInputError(f"{what}: a string escapes a lone surrogate (\\ud800-\\udfff unpaired)") from None
        if "depth" in reason or "recursion" in reason:
            raise ClientInputError(f"{what}: JSON nested deeper than {max_depth} levels") from None
        raise ClientInputError(f"{what}: body is not JSON: {reason}") from None
    check_json(value, what, max_depth)
    return value


def check_json(value: Any, what: str, max_depth: int = MAX_DEPTH) -> None:
    """Raises ClientInputError when `value` (decoded JSON, perhaps by someone else) nests deeper than
    `max_depth` or holds NUL or a lone surrogate in a string or key; iterative, so any depth is safe."""
    # (value, depth of the container holding it, where it is as (parent's where, key))
    pending: list[tuple[Any, int, Any]] = [(value, 0, None)]
    while pending:
        item, depth, where = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                raise ClientInputError(f"{what}: the string at {_path(where)} {problem}")
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise ClientInputError(f"{what}: JSON nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = text_problem(key) if isinstance(key, str) else None
                    if problem is not None:
                        raise ClientInputError(f"{what}: a key in {_path(where)} {problem}")
                    pending.append((child, depth + 1, (where, key)))
            else:
                pending.extend((child, depth + 1, (where, index)) for index, child in enumerate(item))


def _path(where: Any) -> str:
    """`$.events[0].target` from the (parent, key) chain; keys shown safely (ASCII, short)."""
    parts: list[str] = []
    while where is not None:
        where, key = where
        parts.append(f"[{key}]" if isinstance(key, int) else f".{ascii(key)[1:-1][:40]}")
    return "$" + "".join(reversed(parts))
