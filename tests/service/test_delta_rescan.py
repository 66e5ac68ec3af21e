"""Rescans after a database update (`scanner.service.delta_rescan`) on SQLite and PostgreSQL stores: a real
database built from PyPA's and Alpine's advisories, an update that adds, changes and withdraws advisories,
real inventories (a Python root filesystem, the Alpine image of the fixtures), events through the real
webhook publisher to a local HTTP server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scanner.inventory.build import inventory
from scanner.model.codec import finding_to_dict
from scanner.model.types import Inventory
from scanner.policy.gate_actions import EventGridPublisher, WebhookPublisher
from scanner.service.delta_rescan import full_rescan, rescan_after_update
from scanner.service.pipeline import Policy, current_detector_versions
from scanner.store import FindingsStore, open_store
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.policy.httprecorder import recording_server
from tests.store.pg_server import PgServer, running_postgres
from tests.vulndb.delta_feed import ADDED, MODIFIED, WITHDRAWN, python_rootfs, write_feed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ALPINE = f"docker-archive:{FIXTURES / 'images/fanal/image3_gz_layers.tar'}"
REGISTRY = "delta.azurecr.io"
VERSION = "delta-test"
OLD_PYTHON = {"Jinja2": "2.10", "requests": "2.19.0", "urllib3": "1.26.0", "redis": "4.5.0"}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FindingsStore]:
    url = str(tmp_path / "store.sqlite")
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").fresh_url()
    with open_store(url) as opened:
        yield opened


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Inventory]:
    """Name → a real inventory. `all` looks up every package the update changes, `jinja` one of them,
    `requests` none (its advisories stay as they were), `alpine` another ecosystem; `old` is `jinja` again,
    pulled too long ago for any rescan."""
    root = tmp_path_factory.mktemp("rootfs")
    python = {
        "all": OLD_PYTHON,
        "jinja": {"Jinja2": "2.10"},
        "requests": {"requests": "2.19.0"},
        "old": {"Jinja2": "2.10"},
    }
    out = {name: inventory(python_rootfs(root / name, packages))[0] for name, packages in python.items()}
    out["alpine"] = inventory(ALPINE)[0]
    return out


def digest(name: str) -> str:
    return f"sha256:{name.encode().hex().ljust(64, '0')}"


@dataclass
class Fleet:
    db_path: Path
    feed: Path
    since: datetime

    def db(self) -> SqliteVulnDatabase:
        return SqliteVulnDatabase.open(self.db_path)

    def update(self) -> None:
        write_feed(self.feed, updated=True)
        import_sources(self.db_path, [str(self.feed)])


@pytest.fixture
def fleet(tmp_path: Path, store: FindingsStore, images: dict[str, Inventory]) -> Fleet:
    feed, db_path = tmp_path / "feed", tmp_path / "vulndb.sqlite"
    write_feed(feed, updated=False)
    import_sources(db_path, [str(feed), str(FIXTURES / "osv/alpine-secdb/v3.10")])
    now = datetime.now(UTC)
    for name, inv in images.items():
        pulled = now - timedelta(days=60 if name == "old" else 1)
        store.record_push(REGISTRY, f"team/{name}", digest(name), "1", "application/json", pulled)
        store.save_inventory(REGISTRY, digest(name), inv, VERSION, current_detector_versions(), pulled)
        store.record_pull(REGISTRY, f"team/{name}", digest(name), pulled, "registry-notification")
    return Fleet(db_path, feed, now - timedelta(days=30))


def state(store: FindingsStore, names: list[str]) -> dict[str, Any]:
    """What a rescan decides per digest: health, reason, and the open findings' stored documents."""
    out = {}
    for name in names:
        detail = store.get_image(REGISTRY, digest(name))
        assert detail is not None
        findings = store.list_findings(REGISTRY, digest(name), include_disabled=True)
        out[name] = (detail.health, detail.reason, {f.key: finding_to_dict(f.finding) for f in findings})
    return out


def open_keys(store: FindingsStore, name: str, vuln_id: str) -> list[str]:
    return [f.key for f in store.list_findings(REGISTRY, digest(name)) if f.finding.id == vuln_id]


