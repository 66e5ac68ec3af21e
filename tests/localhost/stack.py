"""Test harness for `acrguard serve` as a real process next to a real, notifying registry.

Shared by the serve end-to-end, fault and stack tests (and usable from benchmarks): a registry whose
`notifications:` point at the serve process, and the serve process itself with its log kept for failures.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import ocibuild
from tests.integration import realparts

ROOT = Path(__file__).resolve().parents[2]

FUNCTION_KEY = "serve-function-key"
API_KEY = "serve-api-key"
HEADERS = {"x-api-key": API_KEY, "x-functions-key": FUNCTION_KEY}
VULN = "ALPINE-CVE-2019-14697"
APK_DB = b"P:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n\n"


def start_notifying_registry(workdir: Path, serve_port: int, host: str | None = None) -> realparts.Registry:
    """`realparts.start_registry` with a `notifications:` section pointing at the serve process. `host`
    (`127.0.0.1:PORT`) lets a test restart a registry on the same address."""
    return start_registry_notifying(workdir, [serve_notification_url(serve_port)], host)


def alpine_layout(root: Path, apk_db: bytes = APK_DB) -> Path:
    """A one-layer Alpine 3.10 image whose musl 1.1.22-r2 has ALPINE-CVE-2019-14697 in the 3.10 secdb."""
    layer = ocibuild.layer_tar(
        [
            ocibuild.Entry("etc/alpine-release", b"3.10.1\n"),
            ocibuild.Entry("etc/os-release", b'ID=alpine\nVERSION_ID=3.10.1\nPRETTY_NAME="Alpine Linux v3.10"\n'),
            ocibuild.Entry("lib/apk/db/installed", apk_db),
        ]
    )
    return ocibuild.write_layout(root, [ocibuild.Image([ocibuild.Layer(layer)])])


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        response = realparts.http("GET", self.url(path), headers=HEADERS, timeout=timeout)
        return response.status, json.loads(response.body) if response.body else None

    def post(self, path: str, body: Any, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        response = realparts.http(
            "POST", self.url(path), headers={**HEADERS, **(headers or {})}, data=json.dumps(body).encode(), timeout=10
        )
        return response.status, json.loads(response.body) if response.body else None

    def image(self, registry: str, digest: str) -> tuple[int, Any]:
        return self.get(f"/api/images/{registry}/{digest}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_serve(
    workdir: Path,
    *,
    port: int,
    db: Path,
    store: str | None = None,
    queue: str | None = None,
    runner: str = "none",
    insecure_registries: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30,
) -> Serve:
    """`acrguard serve` as a subprocess, returned once `/api/health` answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "ACRGUARD_FUNCTION_KEY": FUNCTION_KEY, "ACRGUARD_API_KEY": API_KEY, **(env or {})}
    args = [
        *(sys.executable, "-m", "scanner", "serve", "--port", str(port), "--runner", runner),
        *("--store", store or str(workdir / "store.sqlite"), "--queue", queue or str(workdir / "queue.sqlite")),
        *("--db", str(db)),
        *(("--insecure-registries", ",".join(insecure_registries)) if insecure_registries else ()),
        *extra_args,
    ]
    log_path = workdir / "serve.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, cwd=ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    serve = Serve(process, port, log_path)
    deadline = time.monotonic() + ready_timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {serve.log_tail()}")
        try:
            if realparts.http("GET", serve.url("/api/health"), timeout=2).status == 200:
                return serve
        except OSError:
            pass
        if time.monotonic() > deadline:
            serve.stop()
            raise AssertionError(f"serve did not answer within {ready_timeout}s: {serve.log_tail()}")
        time.sleep(0.1)


@contextmanager
def serve_with_registry(workdir: Path, db: Path, **serve_options: Any) -> Iterator[tuple[Serve, realparts.Registry]]:
    """A notifying registry and a serve process that trusts it over plain HTTP; both stopped afterwards."""
    port = realparts.free_port()
    registry = start_notifying_registry(workdir / "registry", port)
    try:
        insecure = (registry.host, *serve_options.pop("insecure_registries", ()))
        serve = start_serve(workdir / "serve", port=port, db=db, insecure_registries=insecure, **serve_options)
        try:
            yield serve, registry
        finally:
            serve.stop()
    finally:
        registry.stop()


