"""`acrguard db info`: sources with their feed dates and selections, ecosystems and releases with their record
counts, stale feeds warned about (stderr, one line each, and in the JSON), `db import --selection`."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from scanner.cli.db import stale_feeds
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.snapshot import build_snapshot_db
from tests.vulndb.feedtools import GOLANG, PYPA, run_cli

WARNING = "acrguard: warning: feed "


@pytest.fixture(scope="module")
def snapshot_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snapshot") / "snapshot.sqlite"
    build_snapshot_db(path)
    return path


def _days_since(date: str) -> int:
    return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(date)).days


@pytest.fixture
def only_alpine_is_stale(monkeypatch: pytest.MonkeyPatch) -> int:
    """A maximum age between the snapshot's Alpine secdb (2020-06-08) and its PyPI selection (2024-10-10)."""
    days = _days_since("2024-01-01T00:00:00+00:00")
    monkeypatch.setenv("ACRGUARD_FEED_MAX_AGE_DAYS", str(days))
    return days


def test_text_lists_sources_ecosystems_and_warns_about_the_stale_feed(
    snapshot_db: Path, only_alpine_is_stale: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["db", "info", "--db", str(snapshot_db)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[1].split() == ["SOURCE", "IMPORTED", "AT", "FEED", "DATE", "RECORDS", "SKIPPED", "KIND"]
    rows = {
        line.split()[0]: line
        for line in lines
        if line.startswith(("snapshot:", "Alpine", "PyPI", "Go", "Alma", "Debian", "Ubuntu"))
    }
    assert rows["snapshot:alpine-secdb"].split()[2:] == ["2020-06-08T13:44:53Z", "1,950", "28", "directory"]
    assert rows["snapshot:pypa-advisory-database"].endswith("directory (selection of its feed)")
    # NVD's records, dated by their newest lastModified (CVE-2019-1563's).
    assert rows["snapshot:nvd"].split()[2:] == [
        "2026-06-17T02:28:45Z",
        "4",
        "0",
        "directory",
        "(selection",
        "of",
        "its",
        "feed)",
    ]
    assert rows["Alpine:v3.10"].split() == ["Alpine:v3.10", "1,721", "2020-06-08T13:44:53Z", "snapshot:alpine-secdb"]
    assert rows["Alpine:v3.11"].split()[1] == "1,902"
    assert rows["AlmaLinux:9"].split() == [
        "AlmaLinux:9",
        "34",
        "2026-08-21T15:39:17Z",
        "snapshot:almalinux-osv",
        "(selection)",
    ]
    assert "Alpine:v3.12" not in rows
    assert rows["Debian:12"].split() == [
        "Debian:12",
        "91",
        "2026-04-27T20:14:33Z",
        "snapshot:debian-osv",
        "(selection)",
    ]
    assert lines[-1] == "total: 2,186 records (0 withdrawn) from 7 sources"  # 4 of them NVD's (snapshot:nvd)
    [warning] = captured.err.splitlines()
    assert warning.startswith(f"{WARNING}snapshot:alpine-secdb is dated 2020-06-08T13:44:53Z, ")
    assert f"over ACRGUARD_FEED_MAX_AGE_DAYS={only_alpine_is_stale}" in warning
    assert warning.endswith("run `acrguard db update`")


def test_json(snapshot_db: Path, only_alpine_is_stale: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["db", "info", "--db", str(snapshot_db), "--format", "json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["feed_max_age_days"] == only_alpine_is_stale
    [stale] = document["stale_feeds"]
    assert stale["source"] == "snapshot:alpine-secdb" and stale["feed_date"] == "2020-06-08T13:44:53Z"
    assert stale["age_days"] == _days_since("2020-06-08T13:44:53+00:00")
    assert len(captured.err.splitlines()) == 1  # the warning is on stderr too
    ecosystems = {e["ecosystem"]: e for e in document["ecosystems"]}
    assert sorted(e for e in ecosystems if not e.startswith("Ubuntu:")) == [
        "AlmaLinux:9",
        "Alpine:v3.10",
        "Alpine:v3.11",
        "Debian:12",
        "Go",
        "PyPI",
    ]
    assert ecosystems["Ubuntu:22.04:LTS"]["records"] == 13
    assert ecosystems["PyPI"] == {
        "ecosystem": "PyPI",
        "base": "PyPI",
        "records": 47,
        "sources": ["snapshot:pypa-advisory-database"],
        "feed_date": "2024-10-10T17:35:05Z",
        "selection": True,
    }
    assert ecosystems["Alpine:v3.10"]["selection"] is False
    sources = {s["name"]: s for s in document["sources"]}
    assert sources["snapshot:golang-vulndb"]["selection"] is True
    assert sources["snapshot:golang-vulndb"]["feed_date"] == "2026-08-21T20:38:00Z"


def test_zero_max_age_never_warns(
    snapshot_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACRGUARD_FEED_MAX_AGE_DAYS", "0")
    assert run_cli(["db", "info", "--db", str(snapshot_db), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["stale_feeds"] == []


def test_default_max_age_warns_about_every_old_feed(
    snapshot_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACRGUARD_FEED_MAX_AGE_DAYS", raising=False)
    assert run_cli(["db", "info", "--db", str(snapshot_db)]) == 0
    warned = [line.split()[3] for line in capsys.readouterr().err.splitlines()]
    # Every snapshot feed is dated at its upstream commit, all of them more than 7 days ago.
    assert warned == [
        "snapshot:almalinux-osv",
        "snapshot:alpine-secdb",
        "snapshot:debian-osv",
        "snapshot:golang-vulndb",
        "snapshot:nvd",
        "snapshot:pypa-advisory-database",
        "snapshot:ubuntu-osv",
    ]


def test_a_bad_max_age_is_one_line(
    snapshot_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACRGUARD_FEED_MAX_AGE_DAYS", "a week")
    assert run_cli(["db", "info", "--db", str(snapshot_db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ACRGUARD_FEED_MAX_AGE_DAYS" in err


def test_stale_feeds_rule() -> None:
    now = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
    sources = [
        {"name": "old", "feed_date": "2026-11-26T11:59:59Z"},  # 8 days and a second
        {"name": "edge", "feed_date": "2026-11-27T12:00:00Z"},  # exactly 7 days: not over
        {"name": "new", "feed_date": "2026-12-04T00:00:00Z"},
        {"name": "undated", "feed_date": ""},
    ]
    assert stale_feeds(sources, 7, now) == [{"source": "old", "feed_date": "2026-11-26T11:59:59Z", "age_days": 8}]
    assert stale_feeds(sources, 0, now) == []


def test_import_selection_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "v.sqlite")
    assert run_cli(["db", "import", "--selection", str(PYPA), "--db", db]) == 0
    assert run_cli(["db", "import", str(GOLANG), "--db", db]) == 0
    capsys.readouterr()
    assert run_cli(["db", "info", "--db", db, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    selection = {s["name"]: s["selection"] for s in document["sources"]}
    assert selection == {str(PYPA.resolve()): True, str(GOLANG.resolve()): False}
    assert {e["ecosystem"]: e["selection"] for e in document["ecosystems"]} == {"PyPI": True, "Go": False}


def test_an_old_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.sqlite"
    import_sources(path, [str(GOLANG)])
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 1")
    assert run_cli(["db", "info", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "format 1" in err and "run `acrguard db update` to rebuild it" in err


def test_a_hostile_ecosystem_string_is_shown_safely(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.vulndb.feedtools import load_record

    record = load_record(GOLANG / "osv" / "GO-2022-0617.json")  # a real entry, its ecosystem rewritten
    record.pop("withdrawn", None)
    for entry in record["affected"]:
        entry["package"]["ecosystem"] = "Go:\x1b[2J" + "x" * 500
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "GO-2022-0617.json").write_text(json.dumps(record))
    db = str(tmp_path / "v.sqlite")
    assert run_cli(["db", "import", str(feed), "--db", db]) == 0
    capsys.readouterr()
    assert run_cli(["db", "info", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert max(len(line) for line in out.splitlines()) < 250
    assert "Go:?[2Jxxx" in out
