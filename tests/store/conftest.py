"""Every store test runs against SQLite (a temp file) and a real PostgreSQL started here from Debian's
packages (`tests/store/pg_server.py`, shared with other suites)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.assess.findings import find_vulnerabilities
from scanner.inventory.build import inventory
from scanner.model.types import Finding, Inventory
from scanner.store import FindingsStore, open_store
from scanner.vulndb.location import open_scan_database
from scanner.vulndb.osv_import import import_sources
from tests.store.pg_server import INSTALL_HINT, PgServer, running_postgres

__all__ = ["INSTALL_HINT", "PgServer"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.fresh_url()


@pytest.fixture
def store(store_url: str) -> Iterator[FindingsStore]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture(scope="session")
def alpine_image() -> tuple[Inventory, list[Finding]]:
    """A real inventory (Alpine 3.10 image) and its real findings against the Alpine secdb."""
    inv = inventory(f"docker-archive:{FIXTURES / 'images/fanal/image3_gz_layers.tar'}")[0]
    path = Path(tempfile.mkdtemp(prefix="acrguard-osv-")) / "alpine.sqlite"
    try:
        import_sources(path, [str(FIXTURES / "osv/alpine-secdb/v3.10")])
        findings = find_vulnerabilities(inv.packages, open_scan_database(str(path)))
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
    assert findings, "the fixture image must have findings"
    return inv, findings
