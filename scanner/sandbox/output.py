"""The child's output is untrusted: bounded, parsed, checked key by key before anyone uses it.

The child prints `scanner.model.codec`'s exact inventory form (`scanner.sandbox.child`), so that what the service
stores re-matches exactly like the original. Every object must have exactly the codec's keys with the
right types, every string is bounded, and only then does `codec.inventory_from_dict` build the inventory.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from scanner.model.codec import CODEC_VERSION, inventory_from_dict
from scanner.model.shapes import INVENTORY, Field, Shape
from scanner.model.types import Inventory
from scanner.sandbox.errors import JobError
from scanner.sandbox.fetch import FetchedImage

# Longer than any path (limits.max_path_length is 4096) or Dockerfile line worth keeping; a longer string
# is a child trying to make the store or the API carry its payload.
MAX_STRING = 64 * 1024
MAX_INT = 2**63 - 1  # what the stores' integer columns and JSON readers elsewhere hold


class _Invalid(Exception):
    """Where the document is wrong (a path like `packages[3].layer.size`); becomes one JobError line."""


def parse_inventory(data: bytes, max_bytes: int, fetched: FetchedImage) -> Inventory:
    """The inventory the child printed, labelled with the trusted side's reference and digests (the sandbox
    only saw a scratch layout: `oci:/input` and a manifest re-serialised by the fetch)."""
    if len(data) > max_bytes:
        raise JobError(f"sandbox output: more than {max_bytes} bytes (limit output_bytes)")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise JobError(f"sandbox output: not JSON ({type(exc).__name__})") from None
    try:
        check_inventory(doc)
    except _Invalid as exc:
        raise JobError(f"sandbox output: {exc}") from None
    inventory = inventory_from_dict(doc)
    image = replace(
        inventory.image, reference=fetched.reference, digest=fetched.digest, index_digest=fetched.index_digest
    )
    return replace(inventory, image=image)


def check_inventory(doc: Any) -> None:
    """Raises `_Invalid` naming the first defect; silent when `doc` is exactly the codec's shape."""
    _object(doc, "the document", {"codec", *INVENTORY.keys})
    if doc["codec"] != CODEC_VERSION or isinstance(doc["codec"], bool):
        raise _Invalid(f"codec is {str(doc['codec'])[:20]!r}, expected {CODEC_VERSION}")
    _fields(INVENTORY, doc, "")


def _fields(shape: Shape[Any], obj: dict[str, Any], where: str) -> None:
    """Every field of an object whose keys are already checked, in the shape's order."""
    for field in shape.fields:
        _field(field, obj[field.name], f"{where}.{field.name}" if where else field.name)


def _field(field: Field, value: Any, where: str) -> None:
    if field.kind == "text":
        _string(value, where)
    elif field.kind == "choice":
        if value not in field.choices:
            raise _Invalid(f"{where} must be one of {', '.join(field.choices)}")
    elif field.kind == "count":
        _count(value, where)
    elif field.kind == "flag":
        if not isinstance(value, bool):
            raise _Invalid(f"{where} must be true or false")
    elif field.kind == "score":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _Invalid(f"{where} must be a number")
    elif field.kind == "texts":
        for i, item in enumerate(_list(value, where)):
            _string(item, f"{where}[{i}]")
    elif field.kind == "pairs":
        for i, pair in enumerate(_list(value, where)):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise _Invalid(f"{where}[{i}] must be a [key, value] pair")
            _string(pair[0], f"{where}[{i}][0]")
            _string(pair[1], f"{where}[{i}][1]")
    elif field.kind == "one":
        if value is not None or not field.optional:
            _nested(field, value, where)
    else:  # many
        for i, item in enumerate(_list(value, where)):
            _nested(field, item, f"{where}[{i}]")


def _nested(field: Field, value: Any, where: str) -> None:
    assert field.shape is not None
    _object(value, where, set(field.shape.keys))
    _fields(field.shape, value, where)


def _object(value: Any, where: str, keys: set[str]) -> None:
    if not isinstance(value, dict):
        raise _Invalid(f"{where} must be an object")
    if set(value) != keys:
        problems = []
        if missing := sorted(keys - set(value)):
            problems.append(f"missing {', '.join(missing)}")
        if extra := sorted(str(k)[:40] for k in set(value) - keys):
            problems.append(f"unexpected {', '.join(extra[:5])}")
        raise _Invalid(f"{where}: {'; '.join(problems)}")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(f"{where} must be a list")
    return value


def _string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise _Invalid(f"{where} must be a string")
    if len(value) > MAX_STRING:
        raise _Invalid(f"{where} is longer than {MAX_STRING} characters")


def _count(value: Any, where: str) -> None:
    # bool is an int subclass in Python; JSON true must not pass as 1.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise _Invalid(f"{where} must be a whole number from 0 to {MAX_INT}")
