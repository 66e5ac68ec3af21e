"""Warm children in the real bubblewrap: the next scan's child waits, started and imported, over an empty inbox
of its own; it answers exactly as a child started for the job, and serves one job only."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest

from scanner.inventory import prefix_state
from scanner.inventory.build import ScanOptions, Segment, inventory_or_state
from scanner.inventory.prefix_cache import LayerPrefixCache, PrefixStore
from scanner.model.codec import inventory_to_dict
from scanner.sandbox import child
from scanner.sandbox.bubblewrap import BubblewrapRunner
from scanner.sandbox.job import scan_job_inventory
from scanner.sandbox.runner import JobLimits
from scanner.sandbox.segment import PRELOAD_FILE, write_segment
from tests import ocibuild


def _image(root: Path, n: int) -> str:
    entries = [
        ocibuild.Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
        ocibuild.Entry("var/lib/dpkg/status", b"Package: p%d\nStatus: install ok installed\nVersion: 1\n\n" % n),
    ]
    ocibuild.write_layout(root, [ocibuild.Image([ocibuild.Layer(ocibuild.layer_tar(entries))])])
    return f"oci:{root}"


def _scan(ref: str, runner: BubblewrapRunner, limits: JobLimits | None = None) -> str:
    found = scan_job_inventory(ref, ScanOptions(), runner, limits or JobLimits())
    return json.dumps(inventory_to_dict(found), sort_keys=True)


def test_a_warm_child_answers_as_a_cold_one_and_serves_once(tmp_path: Path, bwrap: str) -> None:
    cold = BubblewrapRunner(bwrap=bwrap)
    warm = BubblewrapRunner(bwrap=bwrap, warm=True)
    assert warm.warm is not None
    try:
        refs = [_image(tmp_path / f"image-{n}", n) for n in range(3)]
        first = warm.warm._ready
        assert first is None  # nothing started before the first job
        for ref in refs:
            assert _scan(ref, warm) == _scan(ref, cold)
            waiting = warm.warm.wait_ready(60)
            assert waiting is not None and waiting.alive() and waiting is not first
            assert list(waiting.inbox.iterdir()) == []  # it sees nothing until its job arrives
            first = waiting
        # Other job limits: the waiting child is not used (it has the old ones), the answer is the same.
        limits = JobLimits(wall_seconds=120)
        assert _scan(refs[0], warm, limits) == _scan(refs[0], cold, limits)
        assert first.started.proc.poll() is not None  # discarded
        waiting = warm.warm.wait_ready(60)
    finally:
        warm.warm.close()
    assert waiting is not None and waiting.started.proc.poll() is not None and not waiting.inbox.exists()


def _stacked(root: Path, top: bytes, base: bytes = b"1") -> str:
    """Two layers: a Debian base (the same for the same `base`), then a layer of its own."""
    status = b"Package: base\nStatus: install ok installed\nVersion: " + base + b"\n\n"
    lower = [
        ocibuild.Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
        ocibuild.Entry("var/lib/dpkg/status", status),
    ]
    app = [ocibuild.Entry("usr/lib/python3/dist-packages/app-1.0.dist-info/METADATA", b"Name: app\nVersion: " + top)]
    layers = [ocibuild.Layer(ocibuild.layer_tar(lower)), ocibuild.Layer(ocibuild.layer_tar(app))]
    ocibuild.write_layout(root, [ocibuild.Image(layers)])
    return f"oci:{root}"


def _base_state(ref: str) -> bytes:
    state = inventory_or_state(ref, ScanOptions(), Segment(0, None, 1, 1 << 30))
    assert isinstance(state, bytes)
    return state


def test_a_warm_child_is_given_the_state_the_last_job_started_from(tmp_path: Path, bwrap: str) -> None:
    cold = BubblewrapRunner(bwrap=bwrap)
    warm = BubblewrapRunner(bwrap=bwrap, warm=True)
    assert warm.warm is not None
    store = PrefixStore(tmp_path / "prefixes", 1 << 30)

    def scan(ref: str, runner: BubblewrapRunner) -> str:
        prefixes = LayerPrefixCache(store, "test", ["detectors@1"])
        found = scan_job_inventory(ref, ScanOptions(), runner, JobLimits(), prefixes=prefixes)
        return json.dumps(inventory_to_dict(found), sort_keys=True)

    try:
        refs = [_stacked(tmp_path / f"image-{n}", b"1.%d\n" % n) for n in range(3)]
        for ref in refs:  # the first saves the base's state; the others start from it, as the next one will
            assert scan(ref, warm) == scan(ref, cold)
            # The first image's job runs two children (the base's state saved, then the top from it): the child
            # made after the first may be ready before the one made after the second replaces it.
            deadline = time.monotonic() + 60
            while (waiting := warm.warm.wait_ready(60)) is not None and not (waiting.inbox / PRELOAD_FILE).exists():
                assert time.monotonic() < deadline, "no warm child with the last job's state"
                time.sleep(0.05)
            assert waiting is not None and [p.name for p in waiting.inbox.iterdir()] == [PRELOAD_FILE]
            assert (waiting.inbox / PRELOAD_FILE).read_bytes() == _base_state(ref)
    finally:
        warm.warm.close()


@pytest.mark.parametrize("same", [True, False])
def test_a_preloaded_state_is_used_only_for_the_job_that_starts_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes], same: bool
) -> None:
    """The child decodes the preload while it waits and, when the job's state is that state byte for byte, does
    not decode it again; otherwise it decodes the job's own. The inventory is the same either way."""
    ref = _stacked(tmp_path / "inbox" / "layout", b"2.0\n")
    state = _base_state(ref)
    preload = state if same else _base_state(_stacked(tmp_path / "other", b"2.0\n", base=b"2"))
    assert (preload == state) is same
    (tmp_path / "inbox" / PRELOAD_FILE).write_bytes(preload)
    write_segment(tmp_path / "inbox" / "layout", Segment(1, state))
    decodes: list[int] = []
    original = prefix_state.decode

    def counted(*args: object, **kwargs: object) -> prefix_state.Decoded:
        decodes.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prefix_state, "decode", counted)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"go\n")))
    assert child.main([ref, "--wait"]) == child.EXIT_OK
    printed = capsysbinary.readouterr().out
    assert len(decodes) == (1 if same else 2)
    expected = inventory_or_state(ref, ScanOptions(), Segment(1, state))
    assert not isinstance(expected, bytes)
    assert json.loads(printed) == inventory_to_dict(expected)
