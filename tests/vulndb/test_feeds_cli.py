"""`acrguard db import|info`: output, warnings on stderr, one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vulndb.feedtools import LINTER, PYPA, SECDB, run_cli


def test_import_then_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "v.sqlite")
    assert run_cli(["db", "import", str(PYPA), str(SECDB / "v3.11" / "main.yaml"), "--db", db]) == 0
    captured = capsys.readouterr()
    assert f"{PYPA.resolve()}: 15 records, 1 skipped" in captured.out
    assert "main.yaml: 1,109 records, 14 skipped" in captured.out
    assert f"database: {db}" in captured.out
    warnings = captured.err.splitlines()
    assert all(line.startswith("acrguard: warning: ") for line in warnings)
    assert any("PYSEC-2021-371" in line for line in warnings)

    assert run_cli(["db", "info", "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == ["SOURCE", "IMPORTED", "AT", "FEED", "DATE", "RECORDS", "SKIPPED", "KIND"]
    assert "total: 1,124 records (1 withdrawn) from 2 sources" in out


def test_import_uses_acrguard_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACRGUARD_DB", str(tmp_path / "env.sqlite"))
    assert run_cli(["db", "import", str(LINTER)]) == 0
    assert (tmp_path / "env.sqlite").is_file()


def test_info_without_a_database_describes_the_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["db", "info"]) == 0
    out = capsys.readouterr().out
    assert "osv-snapshot-" in out.splitlines()[0]
    assert "snapshot:alpine-secdb" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["db", "info", "--db", "{tmp}/missing.sqlite"], "acrguard db update"),
        (["db", "import", "{tmp}/nowhere", "--db", "{tmp}/v.sqlite"], "no such file"),
        (["db", "import", "{junk}", "--db", "{tmp}/v.sqlite"], "not a readable zip"),
        (["db", "import", "{linter}", "--db", "{junk}"], "not a vulnerability database"),
    ],
)
def test_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 but nothing else")
    args = [a.format(tmp=tmp_path, junk=junk, linter=LINTER) for a in argv]
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("acrguard: ") and fragment in err
