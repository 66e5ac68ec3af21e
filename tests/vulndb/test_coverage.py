"""Coverage: what the database holds for an image's ecosystem and release, materialised at import.

Counts are checked against a count made here from the fixture files (a Python pass over the OSV records and the
secdb YAML, the way osv.dev would read them) and against the per-row parse of the index that coverage replaced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from scanner.ecosystems.catalog import base_ecosystem, release_matches
from scanner.vulndb.db_writer import DatabaseWriter
from scanner.vulndb.errors import FeedError
from scanner.vulndb.osv_import import SourceSpec, import_sources
from scanner.vulndb.schema import osv_validator
from scanner.vulndb.snapshot import build_snapshot_db
from scanner.vulndb.sqlite_db import SqliteVulnDatabase, modified_key
from tests.vulndb.feedtools import ALMA, GOLANG, PYPA, SECDB, load_record, zip_of

MATCHING = Path(__file__).resolve().parents[1] / "fixtures" / "osv-matching"
ECOSYSTEMS = (
    "Alpine:v3.8",
    "Alpine:v3.10",
    "Alpine:v3.11",
    "Alpine:v3.12",
    "Alpine",
    "PyPI",
    "Go",
    "AlmaLinux:9",
    "AlmaLinux:8",
    "AlmaLinux",
    "Debian:12",
    "npm",
)
_CVE = re.compile(r"CVE[-_ ](\d{4})-(\d{4,})(?!\d)", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------- the independent count


def osv_ecosystems(roots: list[Path]) -> dict[str, set[str]]:
    """Record id -> the ecosystems its entries name, for the valid, non-withdrawn records under `roots`; a record
    in several roots is the last one read (the import's order)."""
    validator = osv_validator()
    found: dict[str, set[str]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix not in (".json", ".yaml") or not path.is_file():
                continue
            record = load_record(path)
            if validator.error(record) is not None or modified_key(record["modified"]) is None:
                continue
            found.pop(record["id"], None)
            if record.get("withdrawn"):
                continue
            named = {
                e["package"]["ecosystem"]
                for e in record.get("affected", [])
                if e.get("package", {}).get("ecosystem") and e["package"].get("name")
            }
            if named:
                found[record["id"]] = named
    return found


def secdb_ecosystems(root: Path) -> dict[str, set[str]]:
    """ALPINE-<CVE> -> `Alpine:<release>` for every secfix with a real fixed version (`0` means never affected)."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.yaml")):
        doc = yaml.load(path.read_text(), Loader=yaml.BaseLoader)
        release = "v" + str(doc["distroversion"]).lstrip("v")
        for item in doc.get("packages") or []:
            for fixed, entries in ((item.get("pkg") or {}).get("secfixes") or {}).items():
                if fixed.strip() in ("", "0"):
                    continue
                for entry in [entries] if isinstance(entries, str) else entries or []:
                    for year, number in _CVE.findall(str(entry)):
                        found.setdefault(f"ALPINE-CVE-{year}-{number}", set()).add(f"Alpine:{release}")
    return found


def expected(held: dict[str, set[str]], ecosystem: str) -> int:
    return sum(1 for named in held.values() if any(release_matches(n, ecosystem) for n in named))


def per_row_count(db_path: Path, ecosystem: str) -> int:
    """What coverage counted before it was materialised: every index row of the base ecosystem, parsed."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT record_id, entries FROM affected_index WHERE base_ecosystem = ?", (base_ecosystem(ecosystem),)
        ).fetchall()
    matched = set()
    for record_id, entries in rows:
        if any(release_matches(e["package"]["ecosystem"], ecosystem) for e in orjson.loads(entries)):
            matched.add(record_id)
    return len(matched)


@pytest.fixture(scope="module")
def fixtures_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("coverage") / "v.sqlite"
    # osv-matching's AlmaLinux errata overlap the feeds fixtures' (ALSA-2022:6224, ALSA-2022:7288): the second
    # source takes those records over, and the first source's coverage rows must shrink accordingly.
    import_sources(path, [str(PYPA), str(GOLANG), str(ALMA), str(SECDB), str(MATCHING)])
    return path


@pytest.fixture(scope="module")
def snapshot_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snapshot") / "snapshot.sqlite"
    build_snapshot_db(path)
    return path


@pytest.mark.parametrize("ecosystem", ECOSYSTEMS)
def test_counts_agree_with_the_fixture_files(fixtures_db: Path, ecosystem: str) -> None:
    held = {**osv_ecosystems([PYPA, GOLANG, ALMA, MATCHING]), **secdb_ecosystems(SECDB)}
    with SqliteVulnDatabase.open(fixtures_db) as db:
        coverage = db.coverage(ecosystem)
    assert coverage.advisories == expected(held, ecosystem)
    assert coverage.advisories == per_row_count(fixtures_db, ecosystem)
    assert coverage.kind == ("language" if ecosystem in ("PyPI", "Go", "npm") else "os")


def test_release_scoping_on_real_data(fixtures_db: Path) -> None:
    with SqliteVulnDatabase.open(fixtures_db) as db:
        v310, v311 = db.coverage("Alpine:v3.10").advisories, db.coverage("Alpine:v3.11").advisories
        assert v310 > 1000 and v311 > 1000
        assert db.coverage("Alpine:v3.12").advisories == 0
        # A record naming both releases (CVE-2019-1547: openssl fixed in each) counts once for a release-less image.
        assert v310 + v311 > db.coverage("Alpine").advisories >= max(v310, v311)
        assert db.coverage("AlmaLinux:9").advisories == 9  # 6 + 5 errata, 2 in both fixtures
        assert db.coverage("AlmaLinux:8").advisories == 0
        empty = db.coverage("Debian:12")
    assert (empty.advisories, empty.feed_date, empty.selection) == (0, "", False)


@pytest.mark.parametrize("ecosystem", ECOSYSTEMS)
def test_snapshot_counts_agree_with_the_per_row_parse(snapshot_db: Path, ecosystem: str) -> None:
    with SqliteVulnDatabase.open(snapshot_db) as db:
        assert db.coverage(ecosystem).advisories == per_row_count(snapshot_db, ecosystem)


def test_db_info_ecosystems_add_up(fixtures_db: Path) -> None:
    held = {**osv_ecosystems([PYPA, GOLANG, ALMA, MATCHING]), **secdb_ecosystems(SECDB)}
    per_string: dict[str, int] = {}
    for named in held.values():
        for name in named:
            per_string[name] = per_string.get(name, 0) + 1
    with SqliteVulnDatabase.open(fixtures_db) as db:
        listed = {e["ecosystem"]: e["records"] for e in db.describe()["ecosystems"]}
    assert listed == per_string


# ---------------------------------------------------------------------------------------------- re-import


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_a_record_updated_or_removed_changes_the_counts(tmp_path: Path) -> None:
    feed = _copy(PYPA, tmp_path / "pypa")
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(feed)])
    with SqliteVulnDatabase.open(db_path) as db:
        before = db.coverage("PyPI")
    assert before.advisories == expected(osv_ecosystems([feed]), "PyPI")

    (feed / "vulns" / "requests" / "PYSEC-2014-13.yaml").unlink()  # no longer listed: removed
    withdrawn = feed / "vulns" / "jinja2" / "PYSEC-2014-8.yaml"
    text = withdrawn.read_text()
    text = re.sub(r"(?m)^modified: .*$", "modified: 2025-01-02T03:04:05Z\nwithdrawn: 2025-01-02T03:04:05Z", text)
    withdrawn.write_text(text)
    import_sources(db_path, [str(feed)])
    with SqliteVulnDatabase.open(db_path) as db:
        after = db.coverage("PyPI")
    assert after.advisories == before.advisories - 2 == expected(osv_ecosystems([feed]), "PyPI")
    assert after.feed_date == "2025-01-02T03:04:05Z"  # the newest record date: the one just modified


