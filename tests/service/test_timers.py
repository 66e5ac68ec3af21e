"""The resource-log and database-update timers through the real app index (`function_app.app`), on a real
SQLite store and queue: the log timer queries a local HTTPS server that answers like Log Analytics through the
real `LogsQueryClient`; the update timer downloads from a local HTTP feed server."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

import scanner.azure.log_analytics as log_analytics
import scanner.azure.logs as logs_function
from scanner.queue import open_queue
from scanner.service.config import EVENT_DEAD_LETTER_QUEUE, clients
from scanner.store import open_store
from tests.app_index import app_functions
from tests.azure.la_server import LogServer, StaticToken, load_table, log_server
from tests.vulndb.feedtools import PYPA, Feed, records_in, running_feed_server, zip_of

REG = "myreg.azurecr.io"
D1 = "sha256:" + "a1" * 32
D2 = "sha256:" + "b2" * 32
D3 = "sha256:" + "c3" * 32
D4 = "sha256:" + "d4" * 32
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
WORKSPACE = "3f1c2a55-0d4e-4b1a-9c1e-5b7d2e8f9a10"


def handler(name: str) -> Callable[..., Any]:
    fn: Callable[..., Any] = app_functions()[name].get_user_function()
    return fn


def run(name: str) -> None:
    handler(name)(TimerRequest(past_due=False))


@pytest.fixture
def env(tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("ACRGUARD_LOG_WORKSPACE_ID", "ACRGUARD_LOG_ENDPOINT", "ACRGUARD_LOG_LOOKBACK_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACRGUARD_STORE", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("ACRGUARD_QUEUE", str(tmp_path / "queue.sqlite"))
    monkeypatch.setenv("ACRGUARD_DB", str(db_path))
    monkeypatch.setenv("ACRGUARD_REGISTRIES", REG)  # the registry the log rows name
    monkeypatch.setattr(logs_function, "_sources", {})  # a client per test: each has its own server
    clients.close()
    yield tmp_path
    clients.close()


@pytest.fixture
def workspace(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LogServer]:
    """The log timer configured for a local workspace, its rows stamped relative to now."""
    with log_server(env / "pki") as server:
        monkeypatch.setenv("ACRGUARD_LOG_WORKSPACE_ID", WORKSPACE)
        monkeypatch.setenv("ACRGUARD_LOG_ENDPOINT", server.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca))  # the client's TLS trusts the test CA
        monkeypatch.setattr(log_analytics, "default_credential", StaticToken)
        yield server


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def recent_rows() -> list[list[Any]]:
    # Columns as resource_log.QUERY projects them (see tests/azure/data/repository-events.json).
    return [
        [ago(180), "Pull", REG, "samples/nginx", "", D4, MANIFEST, "200", "old"],  # outside the lookback
        [ago(30), "Pull", REG, "samples/nginx", "1.25", D1, MANIFEST, "200", "p1"],
        [ago(25), "importImage", REG, "library/alpine", "3.19", D2, MANIFEST, "200", "i1"],
        [ago(20), "Push", REG, "app/api", "v2", D3, MANIFEST, "201", "u1"],
        [ago(15), "Pull", REG, "samples/nginx", "", D1, MANIFEST, "200", "p2"],
        [ago(14), "Pull", REG, "samples/nginx", "1.25", D1, MANIFEST, "404", "p3"],  # failed: not a pull
        [ago(10), "Pull", "", "samples/nginx", "", D1, MANIFEST, "200", "bad"],  # malformed: no LoginServer
    ]


def ledger(env: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(env / "store.sqlite") as conn:
        return sorted(conn.execute("SELECT repository, digest, source FROM pulls").fetchall())


def test_resource_log_timer_feeds_the_pipeline_and_replays_change_nothing(
    env: Path, workspace: LogServer, caplog: pytest.LogCaptureFixture
) -> None:
    workspace.table = {**load_table(), "rows": recent_rows()}
    caplog.set_level(logging.INFO, logger="scanner")
    run("resource_log")

    (request,) = workspace.requests
    assert request.path == f"/v1/workspaces/{WORKSPACE}/query"
    assert request.body["query"].startswith("ContainerRegistryRepositoryEvents\n")
    start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in request.body["timespan"].split("/"))
    assert end - start == timedelta(minutes=60)  # the default lookback: four 15-minute runs overlap
    assert abs(datetime.now(UTC) - end) < timedelta(minutes=5)

    # Two pulls of D1 in the ledger (the failed one and the one outside the window are not), and D1 is now
    # on the rescan timer's list.
    assert ledger(env) == [("samples/nginx", D1, "log-analytics")] * 2
    with open_store(env / "store.sqlite") as store:
        pulled = store.recently_pulled(datetime.now(UTC) - timedelta(days=30))
        assert [(k.registry, k.repository, k.digest) for k in pulled] == [(REG, "samples/nginx", D1)]
        imported = store.get_image(REG, D2)
        assert imported is not None

    run("resource_log")  # the next run's window overlaps: the same rows again
    assert len(workspace.requests) == 2
    assert ledger(env) == [("samples/nginx", D1, "log-analytics")] * 2

    with open_queue(env / "queue.sqlite") as queue:
        messages = queue.receive(10)
    assert sorted((m.request.digest, m.request.reason, m.request.tag) for m in messages) == [
        (D2, "import", "3.19"),
        (D3, "push", "v2"),
    ]
    # The malformed row is kept once, with its error, however many windows read it.
    with open_queue(env / "queue.sqlite", EVENT_DEAD_LETTER_QUEUE) as dead:
        assert dead.receive(5) == []  # not scan requests: receive moves them to the dead letters
        (letter,) = [json.loads(d.raw) for d in dead.dead_letters()]
    assert letter["error"] == "ContainerRegistryRepositoryEvents row 5: column 'LoginServer' is missing"
    assert json.loads(letter["event"])["CorrelationId"] == "bad"

    summaries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resource log: 6 rows")]
    assert summaries == [
        "resource log: 6 rows: 2 pulls, 2 imports/pushes (2 scans queued), 0 deletes, 0 without digest,"
        " 1 ignored, 1 malformed",
        "resource log: 6 rows: 2 pulls, 2 imports/pushes (0 scans queued), 0 deletes, 0 without digest,"
        " 1 ignored, 1 malformed",
    ]


def test_resource_log_timer_lookback_and_delete(
    env: Path, workspace: LogServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACRGUARD_LOG_LOOKBACK_MINUTES", "240")
    workspace.table = {
        **load_table(),
        "rows": [
            [ago(180), "Push", REG, "app/old", "v1", D4, MANIFEST, "201", "u0"],
            [ago(170), "Delete", REG, "app/old", "", D4, "", "202", "d0"],
        ],
    }
    run("resource_log")
    start, end = (
        datetime.fromisoformat(t.replace("Z", "+00:00")) for t in workspace.requests[0].body["timespan"].split("/")
    )
    assert end - start == timedelta(minutes=240)
    with open_store(env / "store.sqlite") as store:
        image = store.get_image(REG, D4)
    assert image is not None
    ((repository, deleted, tags),) = [(r.key.repository, r.deleted, r.tags) for r in image.repositories]
    assert (repository, deleted, tags) == ("app/old", True, ())


def test_resource_log_timer_without_workspace_does_nothing(env: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="scanner")
    run("resource_log")
    assert [r.getMessage() for r in caplog.records] == [
        "resource log: ACRGUARD_LOG_WORKSPACE_ID is not set; no pull or import records are read from Log Analytics"
    ]
    assert not (env / "store.sqlite").exists() and not (env / "queue.sqlite").exists()


def test_resource_log_timer_query_failure_is_one_line(
    env: Path, workspace: LogServer, caplog: pytest.LogCaptureFixture
) -> None:
    workspace.status = 403
    workspace.error = {
        "code": "InsufficientAccessError",
        "message": "The provided credentials have insufficient access",
    }
    run("resource_log")  # does not raise: the next window covers this one
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line == (
        f"resource log: log analytics workspace {WORKSPACE}: query failed: HTTP 403: InsufficientAccessError: "
        "The provided credentials have insufficient access"
    )
    assert ledger(env) == []


def update_lines(caplog: pytest.LogCaptureFixture, level: int = logging.NOTSET) -> list[str]:
    """The update's own log lines, without those of the rescan that follows it."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= level and r.name == "scanner.azure.dbupdate" and not r.getMessage().startswith("rescan after")
    ]


