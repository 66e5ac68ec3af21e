"""The child's inventory JSON is untrusted: bounded, parsed, checked key by key before anyone uses it."""

from __future__ import annotations

import json
from typing import Any

from scanner.jobs.errors import JobError
from scanner.jobs.fetch import FetchedImage

_STATUSES = ("Scanned", "Unsupported")
_IMAGE_STR = ("reference", "digest", "config_digest", "platform", "index_digest")
_PACKAGE_STR = ("name", "version", "ecosystem", "purl", "source_name", "source_version", "arch", "detector")
_LAYER_STR = ("digest", "diff_id", "created_by")


def parse_inventory(data: bytes, max_bytes: int, fetched: FetchedImage) -> dict[str, Any]:
    """The inventory document, labelled with the trusted side's reference and digests (the sandbox only
    saw a scratch layout: `oci:/input` and a manifest re-serialised by the fetch)."""
    if len(data) > max_bytes:
        raise JobError(f"sandbox output: more than {max_bytes} bytes (limit output_bytes)")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise JobError(f"sandbox output: not JSON ({type(exc).__name__})") from None
    _check_inventory(doc)
    doc["image"]["reference"] = fetched.reference
    doc["image"]["digest"] = fetched.digest
    doc["image"]["index_digest"] = fetched.index_digest
    return doc  # type: ignore[no-any-return]


def _fail(where: str) -> JobError:
    return JobError(f"sandbox output: {where} is missing or has the wrong type")


def _check_inventory(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise _fail("the document")
    image = doc.get("image")
    if not isinstance(image, dict) or not all(isinstance(image.get(k), str) for k in _IMAGE_STR):
        raise _fail("image")
    os_part = image.get("os")
    if os_part is not None and not (
        isinstance(os_part, dict) and all(isinstance(os_part.get(k), str) for k in ("id", "version", "codename"))
    ):
        raise _fail("image.os")
    layers = image.get("layers")
    if not isinstance(layers, list) or not all(_is_layer(layer) for layer in layers):
        raise _fail("image.layers")
    if doc.get("status") not in _STATUSES or not isinstance(doc.get("reason"), str):
        raise _fail("status/reason")
    packages = doc.get("packages")
    if not isinstance(packages, list) or not all(_is_package(p) for p in packages):
        raise _fail("packages")
    warnings = doc.get("warnings")
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise _fail("warnings")


def _is_layer(layer: Any) -> bool:
    return (
        isinstance(layer, dict)
        and isinstance(layer.get("index"), int)
        and not isinstance(layer.get("index"), bool)
        and all(isinstance(layer.get(k), str) for k in _LAYER_STR)
    )


def _is_package(pkg: Any) -> bool:
    if not isinstance(pkg, dict) or not all(isinstance(pkg.get(k), str) for k in _PACKAGE_STR):
        return False
    locations = pkg.get("locations")
    layer = pkg.get("layer")
    return (
        isinstance(locations, list)
        and all(isinstance(loc, str) for loc in locations)
        and isinstance(pkg.get("os_owned"), bool)
        and (layer is None or _is_layer(layer))
    )
