"""`db update` of the vendor feeds against a local server (127.0.0.1) serving the real fixture files in the
publishers' layouts: Amazon's mirror list → repomd.xml → updateinfo, Oracle's OVAL .xml.bz2, Wolfi's
security.json. Conditional requests, the all-or-nothing swap, and broken feeds that keep the database."""

from __future__ import annotations

import bz2
import gzip
import hashlib
from pathlib import Path

import pytest

from scanner.vulndb import xmlstream
from scanner.vulndb.errors import FeedError
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from scanner.vulndb.update import MIRROR_LIST, VENDOR_FEEDS, VendorFeed, update
from tests.vulndb.feedtools import FeedServer, run_cli
from tests.vulndb.vendorfeeds import AL2_TWO, AL2023, ELSA_PER_ARCH, REPOMD, WOLFI_SECDB, serve

AL2_MIRROR = "/2/core/2.0/x86_64/6b0225ccc542f3834c95733dcf321ab9f1e77e6ca6817469771a8af7c49efe6c"
AL2023_MIRROR = "/al2023/core/guids/c3ea7e2b5ef5c8f5dc0bc7d94a4a7c5b9e43e2e6c3a1f6f3d7a5e8c2b1d0f9e8/x86_64"


def publish(server: FeedServer) -> list[VendorFeed]:
    """The four feeds as their publishers lay them out, on the local server; the feed list pointing at them."""
    url = server.url
    serve(server, "/2/core/latest/x86_64/mirror.list", f"{url}{AL2_MIRROR}\n".encode())
    serve(server, f"{AL2_MIRROR}/repodata/repomd.xml", REPOMD.read_bytes())
    serve(server, f"{AL2_MIRROR}/repodata/updateinfo.xml.gz", AL2_TWO.read_bytes())
    # AL2023: the first mirror is down, the second serves
    serve(server, "/al2023/core/mirrors/latest/x86_64/mirror.list", f"{url}/down\n{url}{AL2023_MIRROR}/\n".encode())
    serve(server, f"{AL2023_MIRROR}/repodata/repomd.xml", REPOMD.read_bytes())
    serve(server, f"{AL2023_MIRROR}/repodata/updateinfo.xml.gz", AL2023.read_bytes())
    serve(server, "/security/oval/com.oracle.elsa-ol8.xml.bz2", bz2.compress(ELSA_PER_ARCH.read_bytes()))
    serve(server, "/os/security.json", WOLFI_SECDB.read_bytes())
    return [
        VendorFeed("alas:2", f"{url}/2/core/latest/x86_64/mirror.list", MIRROR_LIST, "2"),
        VendorFeed("alas:2023", f"{url}/al2023/core/mirrors/latest/x86_64/mirror.list", MIRROR_LIST, "2023"),
        VendorFeed("elsa:8", f"{url}/security/oval/com.oracle.elsa-ol8.xml.bz2"),
        VendorFeed("secdb:wolfi", f"{url}/os/security.json"),
    ]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_default_vendor_feeds() -> None:
    assert [f.name for f in VENDOR_FEEDS] == [
        "alas:2",
        "alas:2023",
        "elsa:7",
        "elsa:8",
        "elsa:9",
        "secdb:wolfi",
        "secdb:chainguard",
    ]
    assert VENDOR_FEEDS[0].url == "https://cdn.amazonlinux.com/2/core/latest/x86_64/mirror.list"
    assert VENDOR_FEEDS[1].url == "https://cdn.amazonlinux.com/al2023/core/mirrors/latest/x86_64/mirror.list"
    assert VENDOR_FEEDS[3].url == "https://linux.oracle.com/security/oval/com.oracle.elsa-ol8.xml.bz2"
    assert VENDOR_FEEDS[5].url == "https://packages.wolfi.dev/os/security.json"
    assert VENDOR_FEEDS[6].url == "https://packages.cgr.dev/chainguard/security.json"