def test_db_update_timer_refreshes_the_database_the_service_reads(
    env: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with running_feed_server() as feed_server:
        own_db = env / "vulndb.sqlite"
        shutil.copyfile(db_path, own_db)  # the session's database stays as the other tests expect it
        monkeypatch.setenv("ACRGUARD_DB", str(own_db))
        monkeypatch.setenv("ACRGUARD_OSV_BASE_URL", feed_server.url)
        monkeypatch.setenv("ACRGUARD_DB_ECOSYSTEMS", "PyPI")
        # KEV and EPSS are fetched with the configured ecosystems too: exploitation follows CISA and FIRST daily.
        fixtures = Path(__file__).resolve().parents[1] / "fixtures"
        kev = (fixtures / "kev" / "known_exploited_vulnerabilities.json").read_bytes()
        epss = next((fixtures / "epss").glob("epss_scores-*.csv*")).read_bytes()
        stamp = "Mon, 25 Aug 2025 17:04:19 GMT"
        feed_server.feeds["/kev.json"] = Feed(kev, '"kev-1"', stamp)
        feed_server.feeds["/epss.csv"] = Feed(epss, '"epss-1"', stamp)
        monkeypatch.setenv("ACRGUARD_KEV_URL", f"{feed_server.url}/kev.json")
        monkeypatch.setenv("ACRGUARD_EPSS_URL", f"{feed_server.url}/epss.csv")
        caplog.set_level(logging.INFO, logger="scanner")
        assert clients.db().lookup("PyPI", "requests") == []
        alpine_before = len(clients.db().lookup("Alpine:v3.10", "musl"))

        feed_server.publish("PyPI", zip_of(records_in(PYPA)), mode="error")  # the feed is down
        run("db_update")
        (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert line.startswith(f"database update of {own_db} failed, the current database stays in use: ")
        assert "503" in line and "\n" not in line
        assert clients.db().lookup("PyPI", "requests") == []

        feed_server.publish("PyPI", zip_of(records_in(PYPA)))
        run("db_update")
        assert (
            update_lines(caplog, logging.INFO)[-1] == f"database update of {own_db}: replaced (PyPI, kev, epss changed)"
        )
        # Then the rescan after the update: full, as no rescan has completed against a known build yet.
        assert [r.getMessage() for r in caplog.records][-1].startswith("rescan after the database update (full: no ")
        assert len(clients.db().lookup("PyPI", "requests")) == 5  # the service's client reopened the new file
        facts = clients.db().describe()
        assert facts["kev"]["entries"] == kev.count(b'"cveID"') and facts["epss"]["scores"] > 0
        assert len(clients.db().lookup("Alpine:v3.10", "musl")) == alpine_before  # the held records stay

        run("db_update")  # unchanged feed: 304, nothing replaced
        assert update_lines(caplog)[-1] == f"database update of {own_db}: every feed unchanged"
        assert [path for path, _ in feed_server.requests] == [
            "/PyPI/all.zip",
            *(["/PyPI/all.zip", "/kev.json", "/epss.csv"] * 2),
        ]
