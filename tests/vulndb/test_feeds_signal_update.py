"""`db update` of the CVE feeds (CISA KEV, FIRST EPSS, the CVE list's bulk archive) against a local server
(127.0.0.1 only) serving the real fixtures: conditional requests, replacement of a changed feed, and the
all-or-nothing swap that a corrupt feed never half-writes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb import cve_archive
from scanner.vulndb.download import fetch
from scanner.vulndb.errors import FeedError
from scanner.vulndb.exploitation import parse_epss, parse_kev
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from scanner.vulndb.update import DEFAULT_SIGNAL_FEEDS, SignalUrls, update
from tests.httpserving import serving
from tests.vulndb.feedtools import PYPA, Feed, FeedServer, records_in, run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEV = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"
EPSS_FILE = next((FIXTURES / "epss").glob("epss_scores-*.csv*"))  # a slice of a dated file, plain or gzipped
EPSS = gzip.decompress(EPSS_FILE.read_bytes()) if EPSS_FILE.suffix == ".gz" else EPSS_FILE.read_bytes()
CVE5 = sorted((FIXTURES / "cve5").glob("CVE-*.json"))
ASSET = "2025-08-25_all_CVEs_at_midnight.zip.zip"
RELEASE_PATH = "/repos/CVEProject/cvelistV5/releases/latest"
ALL = ["kev", "epss", "cve"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bulk_archive(records: list[Path]) -> bytes:
    """The shape of cvelistV5's release asset: a zip holding `cves.zip`, which holds `cves/<year>/<n>xxx/…json`."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in records:
            year, number = path.stem.split("-")[1:]
            archive.writestr(f"cves/{year}/{number[:-3]}xxx/{path.name}", path.read_bytes())
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("cves.zip", inner.getvalue())
    return outer.getvalue()


def serve(server: FeedServer, path: str, body: bytes, mode: str = "ok") -> Feed:
    feed = Feed(body, f'"{hashlib.sha256(body).hexdigest()[:16]}"', "Mon, 25 Aug 2025 17:04:19 GMT", mode)
    server.feeds[path] = feed
    return feed


def release(server: FeedServer, asset_url: str | None = None, name: str = ASSET) -> None:
    url = asset_url or f"{server.url}/download/{name}"
    assets = [
        {"name": "2025-08-25_delta_CVEs_at_1700Z.zip", "browser_download_url": f"{server.url}/download/delta.zip"},
        {"name": name, "browser_download_url": url},
    ]
    serve(server, RELEASE_PATH, json.dumps({"tag_name": "cve_2025-08-25_1700Z", "assets": assets}).encode())


def publish(server: FeedServer) -> None:
    serve(server, "/kev.json", KEV.read_bytes())
    serve(server, "/epss.csv.gz", gzip.compress(EPSS))
    release(server)
    serve(server, f"/download/{ASSET}", bulk_archive(CVE5))


def urls(server: FeedServer) -> SignalUrls:
    return SignalUrls(f"{server.url}/kev.json", f"{server.url}/epss.csv.gz", f"{server.url}{RELEASE_PATH}")


