"""Real adapters for the service tests: a SQLite findings store, a SQLite queue, a vulnerability database
imported from the Alpine secdb fixture, and the inventory of a real docker-save archive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_support import CountingFetch

from scanner.inventory.build import inventory
from scanner.model.types import Inventory
from scanner.queue import ScanQueue, open_queue
from scanner.store import FindingsStore, open_store
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ARCHIVE = f"docker-archive:{FIXTURES / 'images/fanal/image3_gz_layers.tar'}"


@pytest.fixture(scope="session")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vulndb") / "vulndb.sqlite"
    import_sources(path, [str(FIXTURES / "osv/alpine-secdb/v3.10")])
    return path


@pytest.fixture
def db(db_path: Path) -> Iterator[SqliteVulnDatabase]:
    with SqliteVulnDatabase.open(db_path) as opened:
        yield opened


@pytest.fixture(scope="session")
def archive_inventory() -> Inventory:
    return inventory(ARCHIVE)[0]


@pytest.fixture
def fetch(archive_inventory: Inventory) -> CountingFetch:
    return CountingFetch(archive_inventory)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FindingsStore]:
    with open_store(tmp_path / "store.sqlite") as opened:
        yield opened


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[ScanQueue]:
    with open_queue(tmp_path / "queue.sqlite", max_attempts=2) as opened:
        yield opened
