"""The ASGI adapter of `acrguard serve` driven with ASGI messages (no server): what reaches the dispatcher,
what goes back, the body bound and the lifespan protocol. `test_serve_stack.py` runs it under uvicorn."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from scanner.localhost.asgi import AsgiApp, request_headers, request_target
from scanner.localhost.serve import Reply

OK = b"ok"


@dataclass
class Recorder:
    """A dispatcher that records its calls and the thread they ran on."""

    # A wrong Content-Length from the handler, which the adapter must not pass on.
    reply: Reply = field(default_factory=lambda: Reply(201, {"Content-Type": "text/plain", "Content-Length": "9"}, OK))
    calls: list[tuple[str, str, dict[str, str], bytes, str]] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> Reply:
        self.calls.append((method, target, dict(headers), body, host))
        self.threads.append(threading.current_thread().name)
        return self.reply


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="http") as pool:
        yield pool


def _scope(method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": "/api/images/r.io:5000/sha256:ab",
        "raw_path": b"/api/images/r.io%3A5000/sha256:ab",
        "query_string": b"code=k&x=1",
        "headers": headers or [],
        "server": ("127.0.0.1", 7071),
        **extra,
    }


def _run(app: AsgiApp, scope: dict[str, Any], chunks: list[bytes]) -> tuple[list[dict[str, Any]], int]:
    """Runs one request; returns the messages sent and how many `receive` calls the app made."""
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(app(scope, receive, send))
    return sent, received


def test_request_reaches_the_dispatcher_as_sent(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    headers = [(b"host", b"acr.local:7071"), (b"x-functions-key", b"k"), (b"accept", b"a"), (b"accept", b"b")]
    sent, _ = _run(AsgiApp(recorder, executor, 100), _scope(headers=headers), [b"hello ", b"world"])
    method, target, seen_headers, body, host = recorder.calls[0]
    assert (method, target, body, host) == (
        "POST",
        "/api/images/r.io%3A5000/sha256:ab?code=k&x=1",  # still percent-encoded: routes decode values themselves
        b"hello world",
        "acr.local:7071",
    )
    assert seen_headers == {"host": "acr.local:7071", "x-functions-key": "k", "accept": "a, b"}
    assert recorder.threads[0].startswith("http")  # the synchronous handler ran in the pool, not the event loop
    start, body_message = sent
    assert start["status"] == 201
    # The length is the body's, whatever the handler claimed.
    assert sorted(start["headers"]) == [(b"content-length", b"2"), (b"content-type", b"text/plain")]
    assert body_message == {"type": "http.response.body", "body": b"ok"}


def test_host_falls_back_to_the_servers_address(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    _run(AsgiApp(recorder, executor, 100), _scope(method="GET"), [b""])
    assert recorder.calls[0][4] == "127.0.0.1:7071"


def test_declared_oversized_body_is_refused_unread(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    sent, received = _run(AsgiApp(recorder, executor, 10), _scope(headers=[(b"content-length", b"11")]), [b"x" * 11])
    assert received == 0 and recorder.calls == []
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert b"body larger than 10 bytes" in sent[1]["body"]


def test_streamed_oversized_body_is_refused_midway(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    sent, received = _run(AsgiApp(recorder, executor, 10), _scope(), [b"x" * 6, b"x" * 6, b"x" * 6])
    assert received == 2 and recorder.calls == []  # stopped at the chunk that crossed the bound
    assert sent[0]["status"] == 413


def test_a_body_at_the_bound_is_accepted(executor: ThreadPoolExecutor) -> None:
    recorder = Recorder()
    sent, _ = _run(AsgiApp(recorder, executor, 10), _scope(headers=[(b"content-length", b"10")]), [b"x" * 5] * 2)
    assert recorder.calls[0][3] == b"x" * 10 and sent[0]["status"] == 201


def test_lifespan_is_acknowledged(executor: ThreadPoolExecutor) -> None:
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(AsgiApp(Recorder(), executor, 10)({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_header_and_target_helpers() -> None:
    assert request_headers([(b"X-A", b"1"), (b"x-a", b"2")]) == {"x-a": "1, 2"}
    assert request_target({"path": "/api/health", "query_string": b""}) == "/api/health"


def test_under_uvicorn_a_request_in_flight_finishes_before_the_server_stops(executor: ThreadPoolExecutor) -> None:
    """serve's uvicorn set-up on a real socket: stopping waits for the handler running in the pool."""
    import http.client

    from scanner.localhost.serve import bind, http_server

    entered, release = threading.Event(), threading.Event()

    class Slow(Recorder):
        def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> Reply:
            entered.set()
            release.wait(30)
            return super().dispatch(method, target, headers, body, host)

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = http_server(AsgiApp(Slow(), executor, 100), "127.0.0.1", port)
    running = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    running.start()
    answers: list[tuple[int, bytes]] = []

    def request() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/api/slow", body=b"{}")
        response = connection.getresponse()
        answers.append((response.status, response.read()))
        connection.close()

    client = threading.Thread(target=request)
    try:
        assert _wait_listening(port)
        client.start()
        assert entered.wait(30), "the request never reached the dispatcher"
        server.should_exit = True  # what SIGINT/SIGTERM do
        # uvicorn closes the listening socket as its shutdown begins; from then on it only waits for the
        # request in flight, which the handler holds until released.
        assert _wait(lambda: sock.fileno() == -1), "the server never began its shutdown"
        assert running.is_alive() and not answers, "the server stopped with a request in flight"
        release.set()
        client.join(30)
        running.join(30)
        assert not running.is_alive()
        assert answers == [(201, OK)]
    finally:
        release.set()
        server.should_exit = True
        running.join(30)
        sock.close()


def _wait_listening(port: int) -> bool:
    import socket

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    return _wait(listening)


def _wait(check: Callable[[], bool], timeout: float = 60) -> bool:
    """Whether `check` came true, polled until `timeout` (a bound against a hang, no speed requirement)."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_connections_serve_accepts_send_without_nagle_delay() -> None:
    """serve binds its socket itself (asyncio sets TCP_NODELAY only on sockets it makes): the listening socket
    has it, so every accepted connection does, and an answer's body is not held back for the client's delayed
    ACK of its headers on a kept-alive connection."""
    import socket

    from scanner.localhost.serve import bind

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with socket.create_connection(sock.getsockname()[:2], timeout=5):
            accepted, _ = sock.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
