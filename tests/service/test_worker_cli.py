"""`acrguard worker`, the scan job's entry point in Azure: a real registry, a queued request, the
sandboxed scan under bubblewrap, findings in the store; then the queue is empty and the worker exits."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from service_support import allowing

from scanner.queue import open_queue
from scanner.queue.interface import ScanRequest
from scanner.service.events import RegistryEvent
from scanner.service.pipeline import handle_event
from scanner.store import open_store
from scanner.vulndb.osv_import import import_sources
from tests.childenv import minimal_env
from tests.localhost.stack import ROOT, VULN, alpine_layout, realparts


def _worker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", "worker", *args],
        cwd=ROOT,
        env=minimal_env(env),  # none of the developer's ACRGUARD_* settings or proxies
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_worker_drains_the_queue_through_the_sandbox(tmp_path: Path) -> None:
    db = tmp_path / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    store_path, queue_path = str(tmp_path / "store.sqlite"), str(tmp_path / "queue.sqlite")
    with realparts.running_registry(tmp_path / "registry") as registry:
        pushed = realparts.push(registry, f"oci:{alpine_layout(tmp_path / 'layout')}:latest", "worker/alpine", "3.10")
        digest = pushed.manifest.digest
        event = RegistryEvent(
            "push", registry.host, "worker/alpine", digest, "3.10", realparts.OCI_MANIFEST, datetime.now(UTC), "e1"
        )
        with open_store(store_path) as store, open_queue(queue_path) as queue:
            assert isinstance(
                handle_event(event, store, queue, "unused-by-worker", registries=allowing(event.registry)), ScanRequest
            )

        done = _worker(
            *("--runner", "bubblewrap", "--store", store_path, "--queue", queue_path, "--db", str(db)),
            *("--insecure-registries", registry.host),
        )
    assert done.returncode == 0, done.stderr
    assert "acrguard: worker: 1 scanned, 0 failed" in done.stderr
    with open_store(store_path) as store:
        detail = store.get_image(registry.host, digest)
        assert detail is not None and detail.health == "Unhealthy"
        assert any(f.finding.id == VULN for f in store.list_findings(registry.host, digest))
    with open_queue(queue_path) as queue:
        assert queue.receive(1, 30) == [], "the worker leaves nothing visible behind"


def test_worker_needs_a_store_and_a_queue(tmp_path: Path) -> None:
    env = {"ACRGUARD_STORE": "", "ACRGUARD_QUEUE": ""}
    done = _worker("--queue", str(tmp_path / "q.sqlite"), env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["acrguard: worker: set --store or ACRGUARD_STORE"]
