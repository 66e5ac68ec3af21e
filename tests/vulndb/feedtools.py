"""Helpers of the feeds tests: fixture paths, zips built from real records, a local feed server, the CLI."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import yaml

from tests.httpserving import serving

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "osv"
PYPA = FIXTURES / "pypa-advisory-database"
GOLANG = FIXTURES / "golang-vulndb"
ALMA = FIXTURES / "almalinux-osv"
SECDB = FIXTURES / "alpine-secdb"
LINTER = FIXTURES / "osv-schema" / "osv-linter-testdata"


class NoDates(yaml.SafeLoader):
    """The test's own YAML reading, as osv.dev reads the pypa tree (timestamps stay strings)."""


NoDates.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_record(path: Path) -> dict[str, Any]:
    if path.suffix == ".json":
        return dict(json.loads(path.read_text()))
    return dict(yaml.load(path.read_text(), Loader=NoDates))


def records_in(root: Path) -> list[dict[str, Any]]:
    return [load_record(p) for p in sorted(root.rglob("*")) if p.suffix in (".json", ".yaml")]


def zip_of(records: list[dict[str, Any]]) -> bytes:
    """An archive in the layout of osv.dev's `<Ecosystem>/all.zip`: one `<id>.json` per record at the root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return buffer.getvalue()


def secdb_json(yaml_path: Path) -> dict[str, Any]:
    """The secdb.alpinelinux.org JSON form (`v3.11/main.json`) of a secdb YAML file: same shape, as JSON."""
    data = yaml.load(yaml_path.read_text(), Loader=yaml.BaseLoader)
    return dict(json.loads(json.dumps(data)))


@dataclass
class Feed:
    body: bytes
    etag: str
    last_modified: str
    mode: str = "ok"  # ok | error | truncate | corrupt


@dataclass
class FeedServer:
    """Serves `/<Ecosystem>/all.zip` from `feeds`, honours If-None-Match, records every request's headers."""

    url: str = ""
    feeds: dict[str, Feed] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def publish(self, ecosystem: str, body: bytes, mode: str = "ok") -> Feed:
        stamp = email.utils.formatdate(time.time() + len(self.feeds), usegmt=True)
        feed = Feed(body, f'"{hashlib.sha256(body).hexdigest()[:16]}"', stamp, mode)
        self.feeds[f"/{ecosystem.replace(' ', '%20')}/all.zip"] = feed
        return feed

    def headers_of(self, path_part: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if path_part in p]


def handler_for(server_state: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            server_state.requests.append((self.path, dict(self.headers.items())))
            feed = server_state.feeds.get(self.path)
            if feed is None:
                self.send_error(404)
                return
            if feed.mode == "error":
                self.send_error(503, "Service Unavailable")
                return
            if self.headers.get("If-None-Match") == feed.etag:
                self.send_response(304)
                self.send_header("ETag", feed.etag)
                self.end_headers()
                return
            body = feed.body if feed.mode != "corrupt" else feed.body[:100] + b"\0" * (len(feed.body) - 100)
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", feed.etag)
            self.send_header("Last-Modified", feed.last_modified)
            self.end_headers()
            if feed.mode == "truncate":
                # The server dies mid-download: half the promised bytes, then the connection closes.
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def running_feed_server() -> Iterator[FeedServer]:
    """A `FeedServer` answering on a local port (its `url` set) until the block ends."""
    state = FeedServer()
    with serving(handler_for(state)) as url:
        state.url = url
        yield state


def run_cli(argv: list[str]) -> int:
    """`acrguard ARGV` through the real command line (`scanner.cli.main.main`)."""
    from scanner.cli.main import main

    return main(argv)
