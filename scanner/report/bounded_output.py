"""Documents rendered within a size bound (`Limits.max_output_bytes`): JSON is encoded piece by piece and
abandoned as soon as it passes the bound, so a hostile image cannot make the CLI build a gigabyte string
(one package's layer record, repeated for every package, can carry a megabyte of build history)."""

from __future__ import annotations

import json
from typing import Any

from scanner.model.errors import AcrguardError


class OutputTooLarge(AcrguardError):
    """The document would be larger than `max_output_bytes`; nothing is written."""


def bounded_json(doc: Any, max_bytes: int, what: str = "output") -> str:
    """`json.dumps(doc, indent=2)`, or OutputTooLarge once the text passes `max_bytes` (ASCII: characters
    are bytes)."""
    parts: list[str] = []
    size = 0
    for part in json.JSONEncoder(indent=2).iterencode(doc):
        size += len(part)
        if size > max_bytes:
            raise _too_large(what, max_bytes)
        parts.append(part)
    return "".join(parts)


def bounded_text(text: str, max_bytes: int, what: str = "output") -> str:
    """`text` when its UTF-8 encoding fits in `max_bytes`, else OutputTooLarge."""
    if len(text) > max_bytes or len(text.encode("utf-8")) > max_bytes:
        raise _too_large(what, max_bytes)
    return text


def _too_large(what: str, max_bytes: int) -> OutputTooLarge:
    return OutputTooLarge(
        f"{what} is larger than {max_bytes} bytes (limit max_output_bytes); nothing written. Raise the limit "
        "(--limit max_output_bytes=N) if the image is genuine"
    )
