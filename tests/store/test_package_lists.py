"""Package lists stored once per distinct list, on SQLite and PostgreSQL: inventories read back exactly, images
sharing a list share its decoded packages, inventories stored with their packages (before lists were split
off) still read, and a missing list reads as no inventory rather than as an image without packages."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from scanner.model.codec import inventory_to_dict
from scanner.model.types import Finding, Inventory
from scanner.store import FindingsStore, open_store
from scanner.store.inventory_rows import PackageLists
from scanner.store.sql import dumps, to_text

REG = "lists.azurecr.io"
AT = datetime(2025, 6, 1, tzinfo=UTC)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _count(store: FindingsStore, table: str) -> int:
    with store._tx(write=False) as tx:  # type: ignore[attr-defined]
        return int(tx.rows(f"SELECT COUNT(*) FROM {table}")[0][0])


def _replica(inventory: Inventory, n: int) -> Inventory:
    """The same packages under another digest and reference, as a rebuild that changed no package."""
    image = replace(inventory.image, reference=f"{REG}/app:{n}", digest=digest(n))
    return replace(inventory, image=image)


def test_images_sharing_a_package_list_store_it_once_and_read_back_exactly(
    store_url: str, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    base = alpine_image[0]
    fewer = replace(base, packages=base.packages[:3])
    saved = {digest(n): _replica(base, n) for n in range(3)} | {digest(9): _replica(fewer, 9)}
    with open_store(store_url) as store:
        for key, inventory in saved.items():
            store.save_inventory(REG, key, inventory, "1.0", ["apk@1"], AT)
        assert _count(store, "package_lists") == 2
        found = store.load_inventories([(REG, key) for key in saved])
        assert {key: found[(REG, key)].inventory for key in saved} == saved
        for key, inventory in saved.items():
            single = store.load_inventory(REG, key)
            assert single is not None and single.inventory == inventory
        # One decoded tuple for the three replicas, and the same again on the next read (lists are
        # content-addressed: what was decoded cannot go stale).
        shared = found[(REG, digest(0))].inventory.packages
        assert all(found[(REG, digest(n))].inventory.packages is shared for n in range(3))
        again = store.load_inventories([(REG, digest(1))])
        assert again[(REG, digest(1))].inventory.packages is shared
    with open_store(store_url) as fresh:  # another instance decodes its own, equal
        assert fresh.load_inventories([(REG, digest(2))])[(REG, digest(2))].inventory == saved[digest(2)]


def test_an_inventory_stored_with_its_packages_still_reads_and_is_indexed(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    """A row as stores wrote it before package lists were split off: the whole document, no list key."""
    inventory = _replica(alpine_image[0], 5)
    with store._tx() as tx:  # type: ignore[attr-defined]
        tx.run(
            "INSERT INTO inventories (registry, digest, scanner_version, detector_versions, inventory, saved_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (REG, digest(5), "1.0", dumps(["apk@1"]), dumps(inventory_to_dict(inventory)), to_text(AT)),
        )
    stored = store.load_inventory(REG, digest(5))
    assert stored is not None and stored.inventory == inventory
    assert store.load_inventories([(REG, digest(5))])[(REG, digest(5))] == stored
    assert store.index_unindexed() == 1  # read for the package index like any other
    # Saved again, it is split like every new one.
    store.save_inventory(REG, digest(5), inventory, "1.0", ["apk@1"], AT)
    assert _count(store, "package_lists") == 1
    assert store.load_inventory(REG, digest(5)) == stored


def test_a_missing_package_list_reads_as_no_inventory(
    store_url: str, alpine_image: tuple[Inventory, list[Finding]], caplog: pytest.LogCaptureFixture
) -> None:
    """Never as an image without packages (which would assess Healthy): the digest is scanned again."""
    with open_store(store_url) as store:
        store.save_inventory(REG, digest(1), _replica(alpine_image[0], 1), "1.0", ["apk@1"], AT)
        with store._tx() as tx:  # type: ignore[attr-defined]
            tx.run("DELETE FROM package_lists")
    with open_store(store_url) as store, caplog.at_level(logging.WARNING):
        assert store.load_inventory(REG, digest(1)) is None
        assert store.load_inventories([(REG, digest(1))]) == {}
    assert "package list" in caplog.text and digest(1) in caplog.text


def test_an_image_without_packages_reads_back_even_when_the_decoded_lists_start_again(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    """An empty list is a list (a distroless image's), not a missing one, also when the store's decoded lists
    were cleared for room during the read (one list of room here)."""
    empty = replace(_replica(alpine_image[0], 1), packages=())
    full = _replica(alpine_image[0], 2)
    store.save_inventory(REG, digest(1), empty, "1.0", ["apk@1"], AT)
    store.save_inventory(REG, digest(2), full, "1.0", ["apk@1"], AT)
    store._decoded_lists = PackageLists(max_lists=1)  # type: ignore[attr-defined]
    found = store.load_inventories([(REG, digest(1)), (REG, digest(2))])
    assert found[(REG, digest(1))].inventory == empty
    assert found[(REG, digest(2))].inventory == full