def test_secdb_rows_removed_on_reimport(tmp_path: Path) -> None:
    feed = _copy(SECDB, tmp_path / "secdb")
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(feed)])
    with SqliteVulnDatabase.open(db_path) as db:
        v310 = db.coverage("Alpine:v3.10").advisories
        assert db.coverage("Alpine:v3.11").advisories > 0
    shutil.rmtree(feed / "v3.11")
    import_sources(db_path, [str(feed)])
    remaining = secdb_ecosystems(feed)
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.coverage("Alpine:v3.11").advisories == 0
        assert db.coverage("Alpine:v3.10").advisories == v310 == expected(remaining, "Alpine:v3.10")
        assert db.coverage("Alpine").advisories == expected(remaining, "Alpine")


def test_a_source_taking_records_over_leaves_no_double_count(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(ALMA)])
    import_sources(db_path, [str(MATCHING / "almalinux9")])
    with SqliteVulnDatabase.open(db_path) as db:
        listed = {e["ecosystem"]: e for e in db.describe()["ecosystems"]}
        assert db.coverage("AlmaLinux:9").advisories == listed["AlmaLinux:9"]["records"] == 9
    assert listed["AlmaLinux:9"]["sources"] == sorted(str(p.resolve()) for p in (ALMA, MATCHING / "almalinux9"))


