"""The layer-chain cache: an image whose layers were all inventoried before is not fetched or parsed again.

The inventory is a function of the squashed filesystem (`scanner.inventory.analysis`, `scanner.image.tree`): a
layer's packages depend on every layer below it (whiteouts, replaced package databases, the OS release a
detector reads). So this cache is keyed by the *full*, ordered chain of layer blob digests: an inventory says
nothing about the layers above a prefix. A prefix is served by the layer-prefix cache instead
(`scanner.inventory.prefix_cache`), which keeps the replay's state after it, not its inventory.

Blob digests, not the config's diff_ids: the registry verified the blob digests on push and our reader
verifies them while streaming, while diff_ids are whatever the image author wrote into the config. A hit
additionally requires this config's diff_ids to equal the ones the cached scan verified against the
content, so a config lying about its layers gets the full scan (which rejects it), as without a cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal, Protocol

from scanner.image.resolve import ResolvedImage
from scanner.inventory.build import image_info, layer_infos
from scanner.model.limits import Limits
from scanner.model.types import Inventory

# Bumped when what goes into a key, or how a hit is rebuilt, changes.
KEY_FORMAT = 1
_VERIFIED = "acrguard.verified"

Outcome = Literal["unused", "hit", "miss", "uncacheable"]


class ChainStore(Protocol):
    """What the cache needs from the findings store (its `ScanRecords` port has these methods)."""

    def save_layer_chain(self, chain_key: str, inventory: Inventory, at: datetime) -> None: ...

    def load_layer_chain(self, chain_key: str) -> Inventory | None: ...


def chain_key(
    layer_digests: Sequence[str],
    detector_versions: Sequence[str],
    scanner_version: str,
    platform: str,
    limits: Limits,
) -> str:
    """One digest over everything the sandboxed parse's result depends on: the layer contents in order,
    the detector set, the scanner, the platform (Windows is not parsed) and the parse limits (a limit
    turns a file into a warning instead of packages)."""
    document = {
        "format": KEY_FORMAT,
        "layers": list(layer_digests),
        "detectors": sorted(detector_versions),
        "scanner": scanner_version,
        "platform": platform,
        "limits": {name: getattr(limits, name) for name in Limits.names()},
    }
    return "sha256:" + hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def cacheable_key(
    image: ResolvedImage, detector_versions: Sequence[str], scanner_version: str, limits: Limits
) -> str | None:
    """The image's chain key, or None when a layer has no verified blob digest (a legacy docker-save
    layer, named by its unverifiable diff_id) or the image has no layers."""
    if not image.layers or any(dict(d.annotations).get(_VERIFIED) == "no" for d in image.layers):
        return None
    platform = str(image.config.platform) if image.config.os else ""
    return chain_key([d.digest for d in image.layers], detector_versions, scanner_version, platform, limits)


def reuse(cached: Inventory, image: ResolvedImage) -> Inventory | None:
    """The cached inventory as this image's: packages, OS, status, reason and warnings from the cache; the
    image info (reference, digests, platform, layers with this config's created_by) from `image`; each
    package's layer re-pointed at this image's layer of the same index. None when the cached entry cannot
    stand for `image` (another layer count, or diff_ids other than those verified when it was made)."""
    layers = layer_infos(image)
    if len(cached.image.layers) != len(layers):
        return None
    verified = tuple(layer.diff_id for layer in cached.image.layers)
    declared = image.config.diff_ids or ("",) * len(layers)
    if declared != verified:
        return None
    packages = []
    for package in cached.packages:
        if package.layer is not None:
            if not 0 <= package.layer.index < len(layers):
                return None
            package = replace(package, layer=layers[package.layer.index])
        packages.append(package)
    info = image_info(image, cached.image.os, layers)
    return replace(cached, image=info, packages=tuple(packages))


class LayerChainCache:
    """One scan's use of the cache: the store, the versions that make a result current, and what happened
    (`outcome`, read by `process_scan` for the scan's timings). Made per scan: not shared across threads."""

    def __init__(self, store: ChainStore, scanner_version: str, detector_versions: Sequence[str]) -> None:
        self.store = store
        self.scanner_version = scanner_version
        self.detector_versions = tuple(sorted(detector_versions))
        self.outcome: Outcome = "unused"

    def key(self, image: ResolvedImage, limits: Limits) -> str | None:
        return cacheable_key(image, self.detector_versions, self.scanner_version, limits)

    def lookup(self, key: str | None, image: ResolvedImage) -> Inventory | None:
        """This image's inventory from the cache, or None (a miss: scan and `save`)."""
        if key is None:
            self.outcome = "uncacheable"
            return None
        cached = self.store.load_layer_chain(key)
        found = reuse(cached, image) if cached is not None else None
        self.outcome = "hit" if found is not None else "miss"
        return found

    def save(self, key: str | None, inventory: Inventory) -> None:
        """Keep a successful, supported inventory only: Unsupported says the scanner could not read the
        image (Windows, nothing recognised), and the next scan of those layers should try again."""
        if key is not None and inventory.status == "Scanned":
            self.store.save_layer_chain(key, inventory, datetime.now(UTC))