def rows(db_path: Path, query: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


@pytest.fixture
def updated(tmp_path: Path, feed_server: FeedServer) -> Iterator[Path]:
    """A database after a first update of all three feeds."""
    publish(feed_server)
    db_path = tmp_path / "v.sqlite"
    update(db_path, signals=ALL, signal_urls=urls(feed_server))
    yield db_path


def test_defaults_fetch_kev_and_epss_not_the_bulk_archive() -> None:
    assert DEFAULT_SIGNAL_FEEDS == ("kev", "epss")
    assert (
        SignalUrls().of("kev") == "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
    )
    assert SignalUrls().of("epss") == "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
    assert SignalUrls().of("cve") == "https://api.github.com/repos/CVEProject/cvelistV5/releases/latest"


def test_first_update_imports_all_three_second_gets_304s(tmp_path: Path, feed_server: FeedServer) -> None:
    publish(feed_server)
    catalog = parse_kev(KEV.read_bytes(), str(KEV))
    scores = parse_epss(EPSS, str(EPSS_FILE))
    db_path = tmp_path / "v.sqlite"

    report = update(db_path, signals=ALL, signal_urls=urls(feed_server))
    assert report.replaced
    assert [(o.name, o.result.records if o.result else None) for o in report.outcomes] == [
        ("kev", len(catalog.entries)),
        ("epss", len(scores.rows)),
        ("cve", len(CVE5)),
    ]
    with SqliteVulnDatabase.open(db_path) as db:
        facts = db.describe()
        assert facts["kev"]["entries"] == len(catalog.entries)
        assert facts["kev"]["catalog_version"] == catalog.version
        assert facts["epss"]["scores"] == len(scores.rows)
        assert facts["epss"]["score_date"] == scores.score_date
        sources = {s["name"]: s for s in facts["sources"]}
        assert sources["kev"]["feed_date"] == catalog.released[:19] + "Z"
        assert sources["epss"]["feed_date"] == f"{scores.score_date}T00:00:00Z"
        assert sources["cve"]["feed_date"] == "2025-08-25T00:00:00Z"
        assert sources["cve"]["location"] == f"{feed_server.url}/download/{ASSET}"
        for path in CVE5:
            [record] = db.by_id(f"CVE5:{path.stem}")
            assert record["aliases"] == [path.stem]
    assert all("If-None-Match" not in h for _, h in feed_server.requests)
    before, inode = digest(db_path), db_path.stat().st_ino

    feed_server.requests.clear()
    report = update(db_path, signals=ALL, signal_urls=urls(feed_server))
    assert not report.replaced
    assert [(o.name, o.result) for o in report.outcomes] == [("kev", None), ("epss", None), ("cve", None)]
    for path in ("/kev.json", "/epss.csv.gz", f"/download/{ASSET}"):
        [headers] = feed_server.headers_of(path)
        assert headers["If-None-Match"] == feed_server.feeds[path].etag
        assert headers["If-Modified-Since"] == feed_server.feeds[path].last_modified
    assert (digest(db_path), db_path.stat().st_ino) == (before, inode)  # not even rewritten
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_changed_epss_file_replaces_the_scores(updated: Path, feed_server: FeedServer) -> None:
    old = parse_epss(EPSS, str(EPSS_FILE))
    kept = old.rows[: max(1, len(old.rows) // 2)]
    # The next day's file, from the fixture's own rows: fewer CVEs, every score halved.
    lines = ["#model_version:v2025.03.14,score_date:2025-08-26T12:55:00Z", "cve,epss,percentile"]
    lines += [f"{cve},{score / 2},{percentile}" for cve, score, percentile in kept]
    serve(feed_server, "/epss.csv.gz", gzip.compress("\n".join(lines).encode()))

    report = update(updated, signals=ALL, signal_urls=urls(feed_server))
    assert [o.name for o in report.outcomes if o.result is not None] == ["epss"]
    assert sorted(rows(updated, "SELECT cve, score FROM epss")) == sorted((c, s / 2) for c, s, _ in kept)
    assert rows(updated, "SELECT value FROM meta WHERE key = 'epss_score_date'") == [("2025-08-26",)]
    assert rows(updated, "SELECT feed_date FROM sources WHERE name = 'epss'") == [("2025-08-26T00:00:00Z",)]


def _corrupt_epss(server: FeedServer) -> str:
    body = gzip.compress(EPSS.rstrip(b"\n") + b"\nCVE-2099-0001,0.5,0.5\n")
    serve(server, "/epss.csv.gz", body[:-20] + b"\0" * 20)  # whole length, damaged deflate stream and trailer
    return "feed epss: "


def _kev_not_json(server: FeedServer) -> str:
    serve(server, "/kev.json", KEV.read_bytes()[:-200])
    return "feed kev: "


def _truncated_download(server: FeedServer) -> str:
    release(server, name="2025-08-26_all_CVEs_at_midnight.zip.zip")
    serve(server, "/download/2025-08-26_all_CVEs_at_midnight.zip.zip", bulk_archive(CVE5), mode="truncate")
    return "feed cve: "


def _truncated_zip(server: FeedServer) -> str:
    release(server, name="2025-08-26_all_CVEs_at_midnight.zip.zip")
    whole = bulk_archive(CVE5)
    serve(server, "/download/2025-08-26_all_CVEs_at_midnight.zip.zip", whole[: len(whole) // 2])
    return "feed cve: "


def _empty_archive(server: FeedServer) -> str:
    release(server, name="2025-08-26_all_CVEs_at_midnight.zip.zip")
    serve(server, "/download/2025-08-26_all_CVEs_at_midnight.zip.zip", bulk_archive([]))
    return "feed cve: "


def _off_host_asset(server: FeedServer) -> str:
    release(server, asset_url=f"https://downloads.example.net/{ASSET}")
    return "feed cve: "


@pytest.mark.parametrize(
    "break_feed",
    [_corrupt_epss, _kev_not_json, _truncated_download, _truncated_zip, _empty_archive, _off_host_asset],
)
def test_a_broken_feed_leaves_the_database_byte_identical(
    updated: Path,
    feed_server: FeedServer,
    break_feed: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A feed that did change comes first, so that the copy aside has really been written to when the break comes.
    serve(feed_server, "/kev.json", KEV.read_bytes().replace(b'"catalogVersion": "', b'"catalogVersion": "9'))
    prefix = break_feed(feed_server)
    before = digest(updated)
    for name, url in (
        ("KEV_URL", f"{feed_server.url}/kev.json"),
        ("EPSS_URL", f"{feed_server.url}/epss.csv.gz"),
        ("CVE_RELEASE_URL", f"{feed_server.url}{RELEASE_PATH}"),
    ):
        monkeypatch.setenv(f"ACRGUARD_{name}", url)
    capsys.readouterr()
    assert run_cli(["db", "update", "--db", str(updated), "--feed", *ALL]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"acrguard: {prefix}")
    assert digest(updated) == before
    assert [p.name for p in updated.parent.iterdir() if p.name.endswith((".tmp", ".part", ".zip"))] == []


def test_only_cve_records_are_read_from_the_archive(tmp_path: Path) -> None:
    # The `cves/` tree zipped directly (no inner zip) is read too; its delta files are not records, and a record
    # of another kind under a CVE file name is skipped, never imported from this feed.
    osv = next(r for r in records_in(PYPA) if r["id"].startswith("PYSEC-"))
    path = tmp_path / "cves.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for record in CVE5:
            archive.writestr(f"cves/{record.name}", record.read_bytes())
        archive.writestr("cves/deltaLog.json", "[]")
        archive.writestr("cves/2099/0xxx/CVE-2099-0001.json", json.dumps(osv))
    with cve_archive.archive_records(path, "cves.zip", tmp_path) as items:
        read = {item.origin: getattr(item, "reason", None) for item in items}
    assert read == {
        **{f"cves/{record.name}": None for record in CVE5},
        "cves/2099/0xxx/CVE-2099-0001.json": "not a CVE JSON 5 record (dataType CVE_RECORD)",
    }


def test_off_host_or_plain_http_asset_urls_are_refused() -> None:
    def release_doc(url: str) -> bytes:
        return json.dumps({"assets": [{"name": ASSET, "browser_download_url": url}]}).encode()

    github = "https://github.com/CVEProject/cvelistV5/releases/download/cve_2025-08-25_1700Z/" + ASSET
    default = cve_archive.DEFAULT_RELEASE_URL
    assert cve_archive.latest_asset(release_doc(github), default).date == "2025-08-25"
    for bad in (
        f"https://example.com/{ASSET}",
        f"http://github.com/x/{ASSET}",
        f"https://github.com.example.com/{ASSET}",
        f"file:///etc/{ASSET}",
    ):
        with pytest.raises(FeedError, match=r"not on github\.com, objects\.githubusercontent\.com over https"):
            cve_archive.latest_asset(release_doc(bad), default)
    with pytest.raises(FeedError, match=r"no <date>_all_CVEs_at_midnight\.zip\.zip asset"):
        cve_archive.latest_asset(json.dumps({"assets": []}).encode(), default)
    with pytest.raises(FeedError, match="not a GitHub release document"):
        cve_archive.latest_asset(b"<html>rate limited</html>", default)


def test_off_host_asset_is_never_contacted(tmp_path: Path, feed_server: FeedServer) -> None:
    publish(feed_server)
    release(feed_server, asset_url=f"http://localhost:{feed_server.url.rsplit(':', 1)[1]}/download/{ASSET}")
    with pytest.raises(FeedError, match=r"^feed cve: .*not on github\.com"):
        update(tmp_path / "v.sqlite", signals=["cve"], signal_urls=urls(feed_server))
    assert [p for p, _ in feed_server.requests] == [RELEASE_PATH]
    assert not (tmp_path / "v.sqlite").exists()


class _Redirect(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/here":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        self.send_response(302)
        self.send_header("Location", "http://192.0.2.1/epss.csv.gz" if self.path == "/away" else "/here")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_redirects_are_followed_only_to_https(tmp_path: Path) -> None:
    with serving(_Redirect) as url:
        # 192.0.2.1 (TEST-NET-1) is never reached: the redirect is refused before any connection.
        refused = pytest.raises(FeedError, match=r"redirect to http://192\.0\.2\.1/epss\.csv\.gz refused")
        with refused, fetch(f"{url}/away", tmp_path):
            pass
        # Loopback to loopback (a test server, a local mirror) may stay plain http.
        with fetch(f"{url}/loop", tmp_path) as fetched:
            assert fetched.path is not None and fetched.path.read_bytes() == b"ok"


def test_cli_update_names_the_new_feeds(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(feed_server)
    monkeypatch.setenv("ACRGUARD_KEV_URL", f"{feed_server.url}/kev.json")
    monkeypatch.setenv("ACRGUARD_EPSS_URL", f"{feed_server.url}/epss.csv.gz")
    db = str(tmp_path / "v.sqlite")
    assert run_cli(["db", "update", "--db", db, "--feed", "kev", "epss"]) == 0
    out = capsys.readouterr().out
    entries = len(parse_kev(KEV.read_bytes(), str(KEV)).entries)
    assert f"kev: {entries:,} records, 0 skipped" in out and "epss: " in out and "(updated)" in out
    assert not feed_server.headers_of("/download/")  # the bulk archive only when named
    assert run_cli(["db", "update", "--db", db, "--feed", "kev", "epss"]) == 0
    out = capsys.readouterr().out
    assert "kev: unchanged" in out and "epss: unchanged" in out and "(unchanged)" in out
