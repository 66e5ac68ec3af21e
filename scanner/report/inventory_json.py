"""acrguard's inventory JSON (the shape later issues extend with findings): the fields
`scanner.model.shapes` marks shown, with locations as a user reads them and packages in a stable order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scanner.image.layers import display
from scanner.model.shapes import INVENTORY, LAYER, PACKAGE
from scanner.model.types import Inventory, LayerInfo, Package, Warning_


def layer_dict(layer: LayerInfo | None) -> dict[str, Any] | None:
    return None if layer is None else LAYER.view(layer)


def package_dict(pkg: Package) -> dict[str, Any]:
    return PACKAGE.view(pkg, locations=_locations)


def inventory_dict(inv: Inventory) -> dict[str, Any]:
    return INVENTORY.view(inv, packages=_packages, warnings=_warnings)


def _locations(locations: Iterable[str]) -> list[str]:
    return [display(loc) for loc in locations]


def _packages(packages: Iterable[Package]) -> list[dict[str, Any]]:
    return [package_dict(p) for p in sorted(packages, key=_sort_key)]


def _warnings(warnings: Iterable[Warning_]) -> list[str]:
    return [str(w) for w in warnings]


def _sort_key(pkg: Package) -> tuple[str, str, str, str]:
    return (pkg.kind, pkg.name, pkg.version, pkg.locations[0] if pkg.locations else "")
