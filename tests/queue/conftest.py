"""Every queue test runs against the SQLite queue and a real Azurite (started once per session).

Azurite comes from `scripts/install-azurite.sh` (.cache/azurite; started by `tests/queue/azurite_server.py`,
shared with other suites); without it the Azure half fails with the install hint instead of being skipped,
so a green run always means both backends were exercised.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.queue import ScanQueue, open_queue
from tests.queue.azurite_server import AZURITE, DEV_ACCOUNT, DEV_KEY, INSTALL_HINT, running_azurite
from tests.queue.support import OpenQueue

__all__ = ["AZURITE", "DEV_ACCOUNT", "DEV_KEY", "INSTALL_HINT"]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a fresh Azurite queue service, stopped at the end of the session."""
    with running_azurite(tmp_path_factory.mktemp("azurite")) as connection_string:
        yield connection_string


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
