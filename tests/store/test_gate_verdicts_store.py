"""Gates' verdicts in the store, against SQLite and a real PostgreSQL (see conftest.py): recorded and read
back newest first, filtered by gate and by image, a replay overwrites, and the history stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scanner.store import FindingsStore, gate_rows
from scanner.store.records import GateActionOutcome, GateVerdictRecord

T0 = datetime(2026, 3, 1, tzinfo=UTC)
REG = "myacr.azurecr.io"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def verdict(gate: str, digest: str, at: datetime, failed: bool = True, **kw: object) -> GateVerdictRecord:
    fields: dict[str, object] = {
        "gate": gate,
        "registry": REG,
        "repository": "team/api",
        "digest": digest,
        "tags": ("1.0", "latest"),
        "failed": failed,
        "reasons": ("1 finding(s) at least High: CVE-2019-14697",) if failed else (),
        "actions": (GateActionOutcome("lock", False, "lock: HTTP 404 from the registry"),),
        "decided_at": at,
    }
    return GateVerdictRecord(**(fields | kw))  # type: ignore[arg-type]


def test_recorded_verdicts_read_back_newest_first_and_filtered(store: FindingsStore) -> None:
    assert store.gate_verdicts() == []
    first = verdict("block-high", DIGEST_A, T0)
    second = verdict("block-high", DIGEST_B, T0 + timedelta(minutes=1), failed=False, actions=())
    other = verdict("notify-kev", DIGEST_A, T0 + timedelta(minutes=2), actions=(GateActionOutcome("notify", True),))
    store.record_gate_verdicts([first])
    store.record_gate_verdicts([second, other])
    assert store.gate_verdicts() == [other, second, first]
    assert store.gate_verdicts(gate="block-high") == [second, first]
    assert store.gate_verdicts(registry=REG, digest=DIGEST_A) == [other, first]
    assert store.gate_verdicts(gate="block-high", registry=REG, digest=DIGEST_A, repository="team/api") == [first]
    assert store.gate_verdicts(repository="other/repo") == []
    assert store.gate_verdicts(limit=1) == [other]
    assert first.actions[0] == GateActionOutcome("lock", False, "lock: HTTP 404 from the registry")


def test_a_replay_overwrites_its_row(store: FindingsStore) -> None:
    store.record_gate_verdicts([verdict("g", DIGEST_A, T0)])
    again = verdict("g", DIGEST_A, T0, actions=(GateActionOutcome("lock", True),))
    store.record_gate_verdicts([again])
    assert store.gate_verdicts() == [again]


def test_history_is_bounded_per_gate_and_by_age(store: FindingsStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate_rows, "KEPT_PER_GATE", 3)
    # One rescan stamps many images with the same time: the bound still cuts at exactly one row.
    same_time = [verdict("g", f"sha256:{n:064x}", T0) for n in range(5)]
    store.record_gate_verdicts(same_time)
    kept = store.gate_verdicts(gate="g")
    assert [v.digest for v in kept] == [f"sha256:{n:064x}" for n in (4, 3, 2)]
    store.record_gate_verdicts([verdict("other", DIGEST_A, T0)])
    assert len(store.gate_verdicts(gate="g")) == 3  # another gate's rows do not count against this one
    # Verdicts older than KEPT_DAYS before the newest write go.
    later = T0 + timedelta(days=gate_rows.KEPT_DAYS + 1)
    store.record_gate_verdicts([verdict("new", DIGEST_B, later)])
    assert [v.gate for v in store.gate_verdicts()] == ["new"]


def test_long_reasons_and_errors_are_cut(store: FindingsStore) -> None:
    long = "x" * 5000
    store.record_gate_verdicts(
        [verdict("g", DIGEST_A, T0, reasons=tuple([long] * 50), actions=(GateActionOutcome("lock", False, long),))]
    )
    (got,) = store.gate_verdicts()
    assert len(got.reasons) == gate_rows.MAX_REASONS
    assert all(len(r) == gate_rows.MAX_TEXT for r in got.reasons)
    assert len(got.actions[0].error) == gate_rows.MAX_TEXT


def test_the_images_current_tags_are_recorded_with_its_verdicts(store: FindingsStore) -> None:
    store.record_push(REG, "team/api", DIGEST_A, "2.1", "application/vnd.oci.image.manifest.v1+json", T0)
    store.record_gate_verdicts([verdict("g", DIGEST_A, T0 + timedelta(minutes=1), tags=())])
    (got,) = store.gate_verdicts()
    assert got.tags == ("2.1",)
