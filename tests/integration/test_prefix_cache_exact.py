"""The layer-prefix cache changes nothing but speed: every test image, replayed whole and from every prefix's
state, gives the same inventory JSON byte for byte, in this process and through the bubblewrap sandbox.

The images are the suite's mmdebstrap/umoci images and multi-layer images over real base layers
(`tests.prefiximages`): package databases whited out and brought back in upper layers, opaque directories,
links made in one layer and followed in another, hard links to lower files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scanner.inventory.build import ScanOptions, Segment, inventory, inventory_or_state
from scanner.inventory.prefix_cache import LayerPrefixCache, PrefixStore
from scanner.inventory.prefix_state import PrefixContentMissing
from scanner.model.errors import AcrguardError
from scanner.model.types import Inventory
from scanner.sandbox.bubblewrap import BubblewrapRunner
from scanner.sandbox.errors import JobError
from scanner.sandbox.job import scan_job_inventory
from scanner.sandbox.runner import JobLimits
from tests import ocibuild, prefiximages
from tests.integration import realparts

BIG = 1 << 40
TAGS = ("bookworm", "two-layer", "bookworm-zstd", "multi", "broken")


_json = prefiximages.both_documents


@pytest.fixture(scope="module")
def refs(debian_images: realparts.BuiltImages, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return prefiximages.suite_images(debian_images, tmp_path_factory.mktemp("prefix-images"), TAGS)


def test_the_fixture_set_has_what_the_cache_must_carry(refs: dict[str, str]) -> None:
    deb = inventory(refs["debian-whiteouts"])[0]
    names = {p.name for p in deb.packages}
    # The whiteout removed the real database and a smaller one came back; the opaque marker removed `kept`.
    debs = [p for p in deb.packages if p.kind == "deb"]
    assert len(debs) == 5 and {p.layer.index for p in debs if p.layer is not None} == {3}
    assert {"through-link", "probe-three"} <= names and not names & {"kept", "probe-one"}
    assert deb.image.os is not None and deb.image.os.pretty_name == "changed"  # a lower link, an upper file
    rpm = inventory(refs["rpm-whiteouts"])[0]
    assert {p.name for p in rpm.packages} == {"openssl-libs"}


@pytest.mark.parametrize("name", [*TAGS, "debian-whiteouts", "program-links", "rpm-whiteouts"])
def test_every_prefix_replays_exactly_in_process(refs: dict[str, str], name: str) -> None:
    ref, options = refs[name], ScanOptions()
    full = inventory(ref, options)[0]
    expected, n = _json(full), len(full.image.layers)
    for k in range(1, n):
        state = inventory_or_state(ref, options, Segment(0, None, k, BIG))
        assert isinstance(state, bytes)
        if name == "program-links":
            # Programs of the base are kept as their size alone; an upper layer linking them under new names
            # cannot replay from the state (the job then replays every layer: see the sandbox test).
            with pytest.raises(PrefixContentMissing):
                inventory_or_state(ref, options, Segment(k, state))
            continue
        resumed = inventory_or_state(ref, options, Segment(k, state))
        assert isinstance(resumed, Inventory)
        assert _json(resumed) == expected, f"{name}: from the state after {k} layers"
    if n > 1 and name != "program-links":
        state = None
        for k in range(1, n):  # chained: each state made over the one before it
            state = inventory_or_state(ref, options, Segment(k - 1, state, k, BIG))  # type: ignore[arg-type]
        resumed = inventory_or_state(ref, options, Segment(n - 1, state))  # type: ignore[arg-type]
        assert isinstance(resumed, Inventory) and _json(resumed) == expected


def _store(path: Path) -> PrefixStore:
    return PrefixStore(path, 1 << 32)


def _job(ref: str, store: PrefixStore | None) -> tuple[Inventory, LayerPrefixCache | None]:
    cache = LayerPrefixCache(store, "test", ["detectors@1"], every_layer=True) if store is not None else None
    found = scan_job_inventory(ref, ScanOptions(), BubblewrapRunner(), JobLimits(), prefixes=cache)
    return found, cache


@pytest.mark.parametrize("name", ["two-layer", "debian-whiteouts", "program-links", "rpm-whiteouts"])
def test_every_prefix_replays_exactly_in_the_sandbox(refs: dict[str, str], name: str, tmp_path: Path) -> None:
    ref = refs[name]
    plain, _ = _job(ref, None)
    expected, n = _json(plain), len(plain.image.layers)
    store = _store(tmp_path / "prefixes")
    first, cache = _job(ref, store)  # one child per layer, each over the state the one before it printed
    assert cache is not None and cache.reused == 0 and cache.saved == list(range(1, n))
    assert _json(first) == expected
    # Then from each prefix alone: a store holding only that prefix's state.
    keys = cache.plan_keys
    for k in range(1, n):
        key = keys[k]
        assert key is not None
        only = _store(tmp_path / f"only-{k}")
        only.directory.mkdir()
        shutil.copy(store._path(key), only._path(key))
        again, cache = _job(ref, only)
        assert cache is not None
        # A state that cannot serve this image (programs linked under new names): every layer, same result.
        assert cache.reused == (0 if name == "program-links" else k)
        assert _json(again) == expected, f"{name}: from the state after {k} layers"


def test_a_forged_config_does_not_use_or_poison_the_cache(debian_images: realparts.BuiltImages, tmp_path: Path) -> None:
    layers = prefiximages.debian_layers(debian_images)
    honest = prefiximages.write(tmp_path / "honest", layers)
    store = _store(tmp_path / "prefixes")
    expected = _json(_job(honest, None)[0])
    assert _json(_job(honest, store)[0]) == expected
    entries = {p.name: p.read_bytes() for p in (tmp_path / "prefixes").iterdir()}
    # Same blobs (so the same prefix keys), a config lying about the base layer's content.
    lying = [
        ocibuild.Layer(b"", blob=layer.blob, media_type=layer.media_type, diff_id=layer.diff_id) for layer in layers
    ]
    lying[0].diff_id = "sha256:" + "0" * 64
    forged = prefiximages.write(tmp_path / "forged", lying)
    with pytest.raises((JobError, AcrguardError)) as without:
        _job(forged, None)
    with pytest.raises((JobError, AcrguardError)) as with_cache:
        _job(forged, store)
    assert "does not match diff_id" in str(without.value)
    assert str(with_cache.value) == str(without.value)
    assert {p.name: p.read_bytes() for p in (tmp_path / "prefixes").iterdir()} == entries
    again, cache = _job(honest, store)
    assert cache is not None and cache.reused == 3 and _json(again) == expected


def test_a_corrupt_entry_is_a_miss_never_a_wrong_result(refs: dict[str, str], tmp_path: Path) -> None:
    ref = refs["debian-whiteouts"]
    expected = _json(_job(ref, None)[0])
    store = _store(tmp_path / "prefixes")
    _job(ref, store)
    for path in (tmp_path / "prefixes").iterdir():
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    again, cache = _job(ref, store)
    assert cache is not None and cache.reused == 0  # every entry failed its checksum: replayed whole
    assert _json(again) == expected
