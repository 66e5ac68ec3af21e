"""Test harness for `acrguard serve` as a real process next to a real, notifying registry.

Shared by the serve end-to-end, fault and stack tests (and usable from benchmarks): a registry whose
`notifications:` point at the serve process, and the serve process itself with its log kept for failures.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests import ocibuild, ports
from tests.childenv import minimal_env
from tests.integration import realparts

ROOT = Path(__file__).resolve().parents[2]

FUNCTION_KEY = "serve-function-key"
API_KEY = "serve-api-key"
EVENTS_TOKEN = "serve-events-token"
HEADERS = {"x-api-key": API_KEY, "x-functions-key": FUNCTION_KEY}
# What a notifying registry sends (its `notifications.endpoints[].headers`), and an Event Grid delivery.
NOTIFY_HEADERS = {
    "Authorization": f"Bearer {EVENTS_TOKEN}",
    "x-functions-key": FUNCTION_KEY,
    "Content-Type": "application/vnd.docker.distribution.events.v1+json",
}
EVENT_GRID_HEADERS = {"Content-Type": "application/json", "aeg-event-type": "Notification"}
VULN = "ALPINE-CVE-2019-14697"
APK_DB = b"P:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n\n"

T = TypeVar("T")


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

    @property
    def workdir(self) -> Path:
        """Where serve keeps its log and, unless told otherwise, its store and queue."""
        return self.log_path.parent

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        response = realparts.http("GET", self.url(path), headers=HEADERS, timeout=timeout)
        return response.status, json.loads(response.body) if response.body else None

    def post(self, path: str, body: Any, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        sent = {**HEADERS, "Content-Type": "application/json", **(headers or {})}
        response = realparts.http("POST", self.url(path), headers=sent, data=json.dumps(body).encode(), timeout=10)
        return response.status, json.loads(response.body) if response.body else None

    def image(self, registry: str, digest: str) -> tuple[int, Any]:
        return self.get(f"/api/images/{registry}/{digest}")

    def exit_status(self, what: str, timeout: float = 120) -> int:
        """serve's exit status once it has exited (after a signal the test sent); `timeout` bounds the wait
        against a hang and is no speed requirement."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve did not exit within {timeout:.0f} s of {what}: {self.log_tail()}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class PortTaken(Exception):
    """serve could not listen on the port it was given: another process holds it (the caller retries)."""


def start_serve(
    workdir: Path,
    *,
    port: int = 0,
    db: Path,
    store: str | None = None,
    queue: str | None = None,
    runner: str = "none",
    insecure_registries: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 120,
) -> Serve:
    """`acrguard serve` as a subprocess, returned once `/api/health` answers. Port 0 (the default) lets the
    system choose, read back from the process; a fixed port (one a notifying registry was told) that
    another process holds raises `PortTaken`. The environment is minimal: the keys, `env`, and PATH, HOME,
    LANG and TMPDIR. `ready_timeout` bounds the wait against a hang; it is no speed requirement."""
    workdir.mkdir(parents=True, exist_ok=True)
    keys = {"ACRGUARD_FUNCTION_KEY": FUNCTION_KEY, "ACRGUARD_API_KEY": API_KEY, "ACRGUARD_EVENTS_TOKEN": EVENTS_TOKEN}
    # Its own layer-prefix cache: a state another test or an earlier run left in the user's cache would turn
    # a cold scan into a warm one.
    own = {"ACRGUARD_PREFIX_CACHE_DIR": str(workdir / "layer-prefixes")}
    environment = minimal_env({**keys, **own, **(env or {})})
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
    try:
        serve.port = ports.wait_listening(process, "serve", serve.log_tail, ready_timeout)
    except AssertionError:
        if process.poll() is None:
            serve.stop()
        elif process.returncode == 2 and "already in use by another process" in serve.log_tail(3):
            raise PortTaken(f"127.0.0.1:{port}") from None
        raise

    def healthy() -> bool:
        try:
            return realparts.http("GET", serve.url("/api/health"), timeout=2).status == 200
        except OSError:
            return process.poll() is not None  # ends the wait: the check below names the exit

    try:
        wait_for("serve answering /api/health", healthy, timeout=ready_timeout, interval=0.05, context=serve.log_tail)
        assert process.poll() is None, f"serve exited {process.returncode}: {serve.log_tail()}"
    except BaseException:
        serve.stop()
        raise
    return serve


def with_serve_port(start: Callable[[int], T], attempts: int = 5) -> T:
    """`start(port)` with a port that is free now, again with another while serve finds it taken: for a serve
    process whose port a registry's notifications must name before serve starts."""
    for attempt in range(1, attempts + 1):
        try:
            return start(realparts.free_port())
        except PortTaken:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


@contextmanager
def serve_with_registry(workdir: Path, db: Path, **serve_options: Any) -> Iterator[tuple[Serve, realparts.Registry]]:
    """A notifying registry and a serve process that trusts it over plain HTTP; both stopped afterwards."""
    insecure = tuple(serve_options.pop("insecure_registries", ()))

    def start(port: int) -> tuple[Serve, realparts.Registry]:
        registry = start_notifying_registry(workdir / "registry", port)
        try:
            serve = start_serve(
                workdir / "serve", port=port, db=db, insecure_registries=(registry.host, *insecure), **serve_options
            )
        except BaseException:
            registry.stop()
            raise
        return serve, registry

    serve, registry = with_serve_port(start)
    try:
        yield serve, registry
    finally:
        serve.stop()
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

# The credentials go in headers, never in the URL, which the registry logs.
NOTIFY_ENDPOINT = f"""\
    - name: {{name}}
      url: {{url}}
      headers:
        Authorization: ["Bearer {EVENTS_TOKEN}"]
        x-functions-key: ["{FUNCTION_KEY}"]
      timeout: 2s
      threshold: 3
      backoff: 1s
"""


def serve_notification_url(serve_port: int) -> str:
    return f"http://127.0.0.1:{serve_port}/api/registry-notifications"


def start_registry_notifying(workdir: Path, urls: Sequence[str], host: str | None = None) -> realparts.Registry:
    """A registry whose notifications go to every URL in `urls` (serve's endpoint, a test's recorder…), on a
    port the system picks unless `host` names the address (to restart a registry where it was)."""
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    endpoints = "".join(NOTIFY_ENDPOINT.format(name=f"endpoint-{i}", url=url) for i, url in enumerate(urls))
    config = (
        realparts.REGISTRY_CONFIG.format(root=storage, addr=host or "127.0.0.1:0")
        + "notifications:\n  events:\n    includereferences: true\n  endpoints:\n"
        + endpoints
    )
    try:
        return realparts.serve_registry(workdir, config)
    except realparts.RealPartsError as err:
        raise AssertionError(str(err)) from None


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
