"""`db update` against a local server (127.0.0.1 only) serving zips built from real records: conditional
requests, and an all-or-nothing replacement that a failing feed never half-writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from scanner.model.settings import Settings
from scanner.vulndb.errors import FeedError
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from scanner.vulndb.update import DEFAULT_ECOSYSTEMS, feed_url, update
from tests.vulndb.feedtools import ALMA, GOLANG, PYPA, FeedServer, records_in, run_cli, zip_of

ECOSYSTEMS = ["PyPI", "Go", "AlmaLinux"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def publish_all(server: FeedServer) -> None:
    server.publish("PyPI", zip_of(records_in(PYPA)))
    server.publish("Go", zip_of(records_in(GOLANG)))
    server.publish("AlmaLinux", zip_of(records_in(ALMA)))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_default_ecosystems_and_urls() -> None:
    assert len(DEFAULT_ECOSYSTEMS) == 19  # Mariner is Azure Linux:2 in OSV, not an archive of its own
    assert feed_url("https://h", "Rocky Linux") == "https://h/Rocky%20Linux/all.zip"
    assert feed_url("https://h", "crates.io") == "https://h/crates.io/all.zip"


def test_first_update_imports_second_sends_validators_and_imports_nothing(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    publish_all(feed_server)
    db_path = tmp_path / "v.sqlite"
    report = update(db_path, ECOSYSTEMS, base=feed_server.url)
    assert report.replaced
    assert [(o.ecosystem, o.result.records if o.result else None) for o in report.outcomes] == [
        ("PyPI", 15),
        ("Go", 9),
        ("AlmaLinux", 6),
    ]
    assert all("If-None-Match" not in h for _, h in feed_server.requests)
    with SqliteVulnDatabase.open(db_path) as db:
        sources = {s["name"]: s for s in db.describe()["sources"]}
        assert sorted(sources) == ["osv:AlmaLinux", "osv:Go", "osv:PyPI"]
        assert sources["osv:PyPI"]["skipped_count"] == 1
        assert len(db.lookup("PyPI", "requests")) == 5
    before, inode = digest(db_path), db_path.stat().st_ino

    feed_server.requests.clear()
    report = update(db_path, ECOSYSTEMS, base=feed_server.url)
    assert not report.replaced
    assert [o.result for o in report.outcomes] == [None, None, None]
    for ecosystem in ECOSYSTEMS:
        [headers] = feed_server.headers_of(f"/{ecosystem}/")
        assert headers["If-None-Match"] == feed_server.feeds[f"/{ecosystem}/all.zip"].etag
        assert headers["If-Modified-Since"] == feed_server.feeds[f"/{ecosystem}/all.zip"].last_modified
    assert (digest(db_path), db_path.stat().st_ino) == (before, inode)  # not even rewritten
    assert leftovers(tmp_path) == []


def test_a_changed_feed_is_reimported(tmp_path: Path, feed_server: FeedServer) -> None:
    publish_all(feed_server)
    db_path = tmp_path / "v.sqlite"
    update(db_path, ECOSYSTEMS, base=feed_server.url)
    records = records_in(GOLANG)
    changed: dict[str, Any] = next(r for r in records if r["id"] == "GO-2026-5028")
    changed.update(modified="2099-01-01T00:00:00Z", summary="re-published")
    records = [r for r in records if r["id"] != "GO-2026-6218"]  # and one record dropped from the feed
    feed_server.publish("Go", zip_of(records))
    report = update(db_path, ECOSYSTEMS, base=feed_server.url)
    assert report.replaced
    [go] = [o for o in report.outcomes if o.result is not None]
    assert go.ecosystem == "Go"
    assert go.result is not None and (go.result.records, go.result.removed) == (8, 1)
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.by_id("GO-2026-5028")[0]["summary"] == "re-published"
        assert db.by_id("GO-2026-6218") == []
        assert len(db.lookup("PyPI", "requests")) == 5  # untouched feeds stay


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("error", "HTTP 503"),
        ("truncate", "truncated|interrupted"),  # the server closes the connection mid-download
        ("corrupt", "zip"),  # complete download, damaged archive
    ],
)
def test_a_failing_feed_leaves_the_database_intact(
    tmp_path: Path, feed_server: FeedServer, mode: str, message: str
) -> None:
    publish_all(feed_server)
    db_path = tmp_path / "v.sqlite"
    update(db_path, ECOSYSTEMS, base=feed_server.url)
    before = digest(db_path)
    # PyPI changes (and would import fine), then Go fails: nothing of either may reach the database.
    feed_server.publish("PyPI", zip_of(records_in(PYPA)[:3]))
    feed_server.publish("Go", zip_of(records_in(GOLANG)[1:]), mode=mode)
    with pytest.raises(FeedError, match=message):
        update(db_path, ECOSYSTEMS, base=feed_server.url)
    assert digest(db_path) == before
    assert leftovers(tmp_path) == []  # neither the copy aside nor the partial download
    with SqliteVulnDatabase.open(db_path) as db:  # and usable
        assert len(db.lookup("PyPI", "requests")) == 5
        assert len(db.lookup("Go", "stdlib")) == 5


def test_an_empty_archive_does_not_wipe_an_ecosystem(tmp_path: Path, feed_server: FeedServer) -> None:
    publish_all(feed_server)
    db_path = tmp_path / "v.sqlite"
    update(db_path, ECOSYSTEMS, base=feed_server.url)
    feed_server.publish("Go", zip_of([]))
    with pytest.raises(FeedError, match="no records"):
        update(db_path, ECOSYSTEMS, base=feed_server.url)


def test_base_url_from_the_environment(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_server.publish("Rocky Linux", zip_of(records_in(ALMA)))
    monkeypatch.setenv("ACRGUARD_OSV_BASE_URL", feed_server.url + "/")
    report = update(tmp_path / "v.sqlite", ["Rocky Linux"], base=Settings.from_environ().osv_base_url)
    assert report.outcomes[0].url == f"{feed_server.url}/Rocky%20Linux/all.zip"
    assert feed_server.requests[0][0] == "/Rocky%20Linux/all.zip"


def test_cli_update_and_failure_exit_code(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_all(feed_server)
    db = str(tmp_path / "v.sqlite")
    argv = ["db", "update", "--db", db, "--base-url", feed_server.url, "--ecosystem", "PyPI", "Go"]
    assert run_cli(argv) == 0
    out = capsys.readouterr().out
    assert "osv:PyPI: 15 records, 1 skipped" in out and "osv:Go: 9 records" in out and "(updated)" in out
    assert run_cli(argv) == 0
    assert "osv:PyPI: unchanged" in capsys.readouterr().out

    feed_server.publish("Go", zip_of(records_in(GOLANG)), mode="truncate")
    feed_server.publish("PyPI", b"")  # forces PyPI to be fetched again, before Go fails
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("acrguard: ")
    with SqliteVulnDatabase.open(db) as opened:
        assert len(opened.lookup("PyPI", "requests")) == 5


def test_cli_update_unreachable_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Port 9 (discard) on the loopback: nothing listens; the error is one line.
    argv = ["db", "update", "--db", str(tmp_path / "v.sqlite"), "--base-url", "http://127.0.0.1:9", "--ecosystem", "Go"]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect" in err
    assert not (tmp_path / "v.sqlite").exists()


def test_update_records_validators_per_source(tmp_path: Path, feed_server: FeedServer) -> None:
    feed = feed_server.publish("Go", zip_of(records_in(GOLANG)))
    db_path = tmp_path / "v.sqlite"
    update(db_path, ["Go"], base=feed_server.url)
    import sqlite3

    conn = sqlite3.connect(db_path)
    row = conn.execute("SELECT kind, location, etag, last_modified FROM sources WHERE name = 'osv:Go'").fetchone()
    conn.close()
    assert row == ("osv-archive", f"{feed_server.url}/Go/all.zip", feed.etag, feed.last_modified)
    assert json.loads(json.dumps(row))  # plain strings
