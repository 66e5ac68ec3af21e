"""The Alpine 3.10 sample image of `samples/` and a database of the real Alpine secdb advisories it is
matched against, for tests that need a real inventory with real findings."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from scanner.inventory.build import ScanOptions, inventory
from scanner.model.types import Inventory
from scanner.vulndb.osv_import import import_sources

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = f"docker-archive:{ROOT / 'samples' / 'alpine-3.10-app.tar'}"


@cache
def sample_inventory() -> Inventory:
    (only,) = inventory(SAMPLE, ScanOptions())
    return only


def secdb_database(path: Path) -> Path:
    """The Alpine 3.10 secdb advisories of the fixtures imported into `path`."""
    import_sources(path, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    return path
