"""The function app's database client follows `db update`: updates replace the file by rename, and a
connection opened before would keep reading the old file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.service.config import Clients
from scanner.vulndb.osv_import import import_sources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "osv" / "alpine-secdb"


@pytest.fixture()
def clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    monkeypatch.setenv("ACRGUARD_DB", str(tmp_path / "vuln.sqlite"))
    made = Clients()
    yield made
    made.close()


def _records(path: Path, source: str) -> None:
    import_sources(path, [str(FIXTURES / source)])


def test_db_client_is_reused_until_the_file_is_replaced(tmp_path: Path, clients: Clients) -> None:
    live = tmp_path / "vuln.sqlite"
    _records(live, "v3.10")
    first = clients.db()
    assert clients.db() is first  # not reopened per call
    assert len(first.describe()["sources"]) == 1

    # What `db update` does: build a new file aside and rename it over the live one.
    fresh = tmp_path / "next.sqlite"
    _records(fresh, "v3.10")
    _records(fresh, "v3.11")
    os.replace(fresh, live)

    second = clients.db()
    assert second is not first
    assert len(second.describe()["sources"]) == 2, "the replaced database is the one read"
    assert clients.db() is second
