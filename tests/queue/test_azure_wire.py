"""What Azure Storage Queues hold on the wire, checked with plain SDK clients against Azurite: the Functions
host's queue trigger base64-decodes bodies and writes bare bodies to `<name>-poison`."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from scanner.queue import QueueError, ScanQueue, ScanRequest, open_queue
from tests.queue.support import make_request


@pytest.fixture
def queue(azurite: str, queue_name: str) -> Iterator[ScanQueue]:
    with open_queue(azurite, queue_name) as queue:
        yield queue


def plain(azurite: str, name: str, base64_text: bool = False) -> QueueClient:
    policy = TextBase64EncodePolicy() if base64_text else None
    return QueueClient.from_connection_string(azurite, name, message_encode_policy=policy)


def test_bodies_are_base64_json_and_never_expire(queue: ScanQueue, azurite: str, queue_name: str) -> None:
    request = make_request(1)
    queue.send(request)
    with plain(azurite, queue_name) as client:
        (item,) = client.peek_messages()
    assert ScanRequest.from_json(base64.b64decode(item.content)) == request
    # The service's default time-to-live is 7 days; a backlog must not silently expire.
    assert item.expires_on is not None and item.expires_on > datetime(9000, 1, 1, tzinfo=UTC)


def test_reads_what_a_functions_queue_output_binding_writes(queue: ScanQueue, azurite: str, queue_name: str) -> None:
    request = make_request(2)
    queue.receive(visibility_timeout=1)  # creates the queues
    with plain(azurite, queue_name, base64_text=True) as client:
        client.send_message(request.to_json())
    (message,) = queue.receive(visibility_timeout=30)
    assert message.request == request


def test_a_body_that_is_not_base64_is_dead_lettered(queue: ScanQueue, azurite: str, queue_name: str) -> None:
    queue.receive(visibility_timeout=1)
    with plain(azurite, queue_name) as client:
        client.send_message("{not base64}")
    assert queue.receive(visibility_timeout=30) == []
    (letter,) = queue.dead_letters()
    assert (letter.raw, letter.attempts) == ("{not base64}", 1)
    assert letter.error == "scan request: body is not base64-encoded UTF-8 text"


def test_poison_messages_from_the_functions_host(queue: ScanQueue, azurite: str, queue_name: str) -> None:
    request = make_request(3)
    queue.receive(visibility_timeout=1)
    with plain(azurite, f"{queue_name}-poison", base64_text=True) as client:
        client.send_message(request.to_json())  # the host moves the bare body, with no error
    (letter,) = queue.dead_letters()
    assert letter.raw == request.to_json()
    assert "no error recorded" in letter.error
    queue.requeue_dead_letter(letter.id)
    (message,) = queue.receive(visibility_timeout=30)
    assert message.request == request


def test_service_errors_become_queue_errors(azurite: str, queue_name: str) -> None:
    wrong_key = azurite.replace("AccountKey=Eby8", "AccountKey=Xby8")
    with open_queue(wrong_key, queue_name) as queue, pytest.raises(QueueError, match=queue_name) as caught:
        queue.send(make_request(4))
    assert "create queue: AuthenticationFailed: Server failed to authenticate" in str(caught.value)
    assert "\n" not in str(caught.value)
