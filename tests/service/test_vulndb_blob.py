"""The vulnerability database published as a blob: the update timer uploads it through the real app index, a
reader (another process's `Clients`, as the Container Apps worker) downloads and verifies it; against a real
Azurite blob service, with its well-known account key standing in for the managed identity (Azurite takes no
Entra tokens over plain http), the feeds from a local feed server."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.functions.timer import TimerRequest
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient

import scanner.service.vulndb_blob as vulndb_blob
from scanner.model.settings import Settings, SettingsError
from scanner.service.config import Clients, clients
from scanner.service.vulndb_blob import DbBlob, DbBlobError, Manifest, check_blob_url, manifest_url
from tests.app_index import app_functions
from tests.queue.azurite_server import DEV_ACCOUNT, DEV_KEY, running_azurite_blob
from tests.vulndb.feedtools import PYPA, Feed, FeedServer, records_in, running_feed_server, zip_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def account_key() -> AzureNamedKeyCredential:
    return AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY)


@pytest.fixture(scope="module")
def blob_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_azurite_blob(tmp_path_factory.mktemp("azurite-blob")) as url:
        yield url


@pytest.fixture
def blob_url(blob_service: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh container's `vulndb.sqlite` blob URL; the managed identity replaced by the account key."""
    monkeypatch.setattr(vulndb_blob, "identity_credential", account_key)
    container = f"vulndb-{uuid.uuid4().hex[:12]}"
    with BlobServiceClient(blob_service, credential=account_key()) as service:
        service.create_container(container)
    yield f"{blob_service}/{container}/vulndb.sqlite"


