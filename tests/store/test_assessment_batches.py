"""A rescan's batch in the store: assessments of several digests in one transaction, inventories read and
rescans metered together; on SQLite and PostgreSQL. A batch must store exactly what the same assessments saved
one at a time store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from scanner.model.types import Finding, Inventory
from scanner.store import FindingsStore, open_store, sql
from scanner.store.records import NewAssessment
from scanner.store.sql import KEY_LIST_SIZE

T0 = datetime(2025, 3, 1, tzinfo=UTC)
REG = "batch.azurecr.io"
DIGESTS = ["sha256:" + str(n) * 64 for n in range(1, 6)]
MT = "application/vnd.oci.image.manifest.v1+json"


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _rows(store: FindingsStore, digest: str) -> object:
    """Everything stored of a digest's assessment: health, reason, summary, findings with their history."""
    detail = store.get_image(REG, digest)
    assert detail is not None
    findings = sorted(
        (f.key, f.first_seen, f.last_seen, f.resolved_at, f.reopened, f.finding)
        for f in store.list_findings(REG, digest, include_disabled=True)
    )
    ids = {f.finding.id: store.images_with_vulnerability(f.finding.id) for f in store.list_findings(REG, digest)}
    return detail.health, detail.reason, detail.assessed_at, findings, ids


def _rounds(findings: list[Finding]) -> list[list[NewAssessment]]:
    """Three rounds over five digests: first findings, then some resolved, changed, added, reopened."""
    a, b, c, d = findings[:4]
    first = [
        NewAssessment(REG, dg, findings[: n + 1], "Unhealthy", f"r{n}", {"n": n}, t(0)) for n, dg in enumerate(DIGESTS)
    ]
    second = [
        NewAssessment(REG, DIGESTS[0], [], "Healthy", "", {}, t(10)),
        NewAssessment(REG, DIGESTS[1], [a, replace(b, severity="Critical")], "Unhealthy", "", {}, t(10)),
        NewAssessment(REG, DIGESTS[2], [a, b, c, d], "Unhealthy", "", {}, t(10)),
        NewAssessment(REG, DIGESTS[3], [replace(a, disabled=True)], "Unhealthy", "", {}, t(10)),
    ]
    third = [
        NewAssessment(REG, DIGESTS[0], [a], "Unhealthy", "", {}, t(20)),  # reopened
        NewAssessment(REG, DIGESTS[2], [a, b, c, d], "Unhealthy", "", {}, t(20)),  # unchanged
        NewAssessment(REG, DIGESTS[4], [], "Healthy", "", {}, t(-5)),  # older than the stored one: stale
    ]
    return [first, second, third]


@pytest.fixture
def two_stores(store_url: str, tmp_path) -> tuple[FindingsStore, FindingsStore]:  # type: ignore[no-untyped-def]
    """The parametrised store (batches) and a SQLite store beside it (one digest at a time)."""
    return open_store(store_url), open_store(str(tmp_path / "one-at-a-time.sqlite"))


@pytest.mark.parametrize("key_list_size", [KEY_LIST_SIZE, 2], ids=["one-key-list", "key-lists-of-two"])
def test_a_batch_stores_what_one_at_a_time_stores(
    two_stores: tuple[FindingsStore, FindingsStore],
    alpine_image: tuple[Inventory, list[Finding]],
    key_list_size: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Also when the batch's keys span several key lists (a batch of 500 is three), each list read alike."""
    monkeypatch.setattr(sql, "KEY_LIST_SIZE", key_list_size)
    batched, single = two_stores
    with batched, single:
        for store in (batched, single):
            for digest in DIGESTS:
                store.record_push(REG, "team/app", digest, digest[-4:], MT, t(-60))
        for round_ in _rounds(alpine_image[1]):
            together = batched.save_assessments(round_)
            apart = [
                single.save_assessment(a.registry, a.digest, a.findings, a.health, a.reason, a.summary, a.at)
                for a in round_
            ]
            assert together == apart
        assert any(change.stale for change in together)  # the third round's old assessment was ignored
        for digest in DIGESTS:
            assert _rows(batched, digest) == _rows(single, digest)
        assert batched.save_assessments([]) == []


def test_a_digest_twice_in_one_batch_is_refused(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    twice = [NewAssessment(REG, DIGESTS[0], alpine_image[1][:1], "Unhealthy", "", {}, t(n)) for n in range(2)]
    with pytest.raises(ValueError, match="only once per batch"):
        store.save_assessments(twice)
    assert store.get_image(REG, DIGESTS[0]) is None


def test_inventories_read_and_rescans_metered_together(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    inventory = alpine_image[0]
    for n, digest in enumerate(DIGESTS[:3]):
        store.save_inventory(REG, digest, replace(inventory, reason=f"n{n}"), "1.0", ["apk@1"], t(n))
    keys = [(REG, d) for d in DIGESTS] + [("other.azurecr.io", DIGESTS[0])]
    found = store.load_inventories(keys)
    assert set(found) == {(REG, d) for d in DIGESTS[:3]}
    for digest in DIGESTS[:3]:
        assert found[(REG, digest)] == store.load_inventory(REG, digest)
    assert store.load_inventories([]) == {}
    store.record_usages([(REG, d) for d in DIGESTS], "rescan", t(30))
    store.record_usages([(REG, DIGESTS[0])], "rescan", t(30))  # replayed: counted once
    assert store.usage(REG, t(0)).events == {"rescan": 5}
    with pytest.raises(ValueError, match="charges"):
        store.record_usages([(REG, DIGESTS[0])], "scan", t(31))
