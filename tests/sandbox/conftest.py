"""Sandbox and job tests run real processes in the real bubblewrap; a missing bwrap fails, never skips."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.sandbox.bubblewrap import INSTALL_HINT, BubblewrapRunner

HERE = Path(__file__).resolve().parent
PROBE = HERE / "probe.py"


@pytest.fixture(scope="session")
def bwrap() -> str:
    found = shutil.which("bwrap")
    if found is None:
        pytest.fail(f"bwrap is not installed: {INSTALL_HINT}", pytrace=False)
    return found


ProbeFactory = Callable[..., BubblewrapRunner]


@pytest.fixture
def probe(bwrap: str) -> ProbeFactory:
    """A runner that executes tests/sandbox/probe.py MODE ARGS... in the real sandbox instead of the scanner."""

    def make(*argv: str) -> BubblewrapRunner:
        return BubblewrapRunner([sys.executable, "-I", str(PROBE), *argv], extra_ro_binds=[HERE], bwrap=bwrap)

    return make
