"""A queue named by its service URL and signed in with a credential object instead of a connection string.

In Azure the credential is DefaultAzureCredential (the managed identity): building one reaches no network, so
here it is only checked to be what the clients are built with. The URL path itself runs for real against
Azurite's well-known account, signed in with an account-key credential (Azurite takes no Entra tokens over
plain http)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.identity import DefaultAzureCredential

import scanner.queue.factory as factory
from scanner.model.settings import Settings
from scanner.queue import QueueError, ScanQueue, open_queue
from scanner.queue.azure_queue import AzureStorageQueue
from scanner.service.config import Clients
from tests.queue.azurite_server import DEV_ACCOUNT, DEV_KEY
from tests.queue.support import make_request


def queue_endpoint(connection_string: str) -> str:
    """Azurite's queue service URL (`http://127.0.0.1:PORT/devstoreaccount1`), from its connection string."""
    fields = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    return fields["QueueEndpoint"]


@pytest.fixture
def by_url(azurite: str, queue_name: str) -> Iterator[ScanQueue]:
    credential = AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY)
    with open_queue(queue_endpoint(azurite), queue_name, max_attempts=2, credential=credential) as queue:
        yield queue


def test_a_service_url_opens_storage_queues_with_the_managed_identity() -> None:
    with open_queue("https://acrguardq.queue.core.windows.net/", "scan-requests") as queue:
        assert isinstance(queue, AzureStorageQueue)
        for client in (queue._main, queue._poison):
            assert client.account_name == "acrguardq"
            assert isinstance(client.credential, DefaultAzureCredential)
        assert queue._main.url == "https://acrguardq.queue.core.windows.net/scan-requests"
        assert queue._poison.url == "https://acrguardq.queue.core.windows.net/scan-requests-poison"


def test_the_default_credential_is_asked_for_once_per_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []

    def credential() -> object:
        made.append(DefaultAzureCredential())
        return made[-1]

    monkeypatch.setattr(factory, "identity_credential", credential)
    with open_queue("https://acct.queue.core.windows.net", "jobs") as queue:
        assert isinstance(queue, AzureStorageQueue)
        assert queue._main.credential is made[0] and queue._poison.credential is made[0]
    assert len(made) == 1


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("https://acct.queue.core.windows.net/scan-requests", "not a queue"),
        ("https://acct.queue.core.windows.net?sv=2020&sig=abc", "no more"),
        ("https://user:pw@acct.queue.core.windows.net", "no more"),
        ("http://acct.queue.core.windows.net", "over https"),
        ("http://127.0.0.1:10001/devstoreaccount1/extra", "not a queue"),
        ("https://acct.queue.core.windows.net:99999", "not a queue service URL"),
    ],
)
def test_bad_service_urls(location: str, message: str) -> None:
    with pytest.raises(QueueError, match=message) as raised:
        open_queue(location, "q12", credential=AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY))
    assert "sig=" not in str(raised.value)  # a SAS token is never echoed


def test_the_url_path_against_azurite(by_url: ScanQueue, azurite: str, queue_name: str) -> None:
    """Send, lease, retry, dead-letter and requeue through the URL-opened queue; the connection-string-opened
    queue on the same account sees the same messages."""
    one, two = make_request(1), make_request(2)
    by_url.send(one)
    by_url.send(two)
    with open_queue(azurite, queue_name, max_attempts=2) as by_key:
        (first,) = by_key.receive(1, visibility_timeout=30)
        assert first.request == one
        by_key.complete(first)
    (second,) = by_url.receive(1, visibility_timeout=30)
    assert second.request == two
    assert by_url.fail(second, "registry unreachable") is False  # first attempt: retried
    (again,) = by_url.receive(1, visibility_timeout=30)
    assert again.dequeue_count == 2
    assert by_url.fail(again, "registry unreachable") is True  # the last attempt: dead-lettered
    (letter,) = by_url.dead_letters()
    assert (letter.error, letter.attempts) == ("registry unreachable", 2)
    by_url.requeue_dead_letter(letter.id)
    assert by_url.dead_letters() == []
    (requeued,) = by_url.receive(1, visibility_timeout=30)
    assert requeued.request == two
    by_url.complete(requeued)
    assert by_url.receive(1, visibility_timeout=1) == []


def test_a_wrong_account_key_is_a_queue_error(azurite: str, queue_name: str) -> None:
    wrong = AzureNamedKeyCredential(DEV_ACCOUNT, "X" + DEV_KEY[1:])
    with (
        open_queue(queue_endpoint(azurite), queue_name, credential=wrong) as queue,
        pytest.raises(QueueError, match=f"queue {queue_name}: create queue"),
    ):
        queue.send(make_request(3))


def test_the_service_opens_its_queues_by_url_with_the_managed_identity() -> None:
    service = Clients(Settings.from_environ({"ACRGUARD_QUEUE": "https://acrguardq.queue.core.windows.net"}))
    try:
        for queue, name in (
            (service.queue(), "scan-requests"),
            (service.dead_letters(), "acrguard-event-dead-letters"),
        ):
            assert isinstance(queue, AzureStorageQueue)
            assert queue._main.url == f"https://acrguardq.queue.core.windows.net/{name}"
            assert isinstance(queue._main.credential, DefaultAzureCredential)
    finally:
        service.close()
