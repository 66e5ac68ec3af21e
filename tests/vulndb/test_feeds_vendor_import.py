"""`db import` of the vendor feeds' real files: updateinfo (.xml.gz), OVAL (.xml, .xml.bz2) and Wolfi/Chainguard
secdb JSON, as directories, files and URLs; what the database then finds."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.vulndb.feedtools import FeedServer, run_cli
from tests.vulndb.vendorfeeds import AL2_TWO, ALAS, ELSA, ELSA_OL5_BZ2, WOLFI, WOLFI_SECDB, serve


def test_cli_imports_each_fixture_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "v.sqlite"
    assert run_cli(["db", "import", "--db", str(db), str(ALAS), str(ELSA), str(WOLFI)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"{ALAS.resolve()}: 4 records, 1 skipped")  # repomd.xml is no advisory document
    assert lines[1].startswith(f"{ELSA.resolve()}: 4 records, 1 skipped")  # the ksplice-only ELSA
    assert lines[2].startswith(f"{WOLFI.resolve()}: 56 records, 0 skipped")  # Wolfi 53, Chainguard 3
    assert "repomd.xml: <repomd> is neither a yum updateinfo nor an OVAL document" in captured.err
    assert "ELSA-2021-9151 (elsa-2021-9151-ksplice-ol8.xml): ksplice packages only, not converted" in captured.err
    with SqliteVulnDatabase.open(db) as opened:
        assert [r["id"] for r in opened.lookup("Amazon Linux:2", "java-1.8.0-openjdk")] == ["ALAS2-2018-949"]
        assert [r["id"] for r in opened.lookup("Amazon Linux:2023", "rsyslog")] == ["ALAS2023-2023-001"]
        assert [r["id"] for r in opened.lookup("Oracle Linux:8", "osbuild")] == ["ELSA-2024-2961"]
        assert [r["id"] for r in opened.lookup("Oracle Linux:7", "rsyslog")] == ["ELSA-2022-4803"]
        assert [r["id"] for r in opened.lookup("Wolfi", "zlib")] == ["WOLFI-CVE-2018-25032", "WOLFI-CVE-2022-37434"]
        assert [r["id"] for r in opened.lookup("Chainguard", "binutils")] == [
            "CHAINGUARD-CVE-2022-38126",
            "CHAINGUARD-CVE-2022-38128",
            "CHAINGUARD-CVE-2022-38533",
        ]
        assert opened.lookup("Wolfi", "coreutils") == []  # listed under "0" only: never affected
        (elsa,) = opened.by_id("ELSA-2024-2961")
        assert elsa["related"] == ["CVE-2024-2307"]


def test_reimport_is_idempotent_and_a_trimmed_feed_removes_what_it_no_longer_lists(tmp_path: Path) -> None:
    db = tmp_path / "v.sqlite"
    feed = tmp_path / "feed"
    feed.mkdir()
    shutil.copy(AL2_TWO, feed / "updateinfo.xml.gz")
    shutil.copy(ALAS / "al2-updateinfo-1-item.xml.gz", feed / "extra.xml.gz")
    [first] = import_sources(db, [str(feed)])
    [again] = import_sources(db, [str(feed)])
    assert (first.records, first.written, again.records, again.written, again.removed) == (3, 3, 3, 3, 0)
    (feed / "extra.xml.gz").unlink()
    [trimmed] = import_sources(db, [str(feed)])
    assert (trimmed.records, trimmed.removed) == (2, 1)
    with SqliteVulnDatabase.open(db) as opened:
        assert opened.by_id("ALAS2-2018-939") == []


def test_single_files_bzip2_and_json(tmp_path: Path) -> None:
    db = tmp_path / "v.sqlite"
    oval, wolfi = import_sources(db, [str(ELSA_OL5_BZ2), str(WOLFI_SECDB)])
    assert (oval.kind, oval.records, oval.skipped) == ("file", 1, 0)
    assert (wolfi.kind, wolfi.records, wolfi.skipped) == ("file", 53, 0)


def test_url_to_an_updateinfo_named_by_its_checksum(tmp_path: Path, feed_server: FeedServer) -> None:
    # Served under a name that says nothing (as repomd's checksum-named files): the content decides.
    serve(feed_server, "/repodata/0123abcd-updateinfo", AL2_TWO.read_bytes())
    [result] = import_sources(tmp_path / "v.sqlite", [f"{feed_server.url}/repodata/0123abcd-updateinfo"])
    assert (result.kind, result.records, result.skipped) == ("url", 2, 0)


def ids(records: list[Any]) -> list[str]:
    return sorted(r["id"] for r in records)


def test_osv_records_and_converted_records_side_by_side(tmp_path: Path) -> None:
    # Converted records do not pass the OSV validator, and need not: imported OSV records still must.
    db = tmp_path / "v.sqlite"
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": "no"}')
    osv, feed = import_sources(db, [str(bad), str(AL2_TWO)])
    assert (osv.records, osv.skipped) == (0, 1) and "not a valid OSV record" in osv.warnings[0]
    assert feed.records == 2
    with SqliteVulnDatabase.open(db) as opened:
        assert ids(opened.lookup("Amazon Linux:2", "qemu-img")) == ["ALAS2-2018-942"]
