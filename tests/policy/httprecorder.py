"""A real HTTP server on 127.0.0.1 (stdlib, in a thread) that records requests and answers from a script."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.httpserving import send_json, serving


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: tuple[str, int] = ("", 0)  # the client's address and port: which connection carried it

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    host: str = ""
    requests: list[Recorded] = field(default_factory=list)
    # (status, JSON body) answered in turn; the last one repeats.
    answers: list[tuple[int, Any]] = field(default_factory=lambda: [(200, {})])

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@contextmanager
def recording_server(answers: list[tuple[int, Any]] | None = None) -> Iterator[Recorder]:
    recorder = Recorder()
    if answers is not None:
        recorder.answers = answers
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints: every answer has its Content-Length
        # The status line and headers, then the body, are two writes: with Nagle's algorithm the body waits
        # for the client's delayed ACK of the first (40 ms) on a kept-alive connection.
        disable_nagle_algorithm = True

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                recorder.requests.append(
                    Recorded(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        (str(self.client_address[0]), int(self.client_address[1])),
                    )
                )
                index = min(len(recorder.requests), len(recorder.answers)) - 1
                status, payload = recorder.answers[index]
            send_json(self, status, payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    with serving(Handler) as url:
        recorder.host = url.removeprefix("http://")
        yield recorder
