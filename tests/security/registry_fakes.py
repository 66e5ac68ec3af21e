"""Loopback stand-ins for the registry allow-list tests, all on 127.0.0.1:

- `sink`: a listener that counts every connection it accepts; over TLS it reads the request head of whatever
  arrives, keeps its Authorization header and answers 401 with a Basic challenge (bait for credentials);
- `fake_registry`: the OCI distribution API for one small image, with a chosen challenge (none, Basic or
  ACR-style Bearer), optionally redirecting blob downloads to another host, keeping every request's
  Authorization header;
- `blob_host`: the host such a redirect goes to (ACR sends blob downloads to storage hosts), optionally
  answering its first request 401 with a Bearer challenge.
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tests import ocibuild
from tests.httpserving import send_json, serving

REPO = "team/app"
TAG = "1.0"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Sink:
    host: str = ""  # 127.0.0.1:PORT
    connections: int = 0
    authorizations: list[str] = field(default_factory=list)  # every Authorization header received (TLS)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def sink(tls: tuple[Path, Path] | None = None) -> Iterator[Sink]:
    """A loopback TCP (or, with a certificate and key, TLS) listener counting its connections."""
    state = Sink()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.05)
    state.host = f"127.0.0.1:{listener.getsockname()[1]}"
    context = None
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                stream = context.wrap_socket(conn, server_side=True) if context is not None else conn
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = stream.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "authorization":
                        with state.lock:
                            state.authorizations.append(value.strip())
                stream.sendall(
                    b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="sink"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
            except OSError:
                pass

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with state.lock:
                state.connections += 1
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str  # "" when none was sent


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class FakeRegistry:
    image: ocibuild.Image
    challenge: str = ""  # "", "basic" or "bearer"
    credentials: tuple[str, str] = ("scanner", "s3cret")
    redirect_blobs_to: str = ""  # a base URL: blob GETs answer 307 to {it}/blobs/{digest}
    host: str = ""
    seen: list[Seen] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return f"{self.host}/{REPO}:{TAG}"

    def authorized(self, header: str) -> bool:
        return not self.challenge or header in (basic(*self.credentials), "Bearer acr-access-token")

    def challenge_header(self) -> str:
        if self.challenge == "basic":
            return 'Basic realm="fake"'
        realm = f"http://{self.host}/oauth2/token"
        return f'Bearer realm="{realm}",service="{self.host}",scope="repository:{REPO}:pull"'


def _send_bytes(handler: BaseHTTPRequestHandler, data: bytes, content_type: str, digest: str) -> None:
    """`data` whole, or the part a Range header asks for (the SDK downloads blobs in ranged chunks)."""
    wanted = handler.headers.get("Range", "")
    start, end = 0, len(data) - 1
    if wanted.startswith("bytes="):
        first, _, last = wanted[len("bytes=") :].partition("-")
        start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
    part = data[start : end + 1]
    handler.send_response(206 if wanted else 200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(part)))
    handler.send_header("Docker-Content-Digest", digest)
    if wanted:
        handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
    handler.end_headers()
    handler.wfile.write(part)


def _refuse(handler: BaseHTTPRequestHandler, challenge: str) -> None:
    handler.send_response(401)
    handler.send_header("WWW-Authenticate", challenge)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _registry_handler(state: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    blobs = state.image.blobs()
    manifest = state.image.manifest()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.seen.append(Seen("POST", self.path, self.headers.get("Authorization", "")))
            if self.path.startswith("/oauth2/token"):  # ACR's token exchange, answered without checks
                send_json(self, 200, {"access_token": "acr-access-token"})
            else:
                send_json(self, 404, {"errors": [{"code": "UNSUPPORTED"}]})

        def do_GET(self) -> None:
            authorization = self.headers.get("Authorization", "")
            path = unquote(self.path)  # the SDK percent-encodes the repository's slash
            state.seen.append(Seen("GET", path, authorization))
            if not state.authorized(authorization):
                _refuse(self, state.challenge_header())
                return
            prefix = f"/v2/{REPO}/"
            if path in (f"{prefix}manifests/{TAG}", f"{prefix}manifests/{ocibuild.sha(manifest)}"):
                _send_bytes(self, manifest, MANIFEST_TYPE, ocibuild.sha(manifest))
            elif path.startswith(f"{prefix}blobs/") and path.split("/")[-1] in blobs:
                digest = path.split("/")[-1]
                if state.redirect_blobs_to:
                    self.send_response(307)
                    self.send_header("Location", f"{state.redirect_blobs_to}/blobs/{digest}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    _send_bytes(self, blobs[digest], "application/octet-stream", digest)
            else:
                send_json(self, 404, {"errors": [{"code": "NOT_FOUND"}]})

    return Handler


def small_image() -> ocibuild.Image:
    """One Alpine layer with two packages: enough for a scan to succeed end to end."""
    layer = ocibuild.layer_tar(
        [
            ocibuild.Entry("etc/alpine-release", b"3.20.3\n"),
            ocibuild.Entry("lib/apk/db/installed", b"P:musl\nV:1.2.5-r0\nA:x86_64\n\nP:zlib\nV:1.3.1-r1\nA:x86_64\n\n"),
        ]
    )
    return ocibuild.Image([ocibuild.Layer(layer)])


@contextmanager
def fake_registry(
    challenge: str = "", redirect_blobs_to: str = "", image: ocibuild.Image | None = None
) -> Iterator[FakeRegistry]:
    state = FakeRegistry(image or small_image(), challenge, redirect_blobs_to=redirect_blobs_to)
    with serving(_registry_handler(state)) as url:
        state.host = url.removeprefix("http://")
        yield state


@dataclass
class BlobHost:
    image: ocibuild.Image
    bearer_challenge_first: bool = False
    host: str = ""
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@contextmanager
def blob_host(image: ocibuild.Image, bearer_challenge_first: bool = False) -> Iterator[BlobHost]:
    state = BlobHost(image, bearer_challenge_first)
    blobs = image.blobs()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            state.seen.append(Seen("GET", self.path, self.headers.get("Authorization", "")))
            digest = self.path.split("/")[-1]
            if state.bearer_challenge_first and len(state.seen) == 1:
                # A storage host that asks for a token: the registry client must not hand it one.
                _refuse(self, f'Bearer realm="http://{state.host}/oauth2/token",service="evil",scope="registry:*"')
            elif digest in blobs:
                _send_bytes(self, blobs[digest], "application/octet-stream", digest)
            else:
                send_json(self, 404, {"errors": [{"code": "BLOB_UNKNOWN"}]})

    with serving(Handler) as url:
        state.host = url.removeprefix("http://")
        yield state
