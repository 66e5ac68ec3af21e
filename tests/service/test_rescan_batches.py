"""Rescans a batch at a time (`scanner.service.rescan`): replicas of a real image under several digests, in
batches smaller than the fleet, store exactly what re-assessing each digest alone stores; a digest the store
cannot write with its batch is written alone, and only its own failure counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scanner.model.codec import finding_to_dict
from scanner.model.types import Inventory
from scanner.service import rescan
from scanner.service.pipeline import Policy, current_detector_versions, reassess_stored
from scanner.store import FindingsStore, open_store
from scanner.store.records import ImageKey
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

REG, VERSION = "batches.azurecr.io", "batch-test"
NOW = datetime.now(UTC)


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _seed(store: FindingsStore, sample: Inventory, count: int) -> None:
    """`count` replicas of the sample (every third with one package less: another package list)."""
    for n in range(count):
        packages = sample.packages[1:] if n % 3 == 2 else sample.packages
        image = replace(sample.image, digest=_digest(n))
        store.record_push(REG, f"team/app{n % 2}", _digest(n), f"v{n}", "application/json", NOW - timedelta(days=2))
        store.save_inventory(
            REG,
            _digest(n),
            replace(sample, image=image, packages=packages),
            VERSION,
            current_detector_versions(),
            NOW,
        )
        store.record_pull(REG, f"team/app{n % 2}", _digest(n), NOW - timedelta(hours=1), "registry-notification")


def _stored(store: FindingsStore, count: int) -> list[object]:
    out = []
    for n in range(count):
        detail = store.get_image(REG, _digest(n))
        assert detail is not None
        findings = sorted((f.key, str(finding_to_dict(f.finding))) for f in store.list_findings(REG, _digest(n)))
        out.append((detail.health, detail.reason, findings))
    return out


def test_batches_store_what_each_digest_alone_stores(
    tmp_path: Path, alpine310_sample: Inventory, alpine310_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rescan, "BATCH", 4)  # 10 digests: batches of 4, 4 and 2
    count = 10
    with open_store(str(tmp_path / "batched.sqlite")) as batched, open_store(str(tmp_path / "alone.sqlite")) as alone:
        _seed(batched, alpine310_sample, count)
        _seed(alone, alpine310_sample, count)
        with SqliteVulnDatabase.open(alpine310_db) as db:
            counts = rescan.rescan_recent(batched, db, NOW - timedelta(days=1), VERSION)
            assert (counts.rematched, counts.failed) == (count, 0)
            for n in range(count):
                assert reassess_stored(ImageKey(REG, f"team/app{n % 2}", _digest(n)), alone, db, Policy()) is not None
        got, want = _stored(batched, count), _stored(alone, count)
        assert got == want
        assert any(findings for _, _, findings in got) and got[0] != got[2]  # findings, and two package lists
        assert batched.usage(REG, NOW - timedelta(days=1)).events == {"rescan": count}


def test_a_digest_the_batch_cannot_store_fails_alone(
    tmp_path: Path, alpine310_sample: Inventory, alpine310_db: Path
) -> None:
    """The database itself refuses one digest's assessment (a trigger): the batch is written digest by digest
    and only that one fails."""
    with open_store(str(tmp_path / "store.sqlite")) as store:
        _seed(store, alpine310_sample, 3)
        with store._tx() as tx:  # type: ignore[attr-defined]
            tx.run(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON assessments"
                f" WHEN NEW.digest = '{_digest(1)}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        with SqliteVulnDatabase.open(alpine310_db) as db:
            counts = rescan.rescan_recent(store, db, NOW - timedelta(days=1), VERSION)
        assert (counts.rematched, counts.failed) == (2, 1)
        assert store.get_image(REG, _digest(1)).health is None  # type: ignore[union-attr]
        assert all(store.get_image(REG, _digest(n)).health is not None for n in (0, 2))  # type: ignore[union-attr]
