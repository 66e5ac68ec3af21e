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
from scanner.model.types import Inventory
from scanner.sandbox.errors import JobError
from scanner.sandbox.fetch import FetchedImage

# Longer than any path (limits.max_path_length is 4096) or Dockerfile line worth keeping; a longer string
# is a child trying to make the store or the API carry its payload.
MAX_STRING = 64 * 1024
MAX_INT = 2**63 - 1  # what the stores' integer columns and JSON readers elsewhere hold

_STATUSES = ("Scanned", "Unsupported")
_OS_STR = ("id", "version", "codename", "name", "pretty_name", "source")
_LAYER_STR = ("digest", "diff_id", "media_type", "created_by")
_LAYER_INT = ("index", "size")
_IMAGE_STR = ("reference", "digest", "config_digest", "platform", "media_type", "index_digest")
_PACKAGE_STR = ("name", "version", "ecosystem", "purl", "source_name", "source_version", "arch", "kind", "detector")


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
    _object(doc, "the document", {"codec", "image", "status", "reason", "packages", "warnings"})
    if doc["codec"] != CODEC_VERSION or isinstance(doc["codec"], bool):
        raise _Invalid(f"codec is {str(doc['codec'])[:20]!r}, expected {CODEC_VERSION}")
    _image(doc["image"], "image")
    if doc["status"] not in _STATUSES:
        raise _Invalid(f"status must be one of {', '.join(_STATUSES)}")
    _string(doc["reason"], "reason")
    for i, pkg in enumerate(_list(doc["packages"], "packages")):
        _package(pkg, f"packages[{i}]")
    for i, warning in enumerate(_list(doc["warnings"], "warnings")):
        where = f"warnings[{i}]"
        _object(warning, where, {"where", "message"})
        _strings(warning, where, ("where", "message"))


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


def _strings(obj: dict[str, Any], where: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        _string(obj[key], f"{where}.{key}")


def _count(value: Any, where: str) -> None:
    # bool is an int subclass in Python; JSON true must not pass as 1.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise _Invalid(f"{where} must be a whole number from 0 to {MAX_INT}")


def _os(value: Any, where: str) -> None:
    _object(value, where, {*_OS_STR, "id_like"})
    _strings(value, where, _OS_STR)
    for i, item in enumerate(_list(value["id_like"], f"{where}.id_like")):
        _string(item, f"{where}.id_like[{i}]")


def _layer(value: Any, where: str) -> None:
    _object(value, where, {*_LAYER_STR, *_LAYER_INT})
    _strings(value, where, _LAYER_STR)
    for key in _LAYER_INT:
        _count(value[key], f"{where}.{key}")


def _image(value: Any, where: str) -> None:
    _object(value, where, {*_IMAGE_STR, "os", "layers"})
    _strings(value, where, _IMAGE_STR)
    if value["os"] is not None:
        _os(value["os"], f"{where}.os")
    for i, layer in enumerate(_list(value["layers"], f"{where}.layers")):
        _layer(layer, f"{where}.layers[{i}]")


def _package(value: Any, where: str) -> None:
    _object(value, where, {*_PACKAGE_STR, "locations", "layer", "os_owned", "metadata"})
    _strings(value, where, _PACKAGE_STR)
    for i, location in enumerate(_list(value["locations"], f"{where}.locations")):
        _string(location, f"{where}.locations[{i}]")
    if value["layer"] is not None:
        _layer(value["layer"], f"{where}.layer")
    if not isinstance(value["os_owned"], bool):
        raise _Invalid(f"{where}.os_owned must be true or false")
    for i, pair in enumerate(_list(value["metadata"], f"{where}.metadata")):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise _Invalid(f"{where}.metadata[{i}] must be a [key, value] pair")
        _string(pair[0], f"{where}.metadata[{i}][0]")
        _string(pair[1], f"{where}.metadata[{i}][1]")
