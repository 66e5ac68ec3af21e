"""A real Azurite queue (and blob) service for tests: the queue suite's, importable by other suites
(`tests/localhost` runs `acrguard serve --queue <connection string>` on it, tests/service publishes the
vulnerability database to its blob service). Azurite comes from `scripts/install-azurite.sh`
(.cache/azurite); without it the test fails with the install hint instead of being skipped."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import ports
from tests.childenv import minimal_env
from tests.queue.support import REPO

AZURITE = REPO / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-queue"
AZURITE_BLOB = AZURITE.with_name("azurite-blob")
INSTALL_HINT = "run `bash scripts/install-azurite.sh` (needs node and npm: apt-get install nodejs npm)"
# Azurite's well-known development account (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@contextmanager
def running_azurite(workspace: Path) -> Iterator[str]:
    """A connection string to a fresh Azurite queue service keeping its data in `workspace`; stopped after."""
    with _running(AZURITE, "queue", workspace) as port:
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"QueueEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
        )


@contextmanager
def running_azurite_blob(workspace: Path) -> Iterator[str]:
    """The blob service URL (`http://127.0.0.1:PORT/devstoreaccount1`) of a fresh Azurite blob service keeping
    its data in `workspace`; stopped after."""
    with _running(AZURITE_BLOB, "blob", workspace) as port:
        yield f"http://127.0.0.1:{port}/{DEV_ACCOUNT}"


@contextmanager
def _running(binary: Path, service: str, workspace: Path) -> Iterator[int]:
    if shutil.which("node") is None:
        pytest.fail(f"node is not installed: {INSTALL_HINT}")
    if not binary.exists():
        pytest.fail(f"Azurite is not installed in {binary.parent.parent.parent}: {INSTALL_HINT}")
    command = [
        str(binary),
        f"--{service}Host", "127.0.0.1",
        f"--{service}Port", "0",  # the system's choice, read back from the process: no other can hold it
        "--location", str(workspace),
        "--disableTelemetry",
        "--skipApiVersionCheck",  # the SDK may be newer than the emulator
        "--silent",
    ]  # fmt: skip
    log = (workspace / "azurite.log").open("wb")
    process = subprocess.Popen(command, env=minimal_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        port = ports.wait_listening(
            process, "Azurite", lambda: (workspace / "azurite.log").read_text(errors="replace")[-2000:]
        )
    except AssertionError as err:
        process.kill()
        process.wait()
        log.close()
        pytest.fail(str(err))
    try:
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
