"""Exact round trip of inventories and findings to JSON-able dicts, for storage (not a user-facing format).

Unlike `scanner.report`, nothing is dropped or rendered: every field of every dataclass comes back equal,
so a stored inventory can be re-assessed without pulling the image again. The fields are those of
`scanner.model.shapes`. `RawPackage.owned_files` never reaches a `Package`, so nothing here loses it.
"""

from __future__ import annotations

from typing import Any

from scanner.model.shapes import FINDING, IMAGE, INVENTORY, LAYER, PACKAGE
from scanner.model.types import Finding, Inventory, LayerInfo, Package

# Bumped when the shape changes incompatibly; readers refuse a version they do not know.
CODEC_VERSION = 1


def _check_version(data: dict[str, Any], what: str) -> None:
    version = data.get("codec")
    if version != CODEC_VERSION:
        raise ValueError(f"stored {what} has codec version {version!r}, this acrguard reads {CODEC_VERSION}")


def inventory_to_dict(inv: Inventory) -> dict[str, Any]:
    return {"codec": CODEC_VERSION, **INVENTORY.dump(inv)}


class _SharedLayers:
    """Every package stores its layer's whole record, and an image has a few layers for hundreds of packages:
    each distinct record is decoded once and its `LayerInfo` shared (frozen, so sharing is safe). Keyed by
    index, but a record is reused only when equal, so the round trip stays exact whatever the document holds."""

    def __init__(self) -> None:
        self._by_index: dict[Any, tuple[dict[str, Any], LayerInfo]] = {}

    def __call__(self, data: dict[str, Any]) -> LayerInfo:
        seen = self._by_index.get(data["index"])
        if seen is not None and seen[0] == data:
            return seen[1]
        layer = LAYER.load(data)
        self._by_index[data["index"]] = (data, layer)
        return layer

    def many(self, items: list[dict[str, Any]]) -> tuple[LayerInfo, ...]:
        return tuple([self(item) for item in items])

    def optional(self, data: dict[str, Any] | None) -> LayerInfo | None:
        return None if data is None else self(data)


def inventory_from_dict(data: dict[str, Any]) -> Inventory:
    _check_version(data, "inventory")
    layers = _SharedLayers()  # the image's layers first: packages then share its LayerInfo objects
    package = PACKAGE.loader(layer=layers.optional)
    return INVENTORY.loader(
        image=IMAGE.loader(layers=layers.many),
        packages=lambda items: tuple([package(item) for item in items]),
    )(data)


def packages_from_list(items: list[dict[str, Any]]) -> tuple[Package, ...]:
    """A package list stored on its own (`inventory_with_packages` joins it to its inventory again)."""
    layers = _SharedLayers()
    package = PACKAGE.loader(layer=layers.optional)
    return tuple([package(item) for item in items])


def inventory_with_packages(data: dict[str, Any], packages: tuple[Package, ...]) -> Inventory:
    """`inventory_from_dict` of a document stored without its package list, given that list decoded
    (`packages_from_list`): lists are stored once however many images have them, and decoded once."""
    _check_version(data, "inventory")
    load = INVENTORY.loader(image=IMAGE.loader(layers=_SharedLayers().many), packages=lambda _: packages)
    return load({**data, "packages": None})


class InventoryDecoder:
    """`inventory_from_dict` for many stored inventories in a row (a rescan's batch). Inventories whose
    package lists are equal (one image's replicas under several digests, rebuilds that changed no package)
    get one shared tuple of packages: decoded once, frozen, so sharing is safe, and an assessment can know it
    has matched that very tuple already (`assess.findings.MatchMemo`). Keyed by the package list's exact
    JSON, so what comes back is always equal to what `inventory_from_dict` makes. Bounded: when full it
    starts again."""

    def __init__(self, max_lists: int = 256) -> None:
        self.max_lists = max_lists
        self._packages: dict[bytes, tuple[Package, ...]] = {}

    def __call__(self, data: dict[str, Any]) -> Inventory:
        _check_version(data, "inventory")
        # Imported here: the sandboxed child imports this module, never decodes a stored inventory, and runs
        # under an address-space limit that loading one more extension module can cross (a crash, not an error).
        import orjson

        key = orjson.dumps(data.get("packages"))
        shared = self._packages.get(key)
        if shared is None:
            inventory = inventory_from_dict(data)
            if len(self._packages) >= self.max_lists:
                self._packages.clear()
            self._packages[key] = inventory.packages
            return inventory
        return inventory_with_packages(data, shared)


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    return {"codec": CODEC_VERSION, **FINDING.dump(finding)}


def finding_from_dict(data: dict[str, Any]) -> Finding:
    _check_version(data, "finding")
    return FINDING.load(data)
