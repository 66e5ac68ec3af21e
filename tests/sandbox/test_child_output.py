"""The sandboxed child's output is the exact inventory, and the child never outlives the job process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.inventory.build import ScanOptions, inventory
from scanner.sandbox.bubblewrap import BubblewrapRunner
from scanner.sandbox.direct import DirectRunner
from scanner.sandbox.job import scan_job_inventory
from scanner.sandbox.runner import JobLimits, SandboxRunner

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ARCHIVE = f"docker-archive:{FIXTURES / 'images' / 'fanal' / 'image3_gz_layers.tar'}"
PROBE = Path(__file__).resolve().parent / "probe.py"


@pytest.mark.parametrize("runner_name", ["bubblewrap", "none"])
def test_job_inventory_is_exactly_the_local_one(bwrap: str, runner_name: str) -> None:
    runner: SandboxRunner = BubblewrapRunner(bwrap=bwrap) if runner_name == "bubblewrap" else DirectRunner()
    expected = inventory(ARCHIVE)[0]
    # The fixture's apk packages carry metadata (license, maintainer, commit) and its layers sizes and media
    # types: all of it used to be dropped on the way out of the sandbox.
    assert all(p.metadata for p in expected.packages) and all(layer.size for layer in expected.image.layers)
    assert scan_job_inventory(ARCHIVE, ScanOptions(), runner, JobLimits()) == expected


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (after the parenthesised command, which may hold spaces) is the parent pid.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def test_child_dies_with_the_job_process(tmp_path: Path) -> None:
    # A job process (here: a Python running run_limited over the probe's "sleep") killed with SIGKILL, as a
    # worker killed mid-scan would be; its child is in its own session, so only PDEATHSIG can end it.
    script = (
        "import sys; from scanner.sandbox.runner import JobLimits, minimal_env, run_limited;"
        f"run_limited([sys.executable, {str(PROBE)!r}, 'sleep', '600'], JobLimits(), env=minimal_env())"
    )
    job = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not (children := _children_of(job.pid)):
            assert job.poll() is None and time.monotonic() < deadline, "the job never started its child"
            time.sleep(0.02)
        (child,) = children
        job.kill()
        job.wait()
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child}").exists() and "Z" not in _state(child):
            assert time.monotonic() < deadline, f"child {child} outlived the killed job process"
            time.sleep(0.02)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()


def _state(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
