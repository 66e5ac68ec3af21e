"""The production fetch step end to end: a real registry (skopeo push), the sandboxed job in the real
bubblewrap, the store. What is stored is the exact inventory, and a rescan from it gives the first scan's
findings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from service_support import allowing
from test_pipeline import VERSION

from scanner.image.registry_options import RegistryOptions
from scanner.inventory.build import ScanOptions, inventory
from scanner.queue import ScanQueue
from scanner.sandbox.bubblewrap import BubblewrapRunner
from scanner.service.events import RegistryEvent
from scanner.service.pipeline import drain_queue, handle_event
from scanner.service.rescan import rescan_recent
from scanner.service.retry import RetrySettings
from scanner.service.sandboxed import sandboxed_fetch
from scanner.store import FindingsStore
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.integration import realparts

TESTS = Path(__file__).resolve().parents[1]

ARCHIVE = f"docker-archive:{TESTS / 'fixtures/images/fanal/image3_gz_layers.tar'}"


def test_stored_inventory_is_exact_and_a_rescan_gives_the_same_findings(
    tmp_path: Path, store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase
) -> None:
    if realparts.missing_tools(["bwrap", "skopeo"]):
        pytest.fail(f"missing: {realparts.missing_tools(['bwrap', 'skopeo'])}", pytrace=False)
    with realparts.running_registry(tmp_path / "registry") as registry:
        options = ScanOptions(registry=RegistryOptions(allowing(registry.host)))
        fetch = sandboxed_fetch(BubblewrapRunner(), options)
        pushed = realparts.push(registry, ARCHIVE, "samples/alpine", "3.10")
        at = datetime.now(UTC)
        push = RegistryEvent("push", registry.host, "samples/alpine", pushed.digest, "3.10", "", at, "e1")
        assert handle_event(push, store, queue, VERSION, registries=allowing(push.registry)) is not None
        assert drain_queue(queue, store, db, fetch, VERSION, settings=RetrySettings()).processed == 1
        # The same image inventoried in this process, without the sandbox: the reference the job uses.
        local = inventory(f"docker://{registry.host}/samples/alpine@{pushed.digest}", options)[0]

    stored = store.load_inventory(registry.host, pushed.digest)
    assert stored is not None
    # Equal in every field: package metadata, layer sizes and media types, the OS's names, warnings.
    assert stored.inventory == local
    assert all(p.metadata for p in local.packages) and all(layer.size for layer in local.image.layers)
    first = {f.key: f.finding for f in store.list_findings(registry.host, pushed.digest)}
    assert len(first) == 8

    pull = replace(push, kind="pull", tag=None, event_id="p1", at=datetime.now(UTC))
    handle_event(pull, store, queue, VERSION, registries=allowing(pull.registry))
    counts = rescan_recent(store, db, datetime.now(UTC) - timedelta(days=1), VERSION, queue=queue)
    assert (counts.rematched, counts.requeued, counts.failed) == (1, 0, 0)
    assert {f.key: f.finding for f in store.list_findings(registry.host, pushed.digest)} == first
