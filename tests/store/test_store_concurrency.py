"""Several instances on one store: concurrent migrate() and writers upserting the same digest."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from typing import Any

from scanner.model.types import Finding, Inventory
from scanner.store import ImageKey, open_store
from scanner.store.migrations import MIGRATIONS

T0 = datetime(2025, 1, 1, tzinfo=UTC)
REG, REPO, DIGEST = "reg.azurecr.io", "app", "sha256:" + "a" * 64
CTX = multiprocessing.get_context("spawn")  # no inherited connections or locks


def _migrate(url: str, barrier: Barrier) -> None:
    barrier.wait()
    with open_store(url, migrate=False) as store:
        store.migrate()


def _write(url: str, barrier: Barrier, worker: int, findings: list[Finding], out: Any) -> None:
    with open_store(url, migrate=False) as store:
        barrier.wait()
        charges = 0
        for i in range(15):
            at = T0 + timedelta(seconds=i)
            store.record_push(REG, REPO, DIGEST, f"tag{i % 3}", "m", at)
            store.record_pull(REG, REPO, DIGEST, at, f"w{worker}")
            store.save_assessment(REG, DIGEST, findings[: 1 + i % 2], "Unhealthy", "", {}, at)
            charges += store.record_usage(REG, DIGEST, "scan", at)
        out.put(charges)


def test_concurrent_migrate_from_two_processes(store_url: str) -> None:
    barrier = CTX.Barrier(2)
    procs = [CTX.Process(target=_migrate, args=(store_url, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open_store(store_url, migrate=False) as store:
        with store._tx(write=False) as tx:  # type: ignore[attr-defined]
            versions = tx.rows("SELECT version FROM schema_migrations ORDER BY version")
            assert versions == [(m.version,) for m in MIGRATIONS]  # each applied once
        store.record_push(REG, REPO, DIGEST, None, "m", T0)
        assert [i.key for i in store.list_images().items] == [ImageKey(REG, REPO, DIGEST)]


def test_two_writers_upserting_the_same_digest(store_url: str, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    open_store(store_url).close()
    findings = alpine_image[1][:2]
    barrier, out = CTX.Barrier(2), CTX.Queue()
    procs = [CTX.Process(target=_write, args=(store_url, barrier, n, findings, out)) for n in range(2)]
    for p in procs:
        p.start()
    charges = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sum(charges) == 1  # one charge, whichever instance won
    with open_store(store_url) as store:
        page = store.list_images()
        assert [i.key for i in page.items] == [ImageKey(REG, REPO, DIGEST)]
        assert page.items[0].tags == ("tag0", "tag1", "tag2")  # three tags on one digest
        assert page.items[0].last_pull == T0 + timedelta(seconds=14)
        assert len(store.list_findings(REG, DIGEST)) == 1  # the t=14 assessment has one finding
        detail = store.get_image(REG, DIGEST)
        assert detail is not None and sorted((r.tag, r.current) for r in detail.tag_history) == [
            ("tag0", True),
            ("tag1", True),
            ("tag2", True),
        ]
        assert store.usage(REG, T0).billable == 1
