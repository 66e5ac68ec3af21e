"""open_queue: which backend a location opens (no network: Azure clients connect on first use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.queue import QueueError, open_queue
from scanner.queue.azure_queue import AzureStorageQueue
from scanner.queue.sqlite_queue import SqliteQueue
from tests.queue.support import make_request


def test_sqlite_url_and_plain_path(tmp_path: Path) -> None:
    with open_queue(f"sqlite://{tmp_path}/a/q.db", "jobs") as by_url:
        assert isinstance(by_url, SqliteQueue)
        assert (by_url.path, by_url.name) == (tmp_path / "a" / "q.db", "jobs")
    with open_queue(tmp_path / "b.db") as by_path:
        assert isinstance(by_path, SqliteQueue)
        assert by_path.path == tmp_path / "b.db"


def test_sqlite_queues_sharing_a_file_are_separate(tmp_path: Path) -> None:
    with open_queue(tmp_path / "q.db", "one") as one, open_queue(tmp_path / "q.db", "two") as two:
        one.send(make_request(1))
        assert two.receive(visibility_timeout=1) == []
        assert len(one.receive(visibility_timeout=1)) == 1


@pytest.mark.parametrize(
    "connection",
    [
        "UseDevelopmentStorage=true",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        "QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;SharedAccessSignature=sv=2020",
    ],
)
def test_connection_strings_open_azure(connection: str) -> None:
    queue = open_queue(connection, "scan-requests", max_attempts=7)
    assert isinstance(queue, AzureStorageQueue)
    assert (queue.name, queue.max_attempts) == ("scan-requests", 7)
    queue.close()


@pytest.mark.parametrize(
    ("location", "name", "message"),
    [
        ("", "q1", "no queue location"),
        ("postgres://db/queue", "q1", "unsupported queue location postgres://"),
        ("sqlite://host/q.db", "q1", "is not sqlite:///path"),
        ("UseDevelopmentStorage=true", "Bad_Name", "is not a Storage queue name"),
        ("UseDevelopmentStorage=true", "q" * 57, "is not a Storage queue name"),
        ("DefaultEndpointsProtocol=https;AccountName", "q12", "bad connection string"),
    ],
)
def test_bad_locations(location: str, name: str, message: str) -> None:
    with pytest.raises(QueueError, match=message):
        open_queue(location, name)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(QueueError, match="max_attempts"):
        open_queue(tmp_path / "q.db", max_attempts=0)
    with open_queue(tmp_path / "q.db") as queue:
        with pytest.raises(QueueError, match="visibility_timeout must be between 1"):
            queue.receive(visibility_timeout=0)
        with pytest.raises(QueueError, match="max_messages"):
            queue.receive(max_messages=0)


def test_unreadable_database(tmp_path: Path) -> None:
    (tmp_path / "q.db").write_bytes(b"not a database" * 100)
    with pytest.raises(QueueError, match=r"q\.db.*not a database"):
        open_queue(tmp_path / "q.db")