RECENT = ["all", "jinja", "requests", "alpine"]


def test_only_the_digests_an_update_changes_are_reassessed(store: FindingsStore, fleet: Fleet) -> None:
    with recording_server() as webhook:
        policy = Policy(publisher=WebhookPublisher(f"{webhook.url}/hook", attempts=1))
        with fleet.db() as db:
            first = rescan_after_update(store, db, fleet.since, VERSION, policy=policy)
        assert first.mode == "full" and "no rescan has completed" in first.reason
        assert first.counts.rematched == 4  # every recently pulled digest; `old` is not one
        assert len(webhook.requests) == 4  # each first assessment is a change
        assert all(r.json()["data"]["cause"] == {**r.json()["data"]["cause"], "delta": False} for r in webhook.requests)
        assert store.get_image(REGISTRY, digest("old")).health is None  # type: ignore[union-attr]
        before = state(store, RECENT)
        resolved_jinja = open_keys(store, "jinja", MODIFIED)
        resolved_all = sorted(open_keys(store, "all", MODIFIED) + open_keys(store, "all", WITHDRAWN))
        assert len(resolved_jinja) == 1 and len(resolved_all) == 2
        assessed = {name: store.get_image(REGISTRY, digest(name)).assessed_at for name in RECENT}  # type: ignore[union-attr]

        fleet.update()
        with fleet.db() as db:
            result = rescan_after_update(store, db, fleet.since, VERSION, policy=policy)
        assert result.mode == "delta" and result.reason == ""
        assert (result.affected, result.counts.rematched, result.counts.failed, result.changed) == (2, 2, 0, 2)
        # Untouched: neither re-assessed nor charged a rescan.
        for name in ("requests", "alpine"):
            assert store.get_image(REGISTRY, digest(name)).assessed_at == assessed[name]  # type: ignore[union-attr]
        assert store.usage(REGISTRY, fleet.since).events.get("rescan", 0) == 4 + 2

        events = {r.json()["subject"]: r.json()["data"] for r in webhook.requests[4:]}
        assert len(webhook.requests) == 6 and set(events) == {
            f"team/all@{digest('all')}",
            f"team/jinja@{digest('jinja')}",
        }
        added_all = open_keys(store, "all", ADDED)
        assert len(added_all) == 1
        all_event, jinja_event = events[f"team/all@{digest('all')}"], events[f"team/jinja@{digest('jinja')}"]
        assert (all_event["addedFindings"], sorted(all_event["removedFindings"])) == (added_all, resolved_all)
        assert (jinja_event["addedFindings"], jinja_event["removedFindings"]) == ([], resolved_jinja)
        assert jinja_event["health"] == jinja_event["previousHealth"] == "Unhealthy"  # PYSEC-2019-217 stays
        assert all_event["cause"]["delta"] is True and all_event["cause"]["kind"] == "database-update"
        with fleet.db() as db:
            assert all_event["cause"]["databaseBuild"] == db.build()

        delta = state(store, RECENT)
        assert delta["requests"] == before["requests"] and delta["alpine"] == before["alpine"]
        # The delta's result is a full rescan's: a full one changes nothing more, and stores the same.
        with fleet.db() as db:
            full = full_rescan(store, db, fleet.since, VERSION, policy=policy)
        assert full.rematched == 4 and len(webhook.requests) == 6
        assert state(store, RECENT) == delta

        # Nothing changed since: the next rescan after an update re-assesses nothing.
        with fleet.db() as db:
            again = rescan_after_update(store, db, fleet.since, VERSION, policy=policy)
        assert again.mode == "delta" and again.counts.rematched == 0


