"""The ASGI side of `acrguard serve`: uvicorn's requests handed to the synchronous `Dispatcher`.

The function app's handlers are synchronous (as in Azure's Python worker, which runs them in a thread
pool), so each request's dispatch runs in an executor and the event loop only moves bytes. The body is
bounded before it is read (declared `Content-Length`) and while it is read (chunked uploads): an oversized
request is a 413 and its connection is closed, since the rest of its body is never read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor
from typing import Any, Protocol

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Reply(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def body(self) -> bytes: ...


class Dispatch(Protocol):
    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes, host: str) -> Reply: ...


class BodyTooLarge(Exception):
    """The request body is over the bound; raised while reading so that the rest is never buffered."""


class AsgiApp:
    """An ASGI 3 application: `http` requests through `dispatcher`, `lifespan` acknowledged."""

    def __init__(self, dispatcher: Dispatch, executor: Executor, max_body: int) -> None:
        self.dispatcher = dispatcher
        self.executor = executor
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # uvicorn is started without websockets; anything else is a bug
            raise RuntimeError(f"serve: unsupported ASGI scope {scope['type']!r}")
        headers = with_peer(request_headers(scope.get("headers") or []), scope.get("client"))
        declared = headers.get("content-length", "")
        try:
            if declared.isdigit() and int(declared) > self.max_body:
                raise BodyTooLarge
            body = await self._read_body(receive)
        except BodyTooLarge:
            await _send(send, *_too_large(self.max_body))
            return
        method = str(scope["method"]).upper()
        target = request_target(scope)
        host = headers.get("host") or _server_address(scope)
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(self.executor, self.dispatcher.dispatch, method, target, headers, body, host)
        await _send(send, reply.status, reply.headers, reply.body)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def request_headers(raw: list[tuple[bytes, bytes]] | list[list[bytes]]) -> dict[str, str]:
    """ASGI's lower-cased byte pairs as one string per name; repeated fields joined as RFC 9110 allows."""
    headers: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name, value = name_bytes.decode("latin-1").lower(), value_bytes.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def with_peer(headers: dict[str, str], client: Any) -> dict[str, str]:
    """`X-Forwarded-For` with the connection's peer appended, as App Service's front end appends it: what
    reads the client's address (the sign-in limits) takes the last entry, which a client cannot write."""
    if not client:
        return headers
    peer = str(client[0])
    forwarded = headers.get("x-forwarded-for", "")
    return {**headers, "x-forwarded-for": f"{forwarded}, {peer}" if forwarded else peer}


def request_target(scope: Scope) -> str:
    """The request target as sent (percent-encoding kept): the dispatcher decodes route values itself."""
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else str(scope.get("path", "/"))
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return f"{path}?{query}" if query else path


def _server_address(scope: Scope) -> str:
    server = scope.get("server")
    if not server:
        return "localhost"
    host, port = server
    return f"{host}:{port}" if port else str(host)


def _too_large(max_body: int) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": {"code": "PayloadTooLarge", "message": f"body larger than {max_body} bytes"}}).encode()
    # The unread rest of the body would be taken for the next request: the connection must end here.
    return 413, {"Content-Type": "application/json", "Connection": "close"}, body


async def _send(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    fields = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    fields = [f for f in fields if f[0] != b"content-length"]
    fields.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})  # uvicorn drops it for HEAD


async def _lifespan(receive: Receive, send: Send) -> None:
    # serve() starts and stops the timers and the worker itself; the app has nothing to set up.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
