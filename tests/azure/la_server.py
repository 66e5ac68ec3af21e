"""A local HTTPS server that answers like the Log Analytics query API (`POST /v1/workspaces/{id}/query`),
a throwaway CA for it, and a static token credential: the real `LogsQueryClient` talks to it unchanged.

The server keeps every request (path, headers, JSON body) and answers with what the test set: a result
table whose rows are filtered by the request's `timespan` (as the service does), a partial result, or an
error status with a Log Analytics error body.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken

from tests.httpserving import send_json, serving
from tests.tlspki import make_pki

DATA = Path(__file__).resolve().parent / "data"
TOKEN = "test-token-not-a-secret"


def load_table(name: str = "repository-events.json") -> dict[str, Any]:
    """A result table in the API's shape: {"name", "columns": [{"name", "type"}], "rows": [[...]]}."""
    table: dict[str, Any] = json.loads((DATA / name).read_text())
    return table


def column_names(table: dict[str, Any]) -> list[str]:
    return [c["name"] for c in table["columns"]]


class StaticToken:
    """A `TokenCredential` with one fixed token; remembers the scopes it was asked for."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(datetime.datetime.now(datetime.UTC).timestamp()) + 3600)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class LogServer:
    url: str = ""
    ca: Path = Path()
    table: dict[str, Any] = field(default_factory=lambda: {"name": "PrimaryResult", "columns": [], "rows": []})
    status: int = 200
    error: dict[str, Any] | None = None  # with status 200: a partial result; otherwise the error body
    requests: list[Received] = field(default_factory=list)

    def answer(self, timespan: str | None) -> tuple[int, dict[str, Any]]:
        if self.status != 200:
            return self.status, {"error": self.error or {"code": "InternalServerError", "message": "failed"}}
        body: dict[str, Any] = {"tables": [{**self.table, "rows": self._within(timespan)}]}
        if self.error is not None:
            body["error"] = self.error
        return 200, body

    def _within(self, timespan: str | None) -> list[list[Any]]:
        rows: list[list[Any]] = self.table["rows"]
        names = column_names(self.table)
        if not timespan or "TimeGenerated" not in names:
            return rows
        start_text, _, end_text = timespan.partition("/")
        start, end = _iso(start_text), _iso(end_text)
        at = names.index("TimeGenerated")
        return [row for row in rows if not isinstance(row[at], str) or start <= _iso(row[at]) <= end]


def _iso(text: str) -> datetime.datetime:
    text = text.replace("Z", "+00:00")
    if "." in text:  # seven fractional digits (Kusto) → six
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    return datetime.datetime.fromisoformat(text)


def _handler(state: LogServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            body: dict[str, Any] = json.loads(raw) if raw else {}
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            if not (self.path.startswith("/v1/workspaces/") and self.path.split("?")[0].endswith("/query")):
                self._send(404, {"error": {"code": "PathNotFoundError", "message": f"no route {self.path}"}})
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"error": {"code": "AuthorizationRequiredError", "message": "Valid token required"}})
                return
            self._send(*state.answer(body.get("timespan")))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            send_json(self, status, body, "application/json; charset=utf-8")

    return Handler


@contextmanager
def log_server(workdir: Path) -> Iterator[LogServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_pki(workdir)  # the bearer-token policy insists on HTTPS
    state = LogServer(ca=ca)
    with serving(_handler(state), tls=(cert, key)) as url:
        state.url = url
        yield state
