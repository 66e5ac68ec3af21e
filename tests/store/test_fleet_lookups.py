"""The store's fleet-wide read queries (the dashboard's), on SQLite and PostgreSQL: images by health per
repository, findings by severity and fix, the findings history a trend counts from, the most widespread
vulnerabilities, scans by status, one digest's scans, a vulnerability's occurrences, what rules hide."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from scanner.assess.image_health import summarise
from scanner.model.types import Finding, Inventory
from scanner.store import FindingsStore
from scanner.store.records import HealthCount

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
REG = "reg.azurecr.io"
MT = "application/vnd.oci.image.manifest.v1+json"
D1, D2, D3, D4 = ("sha256:" + c * 64 for c in "1234")


def _assess(store: FindingsStore, digest: str, found: list[Finding], at: datetime) -> None:
    health = "Unhealthy" if any(not f.disabled for f in found) else "Healthy"
    store.save_assessment(REG, digest, found, health, "", summarise(found), at)


def test_fleet_queries(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    _, found = alpine_image
    store.record_push(REG, "app/a", D1, "1", MT, T0)
    store.record_push(REG, "app/b", D1, "1", MT, T0)  # the same digest in two repositories
    store.record_push(REG, "app/a", D2, "2", MT, T0)
    store.record_push(REG, "app/a", D3, "3", MT, T0)  # never assessed
    store.record_push(REG, "app/gone", D4, "4", MT, T0)
    _assess(store, D1, found, T0)
    _assess(store, D2, [], T0)
    _assess(store, D4, found, T0)
    store.mark_deleted(REG, "app/gone", D4, T0 + timedelta(minutes=1))  # its findings stay as history only
    # Two days later one vulnerability is fixed (all its findings resolved) and one finding is disabled.
    target = found[0].id
    rest = [f for f in found if f.id != target]
    kept = rest[1:]
    disabled = replace(rest[0], disabled=True, disabled_by="accept-one")
    _assess(store, D1, [*kept, disabled], T0 + timedelta(days=2))

    counts = sorted(store.health_counts(), key=lambda c: (c.repository, c.health or ""))
    assert counts == [
        HealthCount(REG, "app/a", None, 1),
        HealthCount(REG, "app/a", "Healthy", 1),
        HealthCount(REG, "app/a", "Unhealthy", 1),
        HealthCount(REG, "app/b", "Unhealthy", 1),
    ]
    finding_counts = store.finding_counts()
    assert sum(c.findings for c in finding_counts) == len(kept)
    assert {c.fix_status for c in finding_counts} <= {"fixed", "not_fixed", "wont_fix"}
    assert store.finding_counts("other.azurecr.io") == []

    spans = store.finding_spans(T0 - timedelta(days=1))
    # D4's findings stay open in its history (a deleted image is not assessed again).
    assert sum(s.findings for s in spans if s.resolved is None) == len(kept) + len(found)
    closed = [(s.opened, s.resolved, s.findings) for s in spans if s.resolved is not None]
    assert closed == [("2026-03-01", "2026-03-03", len(found) - len(rest))]

    spread = store.widespread_vulnerabilities(50)
    assert {s.vuln_id for s in spread} == {f.id for f in kept}
    assert all(s.digests == 1 and s.finding.finding.id == s.vuln_id for s in spread)

    occurrences = store.occurrences(kept[0].id)
    assert [(o.image.key.repository, o.image.tags) for o in occurrences] == [("app/a", ("1",)), ("app/b", ("1",))]
    assert store.occurrences(target) == []  # resolved on the live digest, and D4 is deleted

    assert store.disabled_counts() == {"accept-one": (1, 1)}


def test_scan_queries(store: FindingsStore) -> None:
    first = store.start_scan(REG, "app/a", D1, "push", T0)
    store.finish_scan(first, "failed", "pull refused", {}, "1", "db", (), T0 + timedelta(seconds=3))
    second = store.start_scan(REG, "app/a", D1, "manual", T0 + timedelta(hours=1))
    store.finish_scan(second, "succeeded", "", {}, "1", "db", (), T0 + timedelta(hours=1, seconds=2))
    old = store.start_scan(REG, "app/a", D2, "push", T0 - timedelta(days=2))
    store.finish_scan(old, "succeeded", "", {}, "1", "db", (), T0 - timedelta(days=2))

    since = T0 - timedelta(hours=1)
    assert sorted((c.status, c.scans) for c in store.scan_counts(since)) == [("failed", 1), ("succeeded", 1)]
    failures = store.recent_scans(since, "failed")
    assert [(s.scan_id, s.error) for s in failures] == [(first, "pull refused")]
    assert [s.scan_id for s in store.scan_history(REG, D1)] == [second, first]
