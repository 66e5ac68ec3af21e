"""The read side: read-only opening, one-line errors, lookups by normalised name, by_id through aliases."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from scanner.vulndb.errors import DatabaseMissingError, FeedError
from scanner.vulndb.interface import VulnDatabase
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.snapshot import snapshot_dir
from scanner.vulndb.sqlite_db import FORMAT_VERSION, SqliteVulnDatabase, modified_key
from tests.vulndb.feedtools import ALMA, GOLANG, PYPA, SECDB


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "v.sqlite"
    import_sources(path, [str(PYPA), str(GOLANG), str(ALMA), str(SECDB)])
    return path


def test_satisfies_the_protocol(db_path: Path) -> None:
    with SqliteVulnDatabase.open(db_path) as db:
        protocol: VulnDatabase = db
        assert protocol.describe()["total_records"] == 15 + 9 + 6 + 2029


def test_opened_read_only(db_path: Path) -> None:
    with SqliteVulnDatabase.open(db_path) as db, pytest.raises(sqlite3.OperationalError, match="readonly"):
        db._conn.execute("DELETE FROM records")


def test_missing_database_is_one_line_naming_the_remedies(tmp_path: Path) -> None:
    with pytest.raises(DatabaseMissingError) as caught:
        SqliteVulnDatabase.open(tmp_path / "nope.sqlite")
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "nope.sqlite") in message
    for remedy in ("acrguard db update", "acrguard db import", "bundled snapshot"):
        assert remedy in message
    assert not (tmp_path / "nope.sqlite").exists()  # opening never creates it


def test_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(FeedError, match="not a vulnerability database"):
        SqliteVulnDatabase.open(junk)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(FeedError, match="not an acrguard vulnerability database"):
        SqliteVulnDatabase.open(other)


def test_lookup_by_pypi_normalised_name(db_path: Path) -> None:
    with SqliteVulnDatabase.open(db_path) as db:
        expected = db.lookup("PyPI", "jinja2")
        assert len(expected) == 5
        assert db.lookup("PyPI", "Jinja2") == expected
        assert db.lookup("PyPI", "JINJA2") == expected
        assert db.lookup("PyPI", "Jinja-2") == []  # `jinja-2` is another project under PEP 503
        assert len(db.lookup("PyPI", "JW_Util")) == 1  # the advisory says `jw.util`
        # Go module paths are case-sensitive.
        assert db.lookup("Go", "GOLANG.ORG/X/NET") == []


def test_lookup_ignores_the_release_but_not_the_base(db_path: Path) -> None:
    with SqliteVulnDatabase.open(db_path) as db:
        any_release = db.lookup("Alpine", "openssl")
        assert db.lookup("Alpine:v3.11", "openssl") == any_release
        assert db.lookup("Alpine:v3.19", "openssl") == any_release  # the matcher checks the release
        assert db.lookup("Debian:12", "openssl") == []
        ecosystems = {a["package"]["ecosystem"] for r in any_release for a in r["affected"]}
        assert ecosystems == {"Alpine:v3.8", "Alpine:v3.10", "Alpine:v3.11"}


def test_lookup_narrows_affected_to_the_package_by_id_is_whole(db_path: Path) -> None:
    with SqliteVulnDatabase.open(db_path) as db:
        narrowed = {r["id"]: r for r in db.lookup("AlmaLinux:9", "openssl-libs")}
        record = narrowed["ALSA-2022:6224"]
        assert [a["package"]["name"] for a in record["affected"]] == ["openssl-libs"]
        [whole] = db.by_id("ALSA-2022:6224")
        assert sorted(a["package"]["name"] for a in whole["affected"]) == [
            "openssl",
            "openssl-devel",
            "openssl-libs",
            "openssl-perl",
        ]
        assert {k: v for k, v in whole.items() if k != "affected"} == {
            k: v for k, v in record.items() if k != "affected"
        }


def test_by_id_and_by_alias(db_path: Path) -> None:
    with SqliteVulnDatabase.open(db_path) as db:
        [by_id] = db.by_id("PYSEC-2014-8")
        assert db.by_id("GHSA-8r7q-cvjq-x353") == [by_id]
        assert [r["id"] for r in db.by_id("CVE-2014-1402")] == ["PYSEC-2014-8"]
        assert [r["id"] for r in db.by_id("CVE-2019-1551")] == ["ALPINE-CVE-2019-1551"]
        assert db.by_id("NO-SUCH-ID") == []


def test_describe(db_path: Path) -> None:
    with SqliteVulnDatabase.open(db_path) as db:
        facts = db.describe()
    assert facts["format_version"] == FORMAT_VERSION
    assert len(facts["osv_schema_sha256"]) == 64
    assert [s["name"] for s in facts["sources"]] == sorted(str(p.resolve()) for p in (ALMA, GOLANG, PYPA, SECDB))
    assert facts["withdrawn_records"] == 2  # GO-2022-0617, PYSEC-2023-73


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("2021-07-05T00:01:25Z", "2021-07-05T00:01:25.000000000Z"),
        ("2021-07-05T00:01:25.632991Z", "2021-07-05T00:01:25.632991000Z"),
        ("2021-07-05T00:01:25.1234567891Z", "2021-07-05T00:01:25.123456789Z"),
        ("yesterday", None),
    ],
)
def test_modified_key_orders_as_time(value: str, key: str | None) -> None:
    assert modified_key(value) == key


def test_lookup_of_a_500_package_inventory(tmp_path: Path) -> None:
    """A smoke test of the hot path (timings belong to benchmarks/db_import_speed.py): 500 lookups over names
    the database holds, plus names it does not, all answered with records of the package asked for."""
    path = tmp_path / "v.sqlite"
    import_sources(path, [str(PYPA), str(GOLANG), str(ALMA), str(SECDB), str(snapshot_dir() / "almalinux-osv")])
    conn = sqlite3.connect(path)
    keys = conn.execute("SELECT DISTINCT base_ecosystem, name_key FROM affected_index").fetchall()
    conn.close()
    random.seed(500)
    inventory = random.sample(keys, 400) + [("PyPI", f"not-a-package-{n}") for n in range(100)]
    releases = {"Alpine": "Alpine:v3.11", "AlmaLinux": "AlmaLinux:9"}
    with SqliteVulnDatabase.open(path) as db:
        found = 0
        for base, name in inventory:
            records = db.lookup(releases.get(base, base), name)
            found += bool(records)
            for record in records:
                assert record["affected"] and all(a["package"]["name"] for a in record["affected"])
        assert found == 400
