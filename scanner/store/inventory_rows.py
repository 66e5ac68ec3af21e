"""Stored inventories as rows: each digest's document without its packages, and its package list stored once
per distinct list (`package_lists`, named by the SHA-256 of its JSON).

The builds of an image that changed no package, an image's replicas under several digests and the images on
one base mostly share their package lists: a rescan reads and decodes each list once, not once per digest
(a Debian image's list is most of its document), and the images sharing one get the very same tuple of
packages, whose matching `assess.findings.MatchMemo` then does once. Content-addressed, so a decoded list
kept between reads (`PackageLists`) can never be stale. Inventories stored before lists were split off
(`list_key` NULL) still hold their packages and are read as they always were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from scanner.model.codec import inventory_from_dict, inventory_to_dict, inventory_with_packages, packages_from_list
from scanner.model.types import Inventory, Package
from scanner.store.sql import Tx, dumps, loads

SAVE_LIST = "INSERT INTO package_lists (list_key, packages) VALUES (?, ?) ON CONFLICT DO NOTHING"
LIST_CHUNK = 200  # list keys per read


class MissingPackageList(Exception):
    """An inventory names a package list the store does not hold: read as no inventory (a full scan again)."""


@dataclass(frozen=True)
class SplitInventory:
    document: str  # the inventory's JSON without its packages
    list_key: str
    packages: str  # the package list's JSON


def split(inventory: Inventory) -> SplitInventory:
    doc = inventory_to_dict(inventory)
    packages = dumps(doc.pop("packages"))
    return SplitInventory(dumps(doc), hashlib.sha256(packages.encode()).hexdigest(), packages)


class PackageLists:
    """Decoded package lists by key, bounded (when full it starts again)."""

    def __init__(self, max_lists: int = 64) -> None:
        self.max_lists = max_lists
        self._lists: dict[str, tuple[Package, ...]] = {}

    def missing(self, keys: Iterable[str | None]) -> list[str]:
        return sorted({key for key in keys if key is not None and key not in self._lists})

    def add(self, key: str, packages: str) -> tuple[Package, ...]:
        decoded = packages_from_list(loads(packages))
        if len(self._lists) >= self.max_lists:
            self._lists.clear()
        self._lists[key] = decoded
        return decoded

    def get(self, key: str) -> tuple[Package, ...] | None:
        return self._lists.get(key)


def read_lists(tx: Tx, keys: list[str], into: PackageLists) -> dict[str, tuple[Package, ...]]:
    """The lists named by `keys` (decoded, and kept in `into`); a key the store lacks is absent."""
    found: dict[str, tuple[Package, ...]] = {}
    for start in range(0, len(keys), LIST_CHUNK):
        chunk = keys[start : start + LIST_CHUNK]
        marks = ", ".join("?" for _ in chunk)
        for key, packages in tx.rows(
            f"SELECT list_key, packages FROM package_lists WHERE list_key IN ({marks})", chunk
        ):
            found[str(key)] = into.add(str(key), packages)
    return found


def decode_list(packages: str | None) -> tuple[Package, ...] | None:
    """A package list as read with its inventory (None: the store does not hold it)."""
    return packages_from_list(loads(packages)) if packages is not None else None


def inventory_of(
    document: str,
    list_key: str | None,
    listed: tuple[Package, ...] | None,
    with_packages: Callable[[dict[str, Any]], Inventory] = inventory_from_dict,
) -> Inventory:
    """A stored inventory from its row: a document stored with its packages (no `list_key`) by
    `with_packages`, one stored without them joined to its decoded list; MissingPackageList when the list
    was not found (`listed` None)."""
    data = loads(document)
    if list_key is None:
        return with_packages(data)
    if listed is None:
        raise MissingPackageList(f"package list {list_key[:12]} is missing from the store")
    return inventory_with_packages(data, listed)