def test_first_update_imports_second_is_conditional_and_changes_nothing(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feeds = publish(feed_server)
    db_path = tmp_path / "v.sqlite"
    report = update(db_path, feeds=feeds)
    assert report.replaced
    assert [(o.name, o.result.records if o.result else None) for o in report.outcomes] == [
        ("alas:2", 2),
        ("alas:2023", 1),
        ("elsa:8", 3),
        ("secdb:wolfi", 53),
    ]
    assert report.outcomes[1].url == f"{feed_server.url}{AL2023_MIRROR}/repodata/updateinfo.xml.gz"
    with SqliteVulnDatabase.open(db_path) as db:
        sources = {s["name"]: s for s in db.describe()["sources"]}
        assert sorted(sources) == ["alas:2", "alas:2023", "elsa:8", "secdb:wolfi"]
        assert {s["kind"] for s in sources.values()} == {"vendor-feed"}
        assert [r["id"] for r in db.lookup("Amazon Linux:2023", "rsyslog")] == ["ALAS2023-2023-001"]
        assert [r["id"] for r in db.lookup("Oracle Linux:8", "osbuild")] == ["ELSA-2024-2961"]
    before, inode = digest(db_path), db_path.stat().st_ino

    feed_server.requests.clear()
    report = update(db_path, feeds=feeds)
    assert not report.replaced
    assert [(o.name, o.result) for o in report.outcomes] == [
        ("alas:2", None),
        ("alas:2023", None),
        ("elsa:8", None),
        ("secdb:wolfi", None),
    ]
    # The mirror lists and repomd.xml are read again; every feed itself conditionally.
    for path in ("updateinfo.xml.gz", "elsa-ol8.xml.bz2", "security.json"):
        assert all("If-None-Match" in h for h in feed_server.headers_of(path)), path
    assert (digest(db_path), db_path.stat().st_ino) == (before, inode)
    assert leftovers(tmp_path) == []


def test_a_changed_feed_is_reimported_and_the_database_swapped(tmp_path: Path, feed_server: FeedServer) -> None:
    feeds = publish(feed_server)
    db_path = tmp_path / "v.sqlite"
    update(db_path, feeds=feeds)
    inode = db_path.stat().st_ino
    # Amazon publishes a new updateinfo under a new name; repomd.xml says which.
    new_repomd = REPOMD.read_bytes().replace(b"repodata/updateinfo.xml.gz", b"repodata/1234-updateinfo.xml.gz")
    serve(feed_server, f"{AL2_MIRROR}/repodata/repomd.xml", new_repomd)
    serve(
        feed_server,
        f"{AL2_MIRROR}/repodata/1234-updateinfo.xml.gz",
        (AL2_TWO.parent / "al2-updateinfo-1-item.xml.gz").read_bytes(),
    )
    feed_server.requests.clear()
    report = update(db_path, feeds=feeds)
    assert report.replaced and db_path.stat().st_ino != inode
    first = report.outcomes[0]
    assert (first.name, first.result.records if first.result else None) == ("alas:2", 1)
    # A new file: no validators of the old one sent for it
    assert all("If-None-Match" not in h for h in feed_server.headers_of("1234-updateinfo"))
    with SqliteVulnDatabase.open(db_path) as db:
        assert db.by_id("ALAS2-2018-949") == []  # the feed no longer lists it
        assert [r["id"] for r in db.by_id("ALAS2-2018-939")] == ["ALAS2-2018-939"]
        assert [r["id"] for r in db.lookup("Wolfi", "zlib")] == ["WOLFI-CVE-2018-25032", "WOLFI-CVE-2022-37434"]


def broken_update_keeps_the_database(tmp_path: Path, feeds: list[VendorFeed], db_path: Path) -> str:
    before = digest(db_path)
    with pytest.raises(FeedError) as caught:
        update(db_path, feeds=feeds)
    assert digest(db_path) == before
    assert leftovers(tmp_path) == []
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_corrupt_oversized_and_empty_feeds_keep_the_database(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = publish(feed_server)
    db_path = tmp_path / "v.sqlite"
    update(db_path, feeds=feeds)
    url = feed_server.url

    oval = bz2.compress(ELSA_PER_ARCH.read_bytes())
    serve(feed_server, "/security/oval/com.oracle.elsa-ol8.xml.bz2", oval[: len(oval) // 2])
    message = broken_update_keeps_the_database(tmp_path, feeds, db_path)
    assert message.startswith(f"{url}/security/oval/com.oracle.elsa-ol8.xml.bz2: ")
    assert "corrupt bzip2 data" in message

    # The same document compressed otherwise: a new ETag, so it is fetched and read
    serve(feed_server, "/security/oval/com.oracle.elsa-ol8.xml.bz2", bz2.compress(ELSA_PER_ARCH.read_bytes(), 1))
    monkeypatch.setattr(xmlstream, "MAX_XML_BYTES", 4096)
    message = broken_update_keeps_the_database(tmp_path, feeds, db_path)
    assert message.endswith("decompresses to more than 4096 bytes")
    monkeypatch.undo()

    serve(
        feed_server,
        f"{AL2_MIRROR}/repodata/updateinfo.xml.gz",
        gzip.compress(b'<?xml version="1.0" ?>\n<updates></updates>'),
    )
    message = broken_update_keeps_the_database(tmp_path, feeds, db_path)
    assert message.endswith("feed holds no advisories; keeping the 2 held")

    serve(feed_server, f"{AL2_MIRROR}/repodata/updateinfo.xml.gz", AL2_TWO.read_bytes(), mode="error")
    assert "HTTP 503" in broken_update_keeps_the_database(tmp_path, feeds, db_path)


def test_repository_metadata_that_points_elsewhere_is_refused(tmp_path: Path, feed_server: FeedServer) -> None:
    feeds = publish(feed_server)
    hostile = REPOMD.read_bytes().replace(b"repodata/updateinfo.xml.gz", b"https://elsewhere.example/updateinfo.xml.gz")
    serve(feed_server, f"{AL2_MIRROR}/repodata/repomd.xml", hostile)
    with pytest.raises(FeedError, match="is not a path in the repository"):
        update(tmp_path / "v.sqlite", feeds=feeds[:1])
    assert not (tmp_path / "v.sqlite").exists()
    serve(feed_server, "/2/core/latest/x86_64/mirror.list", b"# no mirrors today\n")
    with pytest.raises(FeedError, match="the mirror list names no mirror"):
        update(tmp_path / "v.sqlite", feeds=feeds[:1])


def test_archives_only_when_ecosystems_are_named(tmp_path: Path, feed_server: FeedServer) -> None:
    # Naming osv.dev ecosystems alone updates only those archives: no vendor feed is fetched.
    publish(feed_server)
    feed_server.publish("Go", b"")
    with pytest.raises(FeedError):
        update(tmp_path / "v.sqlite", ["Go"], base=feed_server.url)
    assert [p for p, _ in feed_server.requests] == ["/Go/all.zip"]


def test_cli_update_names_only_known_feeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run_cli(["db", "update", "--db", str(tmp_path / "v.sqlite"), "--feed", "elsa:6"])
    assert caught.value.code == 2
    assert "invalid choice: 'elsa:6'" in capsys.readouterr().err
    assert not (tmp_path / "v.sqlite").exists()
