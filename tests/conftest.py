"""What tests in every folder share: the `acrguard` command run in process, with its exit code and output;
the Alpine 3.10 sample with a database of its real advisories."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.cli.main import main
from scanner.model.types import Inventory
from tests.alpine310 import sample_inventory, secdb_database


@pytest.fixture(scope="session", autouse=True)
def _own_prefix_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The services tests build in process keep their layer-prefix states in this run's own directory, never
    in the user's cache: a state left by an earlier run would change what a scan does."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACRGUARD_PREFIX_CACHE_DIR", str(tmp_path_factory.mktemp("layer-prefixes")))
        yield


class Run:
    """One `acrguard` run: exit code, stdout and stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def acrguard(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def alpine310_sample() -> Inventory:
    """The Alpine 3.10 sample image's inventory (`tests.alpine310`)."""
    return sample_inventory()


@pytest.fixture(scope="session")
def alpine310_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of the real Alpine 3.10 secdb advisories the sample is matched against."""
    return secdb_database(tmp_path_factory.mktemp("alpine310") / "vulndb.sqlite")
