from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def npm_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The npm advisories of the lockfile tests (yarn, pnpm) in a database of their own."""
    path = tmp_path_factory.mktemp("db") / "npm.sqlite"
    import_sources(path, [str(FIXTURES / "node-lockfiles" / "advisories")])
    return path


# Hostile input (test_hostile.py, test_docker_archive_links.py): where an escape would land.
ESCAPE_TARGETS = ["/tmp/evil.txt", "/tmp/poc.txt", "/secret.txt", "/escape", "/trampoline"]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty working directory with the temp dir pointed at a scratch area."""
    scratch, cwd = tmp_path / "scratch", tmp_path / "cwd"
    scratch.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for target in ESCAPE_TARGETS:
        assert not os.path.lexists(target), f"{target} exists before the test"
    return tmp_path


def assert_nothing_escaped(sandbox: Path) -> None:
    for target in ESCAPE_TARGETS:
        assert not os.path.lexists(target), f"{target} was created"
    assert list((sandbox / "cwd").iterdir()) == []
    assert list((sandbox / "scratch").iterdir()) == []  # scratch is cleaned up too


def one_line_error(run: Any) -> str:
    assert run.code == 2, run.out
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("acrguard: ") and "Traceback" not in run.err
    return lines[0]