def wait_for(what: str, check: Any, timeout: float = 30, interval: float = 0.2, context: Any = None) -> Any:
    """Polls `check()` until it returns something truthy; fails naming `what` and `context()`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    extra = context() if callable(context) else ""
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r:.300})\n{extra}")


# --------------------------------------------------------------------------------------------------
# helpers for the lifecycle and fault scenarios (added for tests/localhost/test_serve_lifecycle.py and
# test_serve_faults.py)

NOTIFY_ENDPOINT = """\
    - name: {name}
      url: {url}
      timeout: 2s
      threshold: 3
      backoff: 1s
"""


def serve_notification_url(serve_port: int) -> str:
    return f"http://127.0.0.1:{serve_port}/api/registry-notifications?code={FUNCTION_KEY}"


def start_registry_notifying(workdir: Path, urls: Sequence[str], host: str | None = None) -> realparts.Registry:
    """A registry whose notifications go to every URL in `urls` (serve's endpoint, a test's recorder…)."""
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    host = host or f"127.0.0.1:{realparts.free_port()}"
    endpoints = "".join(NOTIFY_ENDPOINT.format(name=f"endpoint-{i}", url=url) for i, url in enumerate(urls))
    config = workdir / "config.yml"
    config.write_text(
        realparts.REGISTRY_CONFIG.format(root=storage, addr=host)
        + "notifications:\n  events:\n    includereferences: true\n  endpoints:\n"
        + endpoints
    )
    log_path = workdir / "registry.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [realparts.registry_binary(), "serve", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    registry = realparts.Registry(host, storage, config, log_path, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if realparts.http("GET", registry.url("/v2/"), timeout=2).status == 200:
                return registry
        except OSError:
            pass
        time.sleep(0.05)
    registry.stop()
    raise AssertionError(f"registry did not start: {registry.log_tail()}")


def many_files_alpine_layout(root: Path, files: int = 60_000) -> Path:
    """`alpine_layout` plus `files` empty files: a small blob (headers compress well) whose parse in the
    sandbox takes a few seconds, so a test can act while a scan is really running."""
    entries = [
        ocibuild.Entry("etc/alpine-release", b"3.10.1\n"),
        ocibuild.Entry("etc/os-release", b'ID=alpine\nVERSION_ID=3.10.1\nPRETTY_NAME="Alpine Linux v3.10"\n'),
        ocibuild.Entry("lib/apk/db/installed", APK_DB),
        *(ocibuild.Entry(f"usr/share/filler/{i // 1000}/{i}") for i in range(files)),
    ]
    return ocibuild.write_layout(root, [ocibuild.Image([ocibuild.Layer(ocibuild.layer_tar(entries))])])


def scan_rows(store_path: Path, digest: str) -> list[dict[str, Any]]:
    """The findings store's scan records of a digest (one per attempt), oldest first, read straight from
    the SQLite file the serve process writes."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=30)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT scan_id, status, error, started_at, finished_at, scan_trigger FROM scans WHERE digest = ?"
            " ORDER BY started_at, scan_id",
            (digest,),
        ).fetchall()
    return [dict(row) for row in rows]


def queue_rows(queue_path: Path, table: str, queue: str) -> list[dict[str, Any]]:
    """Rows of the embedded queue's `messages` or `dead_letters` table for one named queue."""
    import sqlite3

    if table not in ("messages", "dead_letters"):
        raise ValueError(table)
    with contextlib.closing(sqlite3.connect(f"file:{queue_path}?mode=ro", uri=True, timeout=30)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(f"SELECT * FROM {table} WHERE queue = ? ORDER BY seq", (queue,)).fetchall()
    return [dict(row) for row in rows]


def descendants(pid: int) -> dict[int, str]:
    """Every live descendant of `pid` with its command line (from /proc; zombies have none)."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        commands[int(entry.name)] = command
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = commands[child]
                frontier.append(child)
    return found
