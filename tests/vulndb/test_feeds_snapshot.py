"""The bundled snapshot: small, documented, built once into a cached database, and the fallback of scans."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from scanner.model.settings import Settings
from scanner.vulndb.errors import DatabaseMissingError
from scanner.vulndb.location import open_scan_database, scan_db_path, writable_db_path
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.snapshot import default_db_path, snapshot_digest, snapshot_dir
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.vulndb.feedtools import GOLANG


def test_snapshot_is_small_and_every_file_is_documented() -> None:
    root = snapshot_dir()
    files = [p for p in root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    sources = (root / "SOURCES.md").read_text()
    for path in files:
        if path.name != "SOURCES.md":
            assert path.stem in sources or path.name in sources, f"{path.relative_to(root)} not in SOURCES.md"


def test_built_once_under_the_cache_keyed_by_content(_isolated_home: Path) -> None:
    path = default_db_path()
    assert path.parent == _isolated_home / ".cache" / "acrguard"
    assert snapshot_digest()[:16] in path.name
    stamp = path.stat().st_mtime_ns
    default_db_path.cache_clear()
    assert default_db_path() == path
    assert path.stat().st_mtime_ns == stamp  # found, not rebuilt


def test_stale_snapshot_databases_are_removed(_isolated_home: Path) -> None:
    cache = _isolated_home / ".cache" / "acrguard"
    cache.mkdir(parents=True)
    (cache / "osv-snapshot-0000000000000000.sqlite").write_bytes(b"old")
    path = default_db_path()
    assert sorted(p.name for p in cache.iterdir()) == [path.name]


def test_read_only_home_falls_back_to_the_temp_dir(
    _isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (_isolated_home / ".cache").write_text("a file where the cache directory would be")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = default_db_path()
    assert path.parent.parent == tmp_path
    with SqliteVulnDatabase.open(path) as db:
        assert db.describe()["total_records"] > 2000


def test_snapshot_contents() -> None:
    with SqliteVulnDatabase.open(default_db_path()) as db:
        facts = db.describe()
        assert [s["name"] for s in facts["sources"]] == [
            "snapshot:almalinux-osv",
            "snapshot:alpine-secdb",
            "snapshot:debian-osv",
            "snapshot:golang-vulndb",
            "snapshot:nvd",
            "snapshot:pypa-advisory-database",
            "snapshot:ubuntu-osv",
        ]
        assert [s["skipped_count"] for s in facts["sources"]] == [0, 28, 0, 0, 0, 0, 0]  # secdb lines without a CVE id
        counts = {s["name"]: s["record_count"] for s in facts["sources"]}
        # NVD's records of the Alpine 3.10 sample's four CVEs: CVSS only, found by their CVE id.
        assert counts["snapshot:nvd"] == 4
        assert [r["id"] for r in db.by_id("CVE-2019-14697")] == ["ALPINE-CVE-2019-14697", "NVD:CVE-2019-14697"]
        assert counts["snapshot:pypa-advisory-database"] == 47
        assert counts["snapshot:golang-vulndb"] == 45
        assert counts["snapshot:almalinux-osv"] == 34
        assert "ALPINE-CVE-2019-1551" in {r["id"] for r in db.lookup("Alpine:v3.11", "openssl")}
        assert len(db.lookup("PyPI", "Jinja2")) == 5
        for ecosystem, name in [
            ("PyPI", "requests"),
            ("PyPI", "urllib3"),
            ("Go", "stdlib"),
            ("Go", "golang.org/x/net"),
            ("AlmaLinux:9", "openssl-libs"),
            ("AlmaLinux:9", "libcurl"),
            ("AlmaLinux:9", "glibc"),
            ("Alpine:v3.10", "busybox"),
        ]:
            assert db.lookup(ecosystem, name), (ecosystem, name)


def test_scan_database_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing chosen, no default file: the snapshot.
    assert scan_db_path() == default_db_path()
    # The default file, once it exists.
    default = writable_db_path()
    import_sources(default, [str(GOLANG)])
    assert scan_db_path() == default
    # An explicit choice wins, and must exist.
    missing = tmp_path / "missing.sqlite"
    assert scan_db_path(str(missing)) == missing
    monkeypatch.setenv("ACRGUARD_DB", str(missing))  # chosen as --db is
    assert scan_db_path(Settings.from_environ().db) == missing
    with pytest.raises(DatabaseMissingError):
        open_scan_database(Settings.from_environ().db)
