"""A real Azurite queue service for tests: the queue suite's, importable by other suites (`tests/localhost` runs
`acrguard serve --queue <connection string>` on it). Azurite comes from `scripts/install-azurite.sh`
(.cache/azurite); without it the test fails with the install hint instead of being skipped."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.queue.support import REPO

AZURITE = REPO / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-queue"
INSTALL_HINT = "run `bash scripts/install-azurite.sh` (needs node and npm: apt-get install nodejs npm)"
# Azurite's well-known development account (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_azurite(workspace: Path) -> Iterator[str]:
    """A connection string to a fresh Azurite queue service keeping its data in `workspace`; stopped after."""
    if shutil.which("node") is None:
        pytest.fail(f"node is not installed: {INSTALL_HINT}")
    if not AZURITE.exists():
        pytest.fail(f"Azurite is not installed in {AZURITE.parent.parent.parent}: {INSTALL_HINT}")
    port = _free_port()
    command = [
        str(AZURITE),
        "--queueHost", "127.0.0.1",
        "--queuePort", str(port),
        "--location", str(workspace),
        "--disableTelemetry",
        "--skipApiVersionCheck",  # the SDK may be newer than the emulator
        "--silent",
    ]  # fmt: skip
    log = (workspace / "azurite.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not _listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = (workspace / "azurite.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"Azurite did not start on port {port}: {output}")
        time.sleep(0.05)
    try:
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"QueueEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
        )
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
