"""acrguard's inventory JSON (the shape later issues extend with findings)."""

from __future__ import annotations

from typing import Any

from scanner.image.layers import display
from scanner.model.types import Inventory, LayerInfo, Package


def layer_dict(layer: LayerInfo | None) -> dict[str, Any] | None:
    if layer is None:
        return None
    return {"index": layer.index, "digest": layer.digest, "diff_id": layer.diff_id, "created_by": layer.created_by}


def package_dict(pkg: Package) -> dict[str, Any]:
    return {
        "name": pkg.name,
        "version": pkg.version,
        "ecosystem": pkg.ecosystem,
        "purl": pkg.purl,
        "source_name": pkg.source_name,
        "source_version": pkg.source_version,
        "arch": pkg.arch,
        "layer": layer_dict(pkg.layer),
        "locations": [display(loc) for loc in pkg.locations],
        "detector": pkg.detector,
        "os_owned": pkg.os_owned,
    }


def inventory_dict(inv: Inventory) -> dict[str, Any]:
    image = inv.image
    os_part = {"id": image.os.id, "version": image.os.version, "codename": image.os.codename} if image.os else None
    return {
        "image": {
            "reference": image.reference,
            "digest": image.digest,
            "config_digest": image.config_digest,
            "platform": image.platform,
            "os": os_part,
            "index_digest": image.index_digest,
            "layers": [layer_dict(layer) for layer in image.layers],
        },
        "status": inv.status,
        "reason": inv.reason,
        "packages": [package_dict(p) for p in sorted(inv.packages, key=_sort_key)],
        "warnings": [str(w) for w in inv.warnings],
    }


def _sort_key(pkg: Package) -> tuple[str, str, str, str]:
    return (pkg.kind, pkg.name, pkg.version, pkg.locations[0] if pkg.locations else "")
