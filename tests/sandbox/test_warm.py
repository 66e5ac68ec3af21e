"""Warm children in the real bubblewrap: the next scan's child waits, started and imported, over an empty inbox
of its own; it answers exactly as a child started for the job, and serves one job only."""

from __future__ import annotations

import json
from pathlib import Path

from scanner.inventory.build import ScanOptions
from scanner.model.codec import inventory_to_dict
from scanner.sandbox.bubblewrap import BubblewrapRunner
from scanner.sandbox.job import scan_job_inventory
from scanner.sandbox.runner import JobLimits
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
