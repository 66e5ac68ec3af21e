"""Exact round trip of inventories and findings to JSON-able dicts, for storage (not a user-facing format).

Unlike `scanner.report`, nothing is dropped or rendered: every field of every dataclass comes back equal,
so a stored inventory can be re-assessed without pulling the image again. `RawPackage.owned_files` never
reaches a `Package`, so nothing here loses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from scanner.model.types import Cvss, Finding, ImageInfo, Inventory, LayerInfo, OSInfo, Package, Warning_

# Bumped when the shape changes incompatibly; readers refuse a version they do not know.
CODEC_VERSION = 1


def _pairs(items: tuple[tuple[str, str], ...]) -> list[list[str]]:
    return [[k, v] for k, v in items]


def _tuple_pairs(items: list[list[str]]) -> tuple[tuple[str, str], ...]:
    # A list comprehension: twice as fast as a generator here, and this runs for every stored package.
    return tuple([(str(k), str(v)) for k, v in items])


def os_to_dict(info: OSInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "version": info.version,
        "codename": info.codename,
        "name": info.name,
        "pretty_name": info.pretty_name,
        "id_like": list(info.id_like),
        "source": info.source,
    }


def os_from_dict(data: dict[str, Any]) -> OSInfo:
    return OSInfo(
        id=data["id"],
        version=data["version"],
        codename=data["codename"],
        name=data["name"],
        pretty_name=data["pretty_name"],
        id_like=tuple(data["id_like"]),
        source=data["source"],
    )


def layer_to_dict(layer: LayerInfo) -> dict[str, Any]:
    return {
        "index": layer.index,
        "digest": layer.digest,
        "diff_id": layer.diff_id,
        "media_type": layer.media_type,
        "size": layer.size,
        "created_by": layer.created_by,
    }


def layer_from_dict(data: dict[str, Any]) -> LayerInfo:
    return LayerInfo(
        index=data["index"],
        digest=data["digest"],
        diff_id=data["diff_id"],
        media_type=data["media_type"],
        size=data["size"],
        created_by=data["created_by"],
    )


def package_to_dict(pkg: Package) -> dict[str, Any]:
    return {
        "name": pkg.name,
        "version": pkg.version,
        "ecosystem": pkg.ecosystem,
        "purl": pkg.purl,
        "source_name": pkg.source_name,
        "source_version": pkg.source_version,
        "arch": pkg.arch,
        "locations": list(pkg.locations),
        "kind": pkg.kind,
        "detector": pkg.detector,
        "layer": layer_to_dict(pkg.layer) if pkg.layer is not None else None,
        "os_owned": pkg.os_owned,
        "metadata": _pairs(pkg.metadata),
    }


def package_from_dict(
    data: dict[str, Any], layer_from: Callable[[dict[str, Any]], LayerInfo] = layer_from_dict
) -> Package:
    layer = data["layer"]
    return Package(
        name=data["name"],
        version=data["version"],
        ecosystem=data["ecosystem"],
        purl=data["purl"],
        source_name=data["source_name"],
        source_version=data["source_version"],
        arch=data["arch"],
        locations=tuple(data["locations"]),
        kind=data["kind"],
        detector=data["detector"],
        layer=layer_from(layer) if layer is not None else None,
        os_owned=bool(data["os_owned"]),
        metadata=_tuple_pairs(data["metadata"]),
    )


def _image_to_dict(image: ImageInfo) -> dict[str, Any]:
    return {
        "reference": image.reference,
        "digest": image.digest,
        "config_digest": image.config_digest,
        "platform": image.platform,
        "os": os_to_dict(image.os) if image.os is not None else None,
        "layers": [layer_to_dict(layer) for layer in image.layers],
        "media_type": image.media_type,
        "index_digest": image.index_digest,
    }


def _image_from_dict(
    data: dict[str, Any], layer_from: Callable[[dict[str, Any]], LayerInfo] = layer_from_dict
) -> ImageInfo:
    os_part = data["os"]
    return ImageInfo(
        reference=data["reference"],
        digest=data["digest"],
        config_digest=data["config_digest"],
        platform=data["platform"],
        os=os_from_dict(os_part) if os_part is not None else None,
        layers=tuple(layer_from(layer) for layer in data["layers"]),
        media_type=data["media_type"],
        index_digest=data["index_digest"],
    )


def _check_version(data: dict[str, Any], what: str) -> None:
    version = data.get("codec")
    if version != CODEC_VERSION:
        raise ValueError(f"stored {what} has codec version {version!r}, this acrguard reads {CODEC_VERSION}")


def inventory_to_dict(inv: Inventory) -> dict[str, Any]:
    return {
        "codec": CODEC_VERSION,
        "image": _image_to_dict(inv.image),
        "status": inv.status,
        "reason": inv.reason,
        "packages": [package_to_dict(p) for p in inv.packages],
        "warnings": [{"where": w.where, "message": w.message} for w in inv.warnings],
    }


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
        layer = layer_from_dict(data)
        self._by_index[data["index"]] = (data, layer)
        return layer


def inventory_from_dict(data: dict[str, Any]) -> Inventory:
    _check_version(data, "inventory")
    layers = _SharedLayers()  # the image's layers first: packages then share its LayerInfo objects
    return Inventory(
        image=_image_from_dict(data["image"], layers),
        status=data["status"],
        reason=data["reason"],
        packages=tuple(package_from_dict(p, layers) for p in data["packages"]),
        warnings=tuple(Warning_(where=w["where"], message=w["message"]) for w in data["warnings"]),
    )


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    cvss = finding.cvss
    return {
        "codec": CODEC_VERSION,
        "id": finding.id,
        "aliases": list(finding.aliases),
        "package": package_to_dict(finding.package),
        "installed_version": finding.installed_version,
        "fixed_version": finding.fixed_version,
        "fix_status": finding.fix_status,
        "severity": finding.severity,
        "severity_source": finding.severity_source,
        "cvss": {"version": cvss.version, "vector": cvss.vector, "score": cvss.score} if cvss else None,
        "category": finding.category,
        "summary": finding.summary,
        "references": list(finding.references),
        "published": finding.published,
        "modified": finding.modified,
        "disabled": finding.disabled,
        "disabled_by": finding.disabled_by,
        "remediation": finding.remediation,
    }


def finding_from_dict(data: dict[str, Any]) -> Finding:
    _check_version(data, "finding")
    cvss = data["cvss"]
    return Finding(
        id=data["id"],
        aliases=tuple(data["aliases"]),
        package=package_from_dict(data["package"]),
        installed_version=data["installed_version"],
        fixed_version=data["fixed_version"],
        fix_status=data["fix_status"],
        severity=data["severity"],
        severity_source=data["severity_source"],
        # A score stored as 7 (an int after some JSON round trips) must come back as the float 7.0.
        cvss=Cvss(cvss["version"], cvss["vector"], float(cast(float, cvss["score"]))) if cvss else None,
        category=data["category"],
        summary=data["summary"],
        references=tuple(data["references"]),
        published=data["published"],
        modified=data["modified"],
        disabled=bool(data["disabled"]),
        disabled_by=data["disabled_by"],
        remediation=data["remediation"],
    )
