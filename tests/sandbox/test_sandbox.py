"""Properties of the bubblewrap sandbox, each checked by a real probe process in the real bwrap."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.model.limits import MiB
from scanner.sandbox.bubblewrap import BubblewrapRunner
from scanner.sandbox.runner import JobLimits

LIMITS = JobLimits(wall_seconds=20)


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    root = tmp_path / "layout"
    root.mkdir()
    (root / "index.json").write_text("{}")
    return root


@pytest.fixture
def tcp_server() -> Iterator[tuple[int, list[bytes]]]:
    """A listener on the host's 127.0.0.1 recording whatever reaches it."""
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                received.append(conn.recv(100) or b"connected")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


def out(result: Any) -> str:
    assert result.exit_code == 0, result.stderr.decode()
    return str(result.stdout.decode())


def _wait_until(what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    """Polls `check` until it holds; `timeout` bounds the wait against a hang and is no speed requirement."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.05)


def test_network_is_unreachable(probe: Any, layout: Path, tcp_server: tuple[int, list[bytes]]) -> None:
    port, received = tcp_server
    verdict = out(probe("connect", "127.0.0.1", str(port)).run(layout, LIMITS))
    assert verdict.startswith("blocked"), verdict
    # The listener takes connections in the order they arrived: once a connection made now from the host has
    # been received, one the probe had made would have been received before it.
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"from the host")
    _wait_until("the host's connection received", lambda: b"from the host" in received)
    assert received == [b"from the host"]


def test_secrets_in_parent_environment_are_absent(probe: Any, layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACRGUARD_REGISTRY_PASSWORD", "secret")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "secret")
    env = out(probe("env").run(layout, LIMITS))
    assert "secret" not in env
    names = {line.split("=", 1)[0] for line in env.splitlines()}
    assert names <= {"PATH", "LANG", "TMPDIR", "HOME", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PWD"}


def test_input_is_read_only(probe: Any, layout: Path) -> None:
    assert out(probe("write", "/input/index.json").run(layout, LIMITS)).startswith("denied")
    assert out(probe("write", "/input/new").run(layout, LIMITS)).startswith("denied")
    assert (layout / "index.json").read_text() == "{}"


@pytest.mark.parametrize("path", ["/etc/acrguard-probe", "/usr/acrguard-probe", "/acrguard-probe"])
def test_writing_outside_tmp_fails(probe: Any, layout: Path, path: str) -> None:
    assert out(probe("write", path).run(layout, LIMITS)).startswith("denied")


def test_writing_inside_tmp_works(probe: Any, layout: Path) -> None:
    assert out(probe("write", "/tmp/scratch").run(layout, LIMITS)) == "written\n"


def test_uid_is_not_root_and_no_capabilities_or_seccomp_missing(probe: Any, layout: Path) -> None:
    assert out(probe("uid").run(layout, LIMITS)).split() == ["65534", "65534", "65534"]
    status = dict(line.split(":", 1) for line in out(probe("status").run(layout, LIMITS)).splitlines() if ":" in line)
    assert status["CapEff"].strip() == "0000000000000000"
    assert status["CapBnd"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"  # a filter is loaded


def test_memory_hog_is_stopped_by_the_memory_limit(probe: Any, layout: Path) -> None:
    limits = JobLimits(memory_bytes=256 * MiB, wall_seconds=20)
    result = probe("memory", "1024").run(layout, limits)
    assert result.exit_code != 0
    assert result.killed_by == "memory", result.stderr.decode()
    assert b"allocated" not in result.stdout


def test_memory_within_the_limit_is_fine(probe: Any, layout: Path) -> None:
    assert out(probe("memory", "32").run(layout, JobLimits(memory_bytes=512 * MiB, wall_seconds=20))) == "allocated\n"


def _alive(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline and b"bwrap" not in cmdline.split(b"\0")[0]:
                found.append(int(pid))
    return found


@pytest.mark.parametrize("mode", ["sleep", "fork-sleep"])
def test_sleeper_is_killed_by_the_wall_time_limit(probe: Any, layout: Path, mode: str) -> None:
    marker = "987.654"  # an unusual sleep length identifies the probe's processes in /proc
    outcome: list[Any] = []
    # The probe sleeps 987 s: it returns soon only if the 2 s limit stops it. A thread lets the test fail
    # with that said instead of sleeping it out.
    running = threading.Thread(
        target=lambda: outcome.append(probe(mode, marker).run(layout, JobLimits(wall_seconds=2))), daemon=True
    )
    running.start()
    _wait_until("the run ended by the wall-time limit", lambda: not running.is_alive())
    (result,) = outcome
    assert result.killed_by == "wall-time"
    assert b"woke" not in result.stdout
    _wait_until("every sandboxed process gone after the wall-time kill", lambda: _alive(marker) == [])


def test_cpu_time_limit(layout: Path, bwrap: str) -> None:
    runner = BubblewrapRunner([sys.executable, "-I", "-c", "while True: pass"], bwrap=bwrap)
    result = runner.run(layout, JobLimits(cpu_seconds=1, wall_seconds=20))
    assert result.killed_by == "cpu-time"
