"""README command 1 installs only what the demo runs: the registry, skopeo and bubblewrap (not the test suite's
PostgreSQL, JRE, nodejs, mmdebstrap or umoci)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_the_demo_installs_only_its_three_packages() -> None:
    listed = _run("scripts/install-demo-deps.sh", "--list")
    assert listed.returncode == 0 and listed.stdout.split() == ["docker-registry", "skopeo", "bubblewrap"]
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert "scripts/install-demo-deps.sh" in demo and "install-system-deps" not in demo


def test_with_everything_present_it_installs_nothing() -> None:
    done = _run("scripts/install-demo-deps.sh")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
