"""The change record a database build keeps (`scanner.vulndb.changes`), on real advisories: which package
keys, vulnerability ids and ecosystems an update changed, and when the change set cannot be told."""

from __future__ import annotations

import shutil
from pathlib import Path

from scanner.vulndb import exploitation
from scanner.vulndb.changes import ChangeSet, Unknown
from scanner.vulndb.db_writer import DatabaseWriter
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from scanner.vulndb.update import update
from tests.vulndb.delta_feed import ADDED, MODIFIED, WITHDRAWN, write_feed
from tests.vulndb.feedtools import records_in, running_feed_server, zip_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _build(path: Path) -> str:
    with SqliteVulnDatabase.open(path) as db:
        build = db.build()
    assert build is not None
    return build


def _changes(path: Path, since: str | None) -> ChangeSet | Unknown:
    with SqliteVulnDatabase.open(path) as db:
        return db.changes_since(since)


def test_an_update_records_exactly_the_keys_and_ids_it_changed(tmp_path: Path) -> None:
    feed, path = tmp_path / "feed", tmp_path / "db.sqlite"
    write_feed(feed, updated=False)
    import_sources(path, [str(feed)])
    first = _build(path)
    assert isinstance(_changes(path, first), ChangeSet) and _changes(path, first) == ChangeSet(first)
    write_feed(feed, updated=True)
    import_sources(path, [str(feed)])
    second = _build(path)
    assert second != first
    changes = _changes(path, first)
    assert isinstance(changes, ChangeSet) and changes.build == second
    # Added (urllib3), modified (jinja2), withdrawn (redis): their keys; requests' advisories did not change.
    assert changes.packages == {("PyPI", "urllib3"), ("PyPI", "jinja2"), ("PyPI", "redis")}
    assert changes.vuln_ids == {
        *(ADDED, "CVE-2023-43804", "GHSA-v845-jxx5-vc9f"),
        *(MODIFIED, "CVE-2020-28493", "GHSA-g3rq-g295-4j3m", "SNYK-PYTHON-JINJA2-1012994"),
        *(WITHDRAWN, "CVE-2023-28858"),
    }
    assert changes.ecosystems == frozenset()  # PyPI still has advisories, from the same feed

    # The same content again: a new build that changed nothing; the chain unites both.
    import_sources(path, [str(feed)])
    third = _build(path)
    assert _changes(path, second) == ChangeSet(third)
    assert _changes(path, first) == ChangeSet(third, changes.packages, changes.ecosystems, changes.vuln_ids)


def test_coverage_gained_by_an_ecosystem_is_a_change_of_all_of_it(tmp_path: Path) -> None:
    feed, path = tmp_path / "feed", tmp_path / "db.sqlite"
    write_feed(feed, updated=False)
    import_sources(path, [str(feed)])
    first = _build(path)
    import_sources(path, [str(FIXTURES / "osv/alpine-secdb/v3.10")])
    changes = _changes(path, first)
    assert isinstance(changes, ChangeSet)
    assert changes.ecosystems == {"Alpine"}
    assert ("Alpine", "openssl") in changes.packages  # the secdb-built records, keyed too


def test_kev_changes_are_keyed_by_cve_and_epss_of_another_day_changes_everything(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    write_feed(tmp_path / "feed", updated=False)
    import_sources(path, [str(tmp_path / "feed")])
    raw = (FIXTURES / "kev/known_exploited_vulnerabilities.json").read_bytes()
    catalog = exploitation.parse_kev(raw, "kev")
    with DatabaseWriter(path) as writer:
        writer.replace_kev(catalog)
    first = _build(path)
    changed = catalog.entries[0]
    edited = exploitation.KevCatalog(
        catalog.version,
        catalog.released,
        (type(changed)(**{**changed.__dict__, "ransomware": not changed.ransomware}), *catalog.entries[2:]),
    )
    with DatabaseWriter(path) as writer:
        writer.replace_kev(edited)
    changes = _changes(path, first)
    assert isinstance(changes, ChangeSet)
    assert changes.vuln_ids == {changed.cve, catalog.entries[1].cve} and not changes.packages

    second = _build(path)
    for name in ("epss_scores-2025-08-25.csv", "epss_scores-2026-09-29.csv"):
        scores = exploitation.parse_epss((FIXTURES / "epss" / name).read_bytes(), name)
        with DatabaseWriter(path) as writer:
            writer.replace_epss(scores)
    result = _changes(path, second)
    assert isinstance(result, Unknown) and "EPSS" in result.reason


def test_unknown_when_the_record_cannot_account_for_the_change(tmp_path: Path) -> None:
    feed, path = tmp_path / "feed", tmp_path / "db.sqlite"
    write_feed(feed, updated=False)
    import_sources(path, [str(feed)])
    first = _build(path)
    # The first build of a file: nothing before it to compare with.
    assert isinstance(_changes(path, None), Unknown)
    # A database built elsewhere and copied over this one: its chain does not reach back to `first`.
    elsewhere = tmp_path / "elsewhere.sqlite"
    import_sources(elsewhere, [str(feed)])
    shutil.copyfile(elsewhere, path)
    result = _changes(path, first)
    assert isinstance(result, Unknown) and "first build" in result.reason
    # A file without the record (as written before it was kept): no build at all.
    with DatabaseWriter(path) as writer:
        writer.conn.execute("DELETE FROM meta WHERE key = 'build_id'")
    with SqliteVulnDatabase.open(path) as db:
        assert db.build() is None
        assert isinstance(db.changes_since(first), Unknown)


def test_db_update_keeps_the_chain_across_its_copy_aside(tmp_path: Path) -> None:
    """`db update` builds a copy aside and renames it over the file: the copy's build follows the file's."""
    feed, path = tmp_path / "feed", tmp_path / "db.sqlite"
    with running_feed_server() as server:
        write_feed(feed, updated=False)
        server.publish("PyPI", zip_of(records_in(feed)))
        assert update(path, ["PyPI"], base=server.url).replaced
        first = _build(path)
        write_feed(feed, updated=True)
        server.publish("PyPI", zip_of(records_in(feed)))
        assert update(path, ["PyPI"], base=server.url).replaced
        second = _build(path)
        changes = _changes(path, first)
        assert isinstance(changes, ChangeSet) and changes.build == second
        assert changes.packages == {("PyPI", "urllib3"), ("PyPI", "jinja2"), ("PyPI", "redis")}
        assert not update(path, ["PyPI"], base=server.url).replaced  # 304: the file and its build stay
        assert _changes(path, second) == ChangeSet(second)