def test_falls_back_to_full_when_the_change_set_is_unknown(tmp_path: Path, store: FindingsStore, fleet: Fleet) -> None:
    with fleet.db() as db:
        assert full_rescan(store, db, fleet.since, VERSION).rematched == 4
    # A database built elsewhere copied over this one: no change record reaches back to the last rescan's.
    elsewhere = tmp_path / "elsewhere.sqlite"
    write_feed(tmp_path / "other-feed", updated=True)
    import_sources(elsewhere, [str(tmp_path / "other-feed"), str(FIXTURES / "osv/alpine-secdb/v3.10")])
    shutil.copyfile(elsewhere, fleet.db_path)
    with fleet.db() as db:
        result = rescan_after_update(store, db, fleet.since, VERSION)
    assert result.mode == "full" and result.counts.rematched == 4 and "first build" in result.reason
    # Another scanner version: its inventories are stale, the full rescan's rule decides (queue none: skipped).
    fleet.update()
    with fleet.db() as db:
        other = rescan_after_update(store, db, fleet.since, "another-version")
    assert other.mode == "full" and "scanner or its severity order changed" in other.reason
    with fleet.db() as db:  # back to this version: full again, then the mark is this version's
        assert rescan_after_update(store, db, fleet.since, VERSION).mode == "full"
    fleet.update()
    with fleet.db() as db:
        assert rescan_after_update(store, db, fleet.since, VERSION).mode == "delta"
    # Another severity order: every finding's severity may change, as with another scanner.
    fleet.update()
    with fleet.db() as db:
        reordered = rescan_after_update(store, db, fleet.since, VERSION, policy=Policy(severity_order=("nvd",)))
    assert reordered.mode == "full" and "severity order" in reordered.reason


def test_inventories_stored_before_the_index_are_indexed_first(store: FindingsStore, fleet: Fleet) -> None:
    with fleet.db() as db:
        full_rescan(store, db, fleet.since, VERSION)
    # As a store migrated from before the index: no inventory has its row.
    with store._tx() as tx:  # type: ignore[attr-defined]
        tx.run("DELETE FROM inventory_package_sets")
    fleet.update()
    with fleet.db() as db:
        result = rescan_after_update(store, db, fleet.since, VERSION)
    assert result.mode == "delta" and result.affected == 2


def test_an_event_grid_topic_gets_the_events_of_a_rescan_as_arrays(store: FindingsStore, fleet: Fleet) -> None:
    """A rescan holds its images' events until the batch is re-assessed; a topic takes them as one array."""
    with recording_server() as topic:
        policy = Policy(publisher=EventGridPublisher(f"{topic.url}/api/events", "topic-key", attempts=1))
        with fleet.db() as db:
            assert rescan_after_update(store, db, fleet.since, VERSION, policy=policy).counts.rematched == 4
        [first] = topic.requests
        assert first.headers["aeg-sas-key"] == "topic-key"
        assert sorted(e["subject"] for e in first.json()) == sorted(f"team/{n}@{digest(n)}" for n in RECENT)
        assert all(e["data"]["cause"]["delta"] is False for e in first.json())
        fleet.update()
        with fleet.db() as db:
            result = rescan_after_update(store, db, fleet.since, VERSION, policy=policy)
        assert result.mode == "delta" and result.changed == 2
        [_, second] = topic.requests
        events = second.json()
        assert sorted(e["subject"] for e in events) == [f"team/all@{digest('all')}", f"team/jinja@{digest('jinja')}"]
        assert all(e["data"]["cause"]["delta"] is True and e["data"]["removedFindings"] for e in events)


def test_a_rescan_whose_topic_fails_logs_each_image_and_keeps_its_findings(
    store: FindingsStore, fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    with recording_server([(400, {"error": "bad"})]) as topic:
        policy = Policy(publisher=EventGridPublisher(f"{topic.url}/api/events", "k", attempts=1))
        with fleet.db() as db:
            counts = full_rescan(store, db, fleet.since, VERSION, policy=policy)
    assert counts.rematched == 4 and counts.failed == 0 and len(topic.requests) == 1
    unpublished = [r.getMessage() for r in caplog.records if "not published" in r.getMessage()]
    assert sorted(m.split(" not published")[0] for m in unpublished) == sorted(
        f"health-changed event for team/{n}@{digest(n)}" for n in RECENT
    )
    assert all("HTTP 400" in m for m in unpublished)
    assert all(store.get_image(REGISTRY, digest(n)).health is not None for n in RECENT)  # type: ignore[union-attr]
