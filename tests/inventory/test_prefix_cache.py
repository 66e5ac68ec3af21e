"""The layer-prefix cache's store (bounded, least recently used evicted first, a corrupt entry a miss) and its
plan (the longest usable prefix, never one whose diff_ids the image's config contradicts)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scanner.image.resolve import ResolvedImage
from scanner.inventory.build import DEFAULT_PLATFORM, ScanOptions, Segment, inventory_or_state, open_source
from scanner.inventory.chain_cache import chain_key
from scanner.inventory.prefix_cache import LayerPrefixCache, PrefixStore, prefix_key
from scanner.model.limits import Limits
from tests import ocibuild


def _key(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def _aged(store: PrefixStore, key: str, when: float) -> None:
    os.utime(store._path(key), (when, when))


def test_entries_come_back_and_a_corrupt_one_is_a_miss(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, 1 << 20)
    assert store.load(_key(1)) is None
    assert store.save(_key(1), b"state one")
    assert store.load(_key(1)) == b"state one"
    path = store._path(_key(1))
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert store.load(_key(1)) is None and not path.exists()  # removed: no longer in the way
    path.write_bytes(b"something else entirely")
    assert store.load(_key(1)) is None


def test_least_recently_used_entries_go_first_by_bytes(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, 3200)  # a state may take 800 bytes
    for n in range(3):
        store.save(_key(n), bytes(800))
        _aged(store, _key(n), 1000 + n)
    store.load(_key(0))  # a hit makes it the most recently used
    store.save(_key(3), bytes(800))  # 4 x 855 bytes with headers: over 3200, the least recent (1) goes
    assert [store.load(_key(n)) is not None for n in range(4)] == [True, False, True, True]
    assert not store.save(_key(9), bytes(801))  # over a quarter of the cache: not kept
    assert store.load(_key(9)) is None


def test_and_by_entries(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, 1 << 20, max_entries=2)
    for n in range(3):
        store.save(_key(n), b"x")
        _aged(store, _key(n), 1000 + n)
    store.evict()
    assert sorted(p.name[:4] for p in tmp_path.iterdir()) == ["0000", "0000"]
    assert store.load(_key(0)) is None and store.load(_key(2)) == b"x"


def test_a_key_must_be_a_digest(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a prefix key"):
        PrefixStore(tmp_path, 1 << 20).load("sha256:../../etc/passwd")


def _image(root: Path, diff_id_0: str = "") -> tuple[str, ResolvedImage]:
    layers = [ocibuild.Layer(ocibuild.layer_tar([ocibuild.Entry(f"etc/f{i}", b"%d" % i)])) for i in range(3)]
    if diff_id_0:
        layers[0].diff_id = diff_id_0
    ocibuild.write_layout(root, [ocibuild.Image(layers)])
    source = open_source(f"oci:{root}", ScanOptions())
    assert not isinstance(source, type(None))
    try:
        image = source.images(DEFAULT_PLATFORM, 1 << 20, 4)[0]  # type: ignore[union-attr]
    finally:
        source.close()  # type: ignore[union-attr]
    return f"oci:{root}", image


def test_the_plan_starts_at_the_longest_usable_prefix(tmp_path: Path) -> None:
    ref, image = _image(tmp_path / "image")
    store = PrefixStore(tmp_path / "cache", 1 << 30)
    cache = LayerPrefixCache(store, "1", ["d@1"])
    plan = cache.plan(image, Limits())
    assert (plan.start, plan.stops) == (0, [2])  # the boundary below the top layer (no base in the history)
    digests = [d.digest for d in image.layers]
    assert plan.keys[1] == prefix_key(digests[:1], ["d@1"], "1", "linux/amd64", Limits())
    assert plan.keys[1] != chain_key(digests[:1], ["d@1"], "1", "linux/amd64", Limits())
    for k in (1, 2):
        state = inventory_or_state(ref, ScanOptions(), Segment(0, None, k, 1 << 30))
        assert isinstance(state, bytes) and plan.keys[k] is not None
        store.save(plan.keys[k], state)  # type: ignore[arg-type]
    plan = cache.plan(image, Limits())
    assert (plan.start, plan.stops, cache.reused) == (2, [], 2)
    # Other versions or limits: other keys, nothing to start from.
    assert LayerPrefixCache(store, "2", ["d@1"]).plan(image, Limits()).start == 0
    assert cache.plan(image, Limits(max_members=5)).start == 0
    every = LayerPrefixCache(PrefixStore(tmp_path / "empty", 1 << 30), "1", ["d@1"], every_layer=True)
    assert every.plan(image, Limits()).stops == [1, 2]


def test_a_config_contradicting_the_states_diff_ids_starts_from_the_first_layer(tmp_path: Path) -> None:
    ref, image = _image(tmp_path / "honest")
    store = PrefixStore(tmp_path / "cache", 1 << 30)
    plan = LayerPrefixCache(store, "1", ["d@1"]).plan(image, Limits())
    for k in (1, 2):
        state = inventory_or_state(ref, ScanOptions(), Segment(0, None, k, 1 << 30))
        store.save(plan.keys[k], state)  # type: ignore[arg-type,arg-type]
    _, forged = _image(tmp_path / "forged", diff_id_0="sha256:" + "0" * 64)
    assert [d.digest for d in forged.layers] == [d.digest for d in image.layers]  # same blobs, same keys
    assert LayerPrefixCache(store, "1", ["d@1"]).plan(forged, Limits()).start == 0


def test_a_cache_that_cannot_be_written_or_read_costs_replays_only(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    store = PrefixStore(blocked / "cache", 1 << 20)
    assert not store.save(_key(1), b"state")
    assert store.load(_key(1)) is None
    unreadable = PrefixStore(tmp_path / "cache", 1 << 20)
    assert unreadable.save(_key(2), b"state")
    unreadable._path(_key(2)).unlink()
    unreadable._path(_key(2)).mkdir()  # reading a directory fails with an OSError other than not-found
    assert unreadable.load(_key(2)) is None
