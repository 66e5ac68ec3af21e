"""Every queue test runs against the SQLite queue and a real Azurite (started once per session).

Azurite comes from `scripts/install-azurite.sh` (.cache/azurite); without it the Azure half fails with
the install hint instead of being skipped, so a green run always means both backends were exercised.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.queue import ScanQueue, open_queue
from tests.queue.support import REPO, OpenQueue

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


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a fresh Azurite queue service, stopped at the end of the session."""
    if shutil.which("node") is None:
        pytest.fail(f"node is not installed: {INSTALL_HINT}")
    if not AZURITE.exists():
        pytest.fail(f"Azurite is not installed in {AZURITE.parent.parent.parent}: {INSTALL_HINT}")
    port = _free_port()
    workspace = tmp_path_factory.mktemp("azurite")
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


@pytest.fixture(params=["sqlite", "azurite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def location(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the queue lives: a SQLite URL, or Azurite's connection string."""
    if backend == "sqlite":
        return f"sqlite://{tmp_path / 'queue.db'}"
    return str(request.getfixturevalue("azurite"))


@pytest.fixture
def queue_name() -> str:
    # A fresh queue per test keeps tests independent on the shared Azurite.
    return f"t-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def open_q(location: str, queue_name: str) -> Iterator[OpenQueue]:
    """Opens another handle on the test's queue (another producer or consumer)."""
    opened: list[ScanQueue] = []

    def open_(max_attempts: int = 5) -> ScanQueue:
        queue = open_queue(location, queue_name, max_attempts=max_attempts)
        opened.append(queue)
        return queue

    yield open_
    for queue in opened:
        queue.close()


@pytest.fixture
def queue(open_q: OpenQueue) -> ScanQueue:
    return open_q()
