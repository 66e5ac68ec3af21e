"""The layer-chain cache in both stores (SQLite and PostgreSQL): exact round trip in the codec's form,
content-addressed writes (the first inventory under a key stays), and the migration that replaced the
per-layer table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from scanner.model.types import Finding, Inventory
from scanner.store import FindingsStore, open_store

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY = "sha256:" + "a" * 64


def test_round_trip_is_exact(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    inv = alpine_image[0]
    assert store.load_layer_chain(KEY) is None
    store.save_layer_chain(KEY, inv, AT)
    loaded = store.load_layer_chain(KEY)
    # Every field: packages with their layers, metadata, OS names, warnings, image info.
    assert loaded == inv
    assert loaded is not None and loaded.packages and all(p.layer is not None for p in loaded.packages)
    assert store.load_layer_chain("sha256:" + "b" * 64) is None


def test_first_inventory_under_a_key_stays(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    inv = alpine_image[0]
    store.save_layer_chain(KEY, inv, AT)
    store.save_layer_chain(KEY, replace(inv, reason="a second writer"), AT)
    assert store.load_layer_chain(KEY) == inv


def test_empty_inventory_round_trips(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    empty = replace(alpine_image[0], packages=(), warnings=())
    store.save_layer_chain(KEY, empty, AT)
    assert store.load_layer_chain(KEY) == empty


def test_another_instance_reads_it_and_migrating_again_keeps_it(
    store_url: str, store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    store.save_layer_chain(KEY, alpine_image[0], AT)
    with open_store(store_url) as other:
        other.migrate()
        assert other.load_layer_chain(KEY) == alpine_image[0]