def test_cached_per_database_instance(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(GOLANG)])
    with SqliteVulnDatabase.open(db_path) as db:
        first = db.coverage("Go")
        import_sources(db_path, [str(PYPA)])  # another source, same file: this instance keeps its answers
        assert db.coverage("Go") is first
        assert db.coverage("PyPI").advisories > 0  # not asked before: read now


# ---------------------------------------------------------------------------------------------- selections


def test_selection_flag(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [SourceSpec(str(PYPA), selection=True), str(GOLANG)])
    import_sources(db_path, [str(MATCHING / "almalinux9")], selection=True)
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.coverage("PyPI").selection is True
        assert db.coverage("Go").selection is False
        assert db.coverage("AlmaLinux:9").selection is True
        assert db.coverage("AlmaLinux:8").selection is False  # nothing counted: nothing to call a selection
    # A whole feed of the same ecosystem next to the selection: not every record counted is from a selection.
    import_sources(db_path, [str(MATCHING / "pypa-urllib3")])
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.coverage("PyPI").selection is False


def test_snapshot_selections(snapshot_db: Path) -> None:
    with SqliteVulnDatabase.open(snapshot_db) as db:
        sources = {s["name"]: s["selection"] for s in db.describe()["sources"]}
        assert sources == {
            "snapshot:alpine-secdb": False,
            "snapshot:pypa-advisory-database": True,
            "snapshot:golang-vulndb": True,
            "snapshot:almalinux-osv": True,
            "snapshot:ubuntu-osv": True,
            "snapshot:debian-osv": True,
            "snapshot:nvd": True,
        }
        assert db.coverage("Alpine:v3.10").selection is False
        assert db.coverage("Alpine:v3.11").selection is False
        assert db.coverage("Alpine:v3.12").advisories == 0
        for ecosystem in ("PyPI", "Go", "AlmaLinux:9", "Debian:12", "Ubuntu:22.04"):
            assert db.coverage(ecosystem).selection is True


# ---------------------------------------------------------------------------------------------- feed dates


def _feed_dates(db_path: Path) -> dict[str, str]:
    with SqliteVulnDatabase.open(db_path) as db:
        return {s["name"]: s["feed_date"] for s in db.describe()["sources"]}


def _newest(dates: list[str]) -> str:
    keys = [k for k in (modified_key(d) for d in dates) if k is not None and k >= "1995"]
    return max(keys)[:19] + "Z"


def test_feed_date_is_the_newest_record_date_not_the_import_time(tmp_path: Path) -> None:
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(PYPA)])
    records = [load_record(p) for p in PYPA.rglob("*.yaml")]
    newest = _newest([r["modified"] for r in records if osv_validator().error(r) is None])
    assert _feed_dates(db_path) == {str(PYPA.resolve()): newest}
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.coverage("PyPI").feed_date == newest


def test_go_placeholder_dates_are_not_the_feeds_date(tmp_path: Path) -> None:
    feed = _copy(GOLANG, tmp_path / "go")
    records = [load_record(p) for p in feed.rglob("*.json")]
    assert {r["modified"] for r in records} == {"0001-01-01T00:00:00Z"}  # Go's vulndb, as published in git
    for path in feed.rglob("*.json"):
        os.utime(path, (1_700_000_000, 1_700_000_000))  # 2023-11-14T22:13:20Z
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(feed)])
    published = [r["published"] for r in records if not r["published"].startswith("0001")]
    want = _newest(published) if published else "2023-11-14T22:13:20Z"
    assert _feed_dates(db_path)[str(feed.resolve())] == want
    assert not want.startswith("0001")


def test_a_record_dated_in_the_future_does_not_date_the_feed(tmp_path: Path) -> None:
    feed = _copy(MATCHING / "pypa-urllib3", tmp_path / "urllib3")
    future = feed / "PYSEC-2017-98.yaml"
    future.write_text(re.sub(r"(?m)^modified: .*$", "modified: 2999-01-01T00:00:00Z", future.read_text()))
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(feed)])
    others = [load_record(p)["modified"] for p in feed.glob("*.yaml") if p != future]
    assert _feed_dates(db_path)[str(feed.resolve())] == _newest(others)


