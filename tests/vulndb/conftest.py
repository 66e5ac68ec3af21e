"""Fixtures of the feeds tests: a local HTTP feed server, and a home directory of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.vulndb.snapshot import default_db_path
from tests.vulndb.feedtools import FeedServer, running_feed_server


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with running_feed_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real ~/.cache/acrguard, $ACRGUARD_DB or $ACRGUARD_OSV_BASE_URL."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ACRGUARD_DB", raising=False)
    monkeypatch.delenv("ACRGUARD_OSV_BASE_URL", raising=False)
    default_db_path.cache_clear()  # the snapshot database is remembered per process, i.e. per home
    return home
