"""A real PostgreSQL from Debian's packages for tests: the store suite's server, importable by other suites
(`tests/localhost` runs `acrguard serve --store postgresql://…` on it). PostgreSQL refuses to run as root, so
under root (CI) it runs as the `postgres` system user. Failures are test failures, never skips."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tests import ports

INSTALL_HINT = (
    "PostgreSQL is needed for the store tests: run `bash scripts/install-system-deps.sh` (Debian package postgresql)"
)


@dataclass
class PgServer:
    url: str
    started_in: float
    _schemas: Any = None
    password: str | None = None  # the server's own, when it asks for one (the URL never holds it)

    def fresh_url(self) -> str:
        """A new schema per test: much faster than a database per test, just as isolated."""
        import psycopg

        name = f"t{next(self._schemas)}"
        with psycopg.connect(self.url, autocommit=True, password=self.password) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(f"running as root and no `postgres` system user: {INSTALL_HINT}")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _start(
    bindir: Path,
    data: Path,
    sockets: Path,
    port: int,
    log_path: Path,
    run: dict[str, Any],
    settings: Mapping[str, str] = MappingProxyType({}),
) -> tuple[subprocess.Popen[bytes], Any]:
    log = open(log_path, "wb")  # noqa: SIM115 - open for the server's whole life
    # Durability off: a throw-away cluster; the store's own transactions still behave the same.
    server = subprocess.Popen(
        [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-k",
            str(sockets),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            *(word for name, value in settings.items() for word in ("-c", f"{name}={value}")),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        **run,
    )
    return server, log


def _listening(
    server: subprocess.Popen[bytes], port: int, log_path: str, timeout: float = 120, password: str | None = None
) -> bool:
    """Whether the server came up listening on `port` (False: it exited first); a connection is tried only
    once the port is this server's, so another cluster on it can never pass for ours."""
    import psycopg

    deadline = time.monotonic() + timeout
    url = f"postgresql://acrguard@127.0.0.1:{port}/postgres"
    while server.poll() is None:
        if port in ports.listening_ports(server.pid):
            try:
                psycopg.connect(url, connect_timeout=2, password=password).close()
                return True
            except psycopg.OperationalError:
                pass  # listening, still starting up
        if time.monotonic() > deadline:
            server.kill()
            server.wait()
            pytest.fail(
                f"PostgreSQL did not start within {timeout:.0f} s: {Path(log_path).read_text(errors='replace')}"
            )
        time.sleep(0.05)
    return False


@contextmanager
def running_postgres(
    password: str | None = None, settings: Mapping[str, str] = MappingProxyType({})
) -> Iterator[PgServer]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (user `acrguard`), removed afterwards: trust auth, or with
    `password` every connection must give it (SCRAM), as a managed server asks for an Entra token. `settings`:
    server parameters besides the defaults (a benchmark sizes the buffer cache like a deployed server's)."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.fail(INSTALL_HINT)
    bindir = Path(binaries[-1]).parent
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="acrguard-pg-"))
    ids = _as_postgres()
    if ids:
        os.chown(root, ids["user"], ids["group"])
    data, sockets = root / "data", root / "sockets"
    run = {"cwd": root, "env": {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}, **ids}
    auth = ["--auth=trust"]
    if password is not None:
        (root / "pwfile").write_text(password + "\n")
        if ids:
            os.chown(root / "pwfile", ids["user"], ids["group"])
        auth = ["--auth=scram-sha-256", f"--pwfile={root / 'pwfile'}"]
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "acrguard",
            *auth,
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ],
        check=True,
        capture_output=True,
        **run,
    )
    os.makedirs(sockets)
    if ids:
        os.chown(sockets, ids["user"], ids["group"])
    # PostgreSQL cannot listen on port 0 (its socket files are named after the port): a port that is free
    # now, and another if some other process takes it before the server listens there.
    attempts = 5
    for attempt in range(1, attempts + 1):
        port = _free_port()
        server, log = _start(bindir, data, sockets, port, root / f"postgres-{attempt}.log", run, settings)
        if _listening(server, port, log.name, password=password):
            break
        log.close()
        output = Path(log.name).read_text(errors="replace")
        if "already in use" not in output or attempt == attempts:
            shutil.rmtree(root, ignore_errors=True)
            pytest.fail(f"PostgreSQL did not start: {output}")
    url = f"postgresql://acrguard@127.0.0.1:{port}/postgres"
    try:
        yield PgServer(url, time.monotonic() - began, itertools.count(), password)
    finally:
        server.terminate()  # SIGTERM: smart shutdown; our connections are closed by then
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