def test_secdb_feed_date_is_the_documents_date(tmp_path: Path) -> None:
    feed = _copy(SECDB / "v3.10", tmp_path / "v3.10")
    for path in feed.iterdir():
        os.utime(path, (1_591_625_093, 1_591_625_093))  # 2020-06-08T14:04:53Z
    db_path = tmp_path / "v.sqlite"
    import_sources(db_path, [str(feed)])
    assert _feed_dates(db_path)[str(feed.resolve())] == "2020-06-08T14:04:53Z"
    with SqliteVulnDatabase.open(db_path) as db:
        coverage = db.coverage("Alpine:v3.10")
    assert coverage.feed_date == "2020-06-08T14:04:53Z" and coverage.advisories > 0


def test_http_last_modified_dates_a_downloaded_feed(tmp_path: Path, feed_server: Any) -> None:
    records = [load_record(p) for p in sorted(GOLANG.rglob("*.json"))]
    feed = feed_server.publish("Go", zip_of(records))
    db_path = tmp_path / "v.sqlite"
    url = f"{feed_server.url}/Go/all.zip"
    import_sources(db_path, [url])
    import email.utils

    want = email.utils.parsedate_to_datetime(feed.last_modified).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _feed_dates(db_path) == {url: want}
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.coverage("Go").feed_date == want


def test_snapshot_feed_dates_are_the_upstream_commits(snapshot_db: Path) -> None:
    assert _feed_dates(snapshot_db) == {
        "snapshot:alpine-secdb": "2020-06-08T13:44:53Z",
        "snapshot:pypa-advisory-database": "2024-10-10T17:35:05Z",
        "snapshot:golang-vulndb": "2026-08-21T20:38:00Z",
        "snapshot:almalinux-osv": "2026-08-21T15:39:17Z",
        # No commit date declared: the newest record's `modified`.
        "snapshot:ubuntu-osv": "2026-04-27T14:23:12Z",
        "snapshot:debian-osv": "2026-04-27T20:14:33Z",
        # NVD's records: the newest lastModified (CVE-2019-1563's).
        "snapshot:nvd": "2026-06-17T02:28:45Z",
    }
    with SqliteVulnDatabase.open(snapshot_db) as db:
        assert db.coverage("Alpine:v3.11").feed_date == "2020-06-08T13:44:53Z"


# ---------------------------------------------------------------------------------------------- old formats


def _with_format(path: Path, version: int) -> Path:
    import_sources(path, [str(MATCHING / "golang")])
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {version}")
    return path


def test_an_older_format_is_one_line_saying_how_to_rebuild(tmp_path: Path) -> None:
    path = _with_format(tmp_path / "old.sqlite", 1)
    for opening in (lambda: SqliteVulnDatabase.open(path), lambda: DatabaseWriter(path)):
        with pytest.raises(FeedError) as raised:
            opening()
        message = str(raised.value)
        assert "\n" not in message and "format 1" in message and "`acrguard db update`" in message


def test_a_newer_format_says_so(tmp_path: Path) -> None:
    path = _with_format(tmp_path / "new.sqlite", 99)
    with pytest.raises(FeedError, match="newer acrguard"):
        SqliteVulnDatabase.open(path)


def test_db_update_rebuilds_an_older_format(tmp_path: Path, feed_server: Any) -> None:
    from scanner.vulndb.update import update

    path = _with_format(tmp_path / "old.sqlite", 1)
    feed_server.publish("Go", zip_of([load_record(p) for p in sorted(GOLANG.rglob("*.json"))]))
    report = update(path, ["Go"], base=feed_server.url)
    assert report.replaced
    with SqliteVulnDatabase.open(path) as db:
        assert [s["name"] for s in db.describe()["sources"]] == ["osv:Go"]  # rebuilt: the old sources are gone
        assert db.coverage("Go").advisories == expected(osv_ecosystems([GOLANG]), "Go")


def test_the_snapshot_database_of_another_format_is_another_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.vulndb import snapshot

    current = snapshot.snapshot_digest()
    monkeypatch.setattr(snapshot, "FORMAT_VERSION", snapshot.FORMAT_VERSION - 1)
    assert snapshot.snapshot_digest() != current  # so default_db_path never opens the old one: it builds anew


def test_json_of_describe_is_plain(fixtures_db: Path) -> None:
    with SqliteVulnDatabase.open(fixtures_db) as db:
        assert json.loads(json.dumps(db.describe()))["ecosystems"]
