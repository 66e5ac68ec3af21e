"""The findings store when the database says no: a statement failing in the middle of a write leaves nothing
of that write behind (SQLite and a real PostgreSQL), and a dropped PostgreSQL connection fails the call that
meets it with a `StoreError`, after which the store connects again (as `postgres_store` promises).

Failures come from the database itself: a trigger the test installs refuses a row (or ends the store's
connection) part-way through the store's own transaction."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import psycopg
import pytest

from scanner.model.types import Finding, Inventory
from scanner.store import FindingsStore, StoreError, open_store
from tests.store.pg_server import PgServer

T0 = datetime(2025, 1, 1, tzinfo=UTC)
REG, REPO, D1, D2 = "reg.azurecr.io", "app/web", "sha256:" + "1" * 64, "sha256:" + "2" * 64
MT = "application/vnd.oci.image.manifest.v1+json"
REFUSAL = "refused by the test"


@contextlib.contextmanager
def trigger_on(store_url: str, table: str, when: str, action: str = "refuse") -> Iterator[None]:
    """While in the block, inserting a row of `table` for which `when` holds (SQL over NEW) makes the database
    refuse the statement (`refuse`) or end the connection that made it (`disconnect`, PostgreSQL only)."""
    if store_url.startswith("postgresql://"):
        body = (
            f"RAISE EXCEPTION '{REFUSAL}'"
            if action == "refuse"
            else "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(60)"
        )
        create = [
            f"CREATE FUNCTION test_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body}; END $$",
            f"CREATE TRIGGER test_trigger BEFORE INSERT ON {table} FOR EACH ROW WHEN ({when})"
            " EXECUTE FUNCTION test_trigger()",
        ]
        drop = [f"DROP TRIGGER test_trigger ON {table}", "DROP FUNCTION test_trigger()"]
        with psycopg.connect(store_url, autocommit=True) as admin:
            for statement in create:
                admin.execute(statement)  # type: ignore[arg-type]  # built from the test's own constants
        try:
            yield
        finally:
            with psycopg.connect(store_url, autocommit=True) as admin:
                for statement in drop:
                    admin.execute(statement)  # type: ignore[arg-type]
        return
    assert action == "refuse", "SQLite has no connection to drop"
    with contextlib.closing(sqlite3.connect(store_url, isolation_level=None)) as admin:
        admin.execute(
            f"CREATE TRIGGER test_trigger BEFORE INSERT ON {table} WHEN {when}"
            f" BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )
    try:
        yield
    finally:
        with contextlib.closing(sqlite3.connect(store_url, isolation_level=None)) as admin:
            admin.execute("DROP TRIGGER test_trigger")


def test_a_push_failing_at_its_tag_leaves_no_image(store_url: str, store: FindingsStore) -> None:
    # record_push writes the image row, then its tag: the tag is refused, so the image row must go too.
    with trigger_on(store_url, "tags", "NEW.tag = '1.0'"), pytest.raises(StoreError, match=REFUSAL):
        store.record_push(REG, REPO, D1, "1.0", MT, T0)
    assert store.get_image(REG, D1) is None
    assert store.list_images().items == ()
    # Nothing was left open either: the same push goes through once the database accepts it.
    store.record_push(REG, REPO, D1, "1.0", MT, T0)
    detail = store.get_image(REG, D1)
    assert detail is not None and [r.tag for r in detail.tag_history] == ["1.0"]


def test_an_assessment_failing_part_way_keeps_the_previous_one_whole(
    store_url: str, store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    a, b, c = _distinct(alpine_image[1], 3)
    store.record_push(REG, REPO, D1, "1.0", MT, T0)
    store.save_assessment(REG, D1, [a, b], "Unhealthy", "2", {"active": 2}, T0)
    before = (store.get_image(REG, D1), store.list_findings(REG, D1))

    # c's findings row is written and b resolved before c's ids are refused: all of it must be undone.
    later = T0 + timedelta(hours=1)
    with trigger_on(store_url, "finding_ids", f"NEW.vuln_id = '{c.id}'"), pytest.raises(StoreError, match=REFUSAL):
        store.save_assessment(REG, D1, [a, c], "Unhealthy", "2", {"active": 2}, later)
    assert (store.get_image(REG, D1), store.list_findings(REG, D1)) == before

    change = store.save_assessment(REG, D1, [a, c], "Unhealthy", "2", {"active": 2}, later)
    assert change.added and change.removed
    assert {s.finding.id for s in store.list_findings(REG, D1)} == {a.id, c.id}


def _distinct(findings: list[Finding], n: int) -> list[Finding]:
    """`n` findings none of which shares an id or alias with another."""
    chosen: list[Finding] = []
    seen: set[str] = set()
    for finding in findings:
        names = {finding.id, *finding.aliases}
        if not names & seen:
            chosen.append(finding)
            seen |= names
        if len(chosen) == n:
            return chosen
    raise AssertionError(f"the fixture image has fewer than {n} unrelated findings")


# --- PostgreSQL: the connection dropped --------------------------------------------------------------


def _named(pg_server: PgServer, name: str) -> str:
    """A fresh schema's URL whose connections carry `name`, to find them in pg_stat_activity."""
    return f"{pg_server.fresh_url()}&application_name={quote(name)}"


def _backends(pg_server: PgServer, name: str) -> list[int]:
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchall()
    return [int(row[0]) for row in rows]


def _terminate(pg_server: PgServer, name: str) -> None:
    """Ends the server side of every connection named `name` and waits until the server has let them go."""
    (pid,) = _backends(pg_server, name)
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    deadline = time.monotonic() + 60  # a bound against a hang, no speed requirement
    while _backends(pg_server, name):
        assert time.monotonic() < deadline, f"backend {pid} still there after pg_terminate_backend"
        time.sleep(0.02)


def test_a_dropped_connection_fails_the_next_call_then_the_store_reconnects(pg_server: PgServer) -> None:
    name = "acrguard-dropped-idle"
    with open_store(_named(pg_server, name)) as store:
        store.record_push(REG, REPO, D1, "1.0", MT, T0)
        _terminate(pg_server, name)
        with pytest.raises(StoreError, match=r"^findings store postgresql://127\.0\.0\.1:\d+/postgres: "):
            store.get_image(REG, D1)
        detail = store.get_image(REG, D1)  # a new connection: what was committed is all there
        assert detail is not None and [r.tag for r in detail.tag_history] == ["1.0"]
        store.record_push(REG, REPO, D2, "2.0", MT, T0)
        assert {i.key.digest for i in store.list_images().items} == {D1, D2}
        assert len(_backends(pg_server, name)) == 1


def test_a_connection_dropped_inside_a_write_leaves_no_partial_write(pg_server: PgServer) -> None:
    name = "acrguard-dropped-in-write"
    url = _named(pg_server, name)
    with open_store(url) as store:
        # The tag insert ends the store's own connection, after the image row was written in the same transaction.
        with trigger_on(url, "tags", "NEW.tag = '1.0'", action="disconnect"), pytest.raises(StoreError):
            store.record_push(REG, REPO, D1, "1.0", MT, T0)
        assert store.get_image(REG, D1) is None
        store.record_push(REG, REPO, D1, "1.0", MT, T0)
        detail = store.get_image(REG, D1)
        assert detail is not None and [r.tag for r in detail.tag_history] == ["1.0"]