@pytest.fixture
def feeds(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    with running_feed_server() as server:
        kev = (FIXTURES / "kev" / "known_exploited_vulnerabilities.json").read_bytes()
        epss = next((FIXTURES / "epss").glob("epss_scores-*.csv*")).read_bytes()
        stamp = "Mon, 25 Aug 2025 17:04:19 GMT"
        server.feeds["/kev.json"] = Feed(kev, '"kev-1"', stamp)
        server.feeds["/epss.csv"] = Feed(epss, '"epss-1"', stamp)
        server.publish("PyPI", zip_of(records_in(PYPA)))
        monkeypatch.setenv("ACRGUARD_OSV_BASE_URL", server.url)
        monkeypatch.setenv("ACRGUARD_DB_ECOSYSTEMS", "PyPI")
        monkeypatch.setenv("ACRGUARD_KEV_URL", f"{server.url}/kev.json")
        monkeypatch.setenv("ACRGUARD_EPSS_URL", f"{server.url}/epss.csv")
        yield server


@pytest.fixture
def function_app(tmp_path: Path, db_path: Path, blob_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The function app's settings: its own copy of the session's database, published to `blob_url`."""
    own = tmp_path / "function" / "vulndb.sqlite"
    own.parent.mkdir()
    shutil.copyfile(db_path, own)
    monkeypatch.setenv("ACRGUARD_DB", str(own))
    monkeypatch.setenv("ACRGUARD_DB_BLOB_URL", blob_url)
    monkeypatch.setenv("ACRGUARD_STORE", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("ACRGUARD_QUEUE", str(tmp_path / "queue.sqlite"))
    clients.close()
    yield own
    clients.close()


def run_db_update() -> None:
    handler: Callable[..., Any] = app_functions()["db_update"].get_user_function()
    handler(TimerRequest(past_due=False))


def reader(tmp_path: Path, blob_url: str, **more: str) -> Clients:
    """Another process's clients (the worker's): its own local copy, the same blob."""
    environ = {"ACRGUARD_DB": str(tmp_path / "worker" / "vulndb.sqlite"), "ACRGUARD_DB_BLOB_URL": blob_url, **more}
    return Clients(Settings.from_environ(environ))


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256(path: Path) -> str:
    return digest_of(path.read_bytes())


def announce(blob_url: str, data: bytes) -> None:
    """A manifest naming `data` as the published database."""
    with blob_client(blob_url, "vulndb.json") as manifest:
        manifest.upload_blob(Manifest(digest_of(data), len(data), "now").to_json(), overwrite=True)


def blob_client(blob_url: str, name: str = "vulndb.sqlite") -> Any:
    container_url, _, _ = blob_url.rpartition("/")
    service_url, _, container = container_url.rpartition("/")
    return BlobServiceClient(service_url, credential=account_key()).get_blob_client(container, name)


def test_the_timer_publishes_and_a_reader_downloads_what_it_published(
    function_app: Path, feeds: FeedServer, blob_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scanner")
    run_db_update()
    published = sha256(function_app)
    with blob_client(blob_url) as blob:
        properties = blob.get_blob_properties()
        assert properties.metadata == {"sha256": published.split(":")[1]}
        assert properties.size == function_app.stat().st_size
        etag = properties.etag
    with blob_client(blob_url, "vulndb.json") as manifest_blob:
        manifest = json.loads(manifest_blob.download_blob().readall())
    assert set(manifest) == {"digest", "size", "updated"}
    assert (manifest["digest"], manifest["size"]) == (published, function_app.stat().st_size)
    assert len(clients.db().lookup("PyPI", "requests")) == 5  # the function reads its own update

    worker = reader(tmp_path, blob_url)
    try:
        db = worker.db()
        assert db.path == tmp_path / "worker" / "vulndb.sqlite"
        assert sha256(db.path) == published
        assert len(db.lookup("PyPI", "requests")) == 5
        assert worker.db() is db  # checked again only after ACRGUARD_DB_BLOB_CHECK_SECONDS
    finally:
        worker.close()

    run_db_update()  # every feed unchanged: nothing uploaded again
    with blob_client(blob_url) as blob:
        assert blob.get_blob_properties().etag == etag
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_tampered_blob_is_refused_and_the_verified_copy_kept(
    function_app: Path, feeds: FeedServer, blob_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_db_update()
    worker = reader(tmp_path, blob_url, ACRGUARD_DB_BLOB_CHECK_SECONDS="0")
    try:
        verified = sha256(worker.db().path)
        # A new database announced (the manifest is the publisher's), but the blob holds other bytes of that size.
        genuine = bytearray(function_app.read_bytes())
        genuine[-1] ^= 0xFF
        tampered = bytearray(genuine)
        tampered[-2] ^= 0xFF
        announce(blob_url, bytes(genuine))
        with blob_client(blob_url) as blob:
            blob.upload_blob(bytes(tampered), overwrite=True)
        caplog.set_level(logging.WARNING, logger="scanner")
        db = worker.db()
        assert sha256(db.path) == verified
        assert len(db.lookup("PyPI", "requests")) == 5
        (line,) = [r.getMessage() for r in caplog.records if r.name == "scanner.service.vulndb_blob"]
        assert line.startswith(f"database blob {blob_url}: digest sha256:")
        assert line.endswith(
            f"is not the manifest's {digest_of(bytes(genuine))}: refused; scanning with the verified copy"
            f" {db.path} ({verified})"
        )
        assert not list(db.path.parent.glob(".download-*"))  # the refused download is gone

        # A blob longer than its manifest says is refused before it is read.
        with blob_client(blob_url) as blob:
            blob.upload_blob(bytes(genuine) + b"more", overwrite=True)
        caplog.clear()
        assert sha256(worker.db().path) == verified
        assert "bytes where its manifest says" in caplog.records[-1].getMessage()
    finally:
        worker.close()

    # A new reader with no copy of its own has nothing verified to fall back on: it fails closed.
    fresh = reader(tmp_path / "fresh", blob_url)
    try:
        with pytest.raises(DbBlobError, match=f"^database blob {blob_url}: .*no verified copy at "):
            fresh.db()
    finally:
        fresh.close()


def test_no_copy_and_an_unreachable_blob_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vulndb_blob, "identity_credential", account_key)
    url = f"http://127.0.0.1:9/{DEV_ACCOUNT}/vulndb/vulndb.sqlite"  # the discard port: nothing listens
    local = tmp_path / "worker" / "vulndb.sqlite"
    local.parent.mkdir()
    local.write_bytes(b"a file nobody verified")
    worker = reader(tmp_path, url)
    try:
        with pytest.raises(DbBlobError) as raised:
            worker.db()
        message = str(raised.value)
        assert message.startswith(f"database blob {url}: manifest unreadable: ")
        assert message.endswith(f"; no verified copy at {local} to scan with")
        assert "\n" not in message
        # Never the bundled snapshot instead, nor the unverified file.
        assert local.read_bytes() == b"a file nobody verified"
    finally:
        worker.close()


def test_a_blob_over_the_size_bound_is_not_downloaded(
    db_path: Path, blob_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = DbBlob(blob_url, db_path, credential=account_key())
    with publisher.writing():
        assert publisher.publish() is True
    worker = reader(tmp_path, blob_url, ACRGUARD_DB_BLOB_MAX_MB="0")
    try:
        with pytest.raises(DbBlobError, match=r"bytes, over the bound of 0; no verified copy"):
            worker.db()
        assert not (tmp_path / "worker" / "vulndb.sqlite").exists()
    finally:
        worker.close()
        publisher.close()


def test_the_managed_identity_signs_in_by_default(tmp_path: Path) -> None:
    # Construction only: a token request would reach for Azure's identity endpoints.
    blob = DbBlob("https://acrguarddb.blob.core.windows.net/vulndb/vulndb.sqlite", tmp_path / "vulndb.sqlite")
    try:
        assert isinstance(blob._blob.credential, DefaultAzureCredential)
        assert blob._manifest.credential is blob._blob.credential
        assert blob._manifest.url == "https://acrguarddb.blob.core.windows.net/vulndb/vulndb.json"
        assert (blob._blob.account_name, blob._blob.container_name, blob._blob.blob_name) == (
            "acrguarddb",
            "vulndb",
            "vulndb.sqlite",
        )
    finally:
        blob.close()


def test_blob_urls_and_manifests() -> None:
    assert manifest_url("https://a.blob.core.windows.net/c/dir/vulndb.sqlite") == (
        "https://a.blob.core.windows.net/c/dir/vulndb.json"
    )
    assert manifest_url("https://a.blob.core.windows.net/c/vulndb") == "https://a.blob.core.windows.net/c/vulndb.json"
    for bad in (
        "https://a.blob.core.windows.net/vulndb.sqlite",  # no container
        "https://a.blob.core.windows.net/c/vulndb.sqlite?sv=2024&sig=secret",  # a SAS token is a key
        "ftp://a.blob.core.windows.net/c/vulndb.sqlite",
    ):
        with pytest.raises(DbBlobError) as raised:
            check_blob_url(bad)
        assert "secret" not in str(raised.value)
    digest = "sha256:" + "ab" * 32
    assert Manifest.parse(Manifest(digest, 3, "now").to_json(), "w") == Manifest(digest, 3, "now")
    for data, message in (
        (b"[]", "is not a JSON object"),
        (b"{", "is not JSON"),
        (b'{"digest": "md5:00", "size": 1}', "digest is not sha256"),
        (json.dumps({"digest": digest, "size": -1}).encode(), "size is not a whole number"),
        (json.dumps({"digest": digest, "size": True}).encode(), "size is not a whole number"),
        (b" " * (vulndb_blob.MANIFEST_MAX_BYTES + 1), "larger than"),
    ):
        with pytest.raises(DbBlobError, match=f"^w: manifest {message}"):
            Manifest.parse(data, "w")


def test_the_blob_url_setting_refuses_keys_without_quoting_them() -> None:
    url = "https://a.blob.core.windows.net/vulndb/vulndb.sqlite"
    assert Settings.from_environ({"ACRGUARD_DB_BLOB_URL": url}).db_blob_url == url
    assert Settings.from_environ({}).db_blob_url == ""
    for bad in (f"{url}?sv=2024&sig=SECRET", "https://user:SECRET@a.blob.core.windows.net/c/b", "https://a/b"):
        with pytest.raises(SettingsError, match=r"^ACRGUARD_DB_BLOB_URL: ") as raised:
            Settings.from_environ({"ACRGUARD_DB_BLOB_URL": bad})
        assert "SECRET" not in str(raised.value)


def test_a_reader_moves_to_each_newly_published_database(
    db_path: Path, blob_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two publications: the reader's clients reopen the new file after each, and a later process trusts the
    copy its predecessor verified without downloading it again."""
    source = tmp_path / "publisher" / "vulndb.sqlite"
    source.parent.mkdir()
    shutil.copyfile(db_path, source)
    publisher = DbBlob(blob_url, source, credential=account_key())
    worker = reader(tmp_path, blob_url, ACRGUARD_DB_BLOB_CHECK_SECONDS="0")
    try:
        with publisher.writing():
            assert publisher.publish() is True
        first = worker.db()
        assert sha256(first.path) == sha256(source)

        with sqlite3.connect(source) as conn:  # a new version of the database (any change will do)
            conn.execute("CREATE TABLE republished (n INTEGER)")
        conn.close()
        with publisher.writing():
            assert publisher.publish() is True
            assert publisher.publish() is False  # the manifest already names it
        second = worker.db()
        assert second is not first and sha256(second.path) == sha256(source)
        assert worker.db() is second
    finally:
        worker.close()
        publisher.close()

    caplog.set_level(logging.INFO, logger="scanner")
    later = reader(tmp_path, blob_url)
    try:
        assert sha256(later.db().path) == sha256(source)
        assert not [r for r in caplog.records if "downloaded" in r.getMessage()]
    finally:
        later.close()
