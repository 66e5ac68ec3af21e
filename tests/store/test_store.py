"""The findings store contract, run against SQLite and a real PostgreSQL (see conftest.py).

Every write is also replayed to check idempotency."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from scanner.model.types import Finding, Inventory
from scanner.store import FindingsStore, ImageKey, StoreError, open_store
from scanner.store.assessment_rows import finding_key
from scanner.store.sql import dumps, from_text, loads, to_text
from tests.store.rows import all_rows
from tests.store.rows import digest as _digest

T0 = datetime(2025, 1, 1, tzinfo=UTC)
REG, REPO, D1, D2 = "reg.azurecr.io", "app/web", "sha256:" + "1" * 64, "sha256:" + "2" * 64
MT = "application/vnd.oci.image.manifest.v1+json"


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def twice(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    first = fn(*args, **kwargs)
    fn(*args, **kwargs)
    return first


def test_push_repush_and_new_tag_keep_one_image(store: FindingsStore) -> None:
    twice(store.record_push, REG, REPO, D1, "1.0", MT, t(0))
    twice(store.record_push, REG, REPO, D1, "1.0", MT, t(5))
    twice(store.record_push, REG, REPO, D1, "latest", MT, t(3))
    page = store.list_images()
    assert [i.key for i in page.items] == [ImageKey(REG, REPO, D1)] and page.cursor is None
    item = page.items[0]
    assert item.tags == ("1.0", "latest") and item.first_push == t(0) and item.last_push == t(5)
    detail = store.get_image(REG, D1)
    assert detail is not None
    assert {(r.tag, r.first_seen, r.last_seen, r.current) for r in detail.tag_history} == {
        ("1.0", t(0), t(5), True),
        ("latest", t(3), t(3), True),
    }


def test_tag_moved_to_another_digest_keeps_old_history(store: FindingsStore) -> None:
    store.record_push(REG, REPO, D1, "latest", MT, t(0))
    twice(store.record_push, REG, REPO, D2, "latest", MT, t(10))
    store.record_push(REG, REPO, D1, "latest", MT, t(0))  # an old event replayed late changes nothing
    old, new = store.get_image(REG, D1), store.get_image(REG, D2)
    assert old is not None and new is not None
    assert [(r.tag, r.current, r.last_seen) for r in old.tag_history] == [("latest", False, t(0))]
    assert [(r.tag, r.current) for r in new.tag_history] == [("latest", True)]
    assert {i.key.digest: i.tags for i in store.list_images().items} == {D1: (), D2: ("latest",)}


def test_delete_leaves_health_views_but_keeps_history(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    findings = alpine_image[1]
    store.record_push(REG, REPO, D1, "v1", MT, t(0))
    store.record_pull(REG, REPO, D1, t(1), "registry")
    store.save_assessment(REG, D1, findings, "Unhealthy", "", {}, t(2))
    twice(store.mark_deleted, REG, REPO, D1, t(5))
    assert store.list_images().items == ()
    assert store.images_with_vulnerability(findings[0].id) == []
    assert store.recently_pulled(t(0)) == []
    detail = store.get_image(REG, D1)
    assert detail is not None and detail.repositories[0].deleted and detail.health == "Unhealthy"
    assert [r.current for r in detail.tag_history] == [False] and detail.findings
    store.record_push(REG, REPO, D1, "v1", MT, t(4))  # older than the delete: stays deleted
    assert store.list_images().items == ()
    store.record_push(REG, REPO, D1, "v2", MT, t(9))  # pushed again later: back
    assert [i.tags for i in store.list_images().items] == [("v2",)]


def test_pulls_and_recently_pulled(store: FindingsStore) -> None:
    store.record_push(REG, REPO, D1, "a", MT, t(0))
    twice(store.record_pull, REG, REPO, D1, t(30), "registry")
    store.record_pull(REG, REPO, D1, t(20), "log-analytics")  # out of order: last_pull stays the max
    store.record_pull(REG, "other", D2, t(5), "registry")  # never seen pushed: recorded anyway
    assert store.recently_pulled(t(10)) == [ImageKey(REG, REPO, D1)]
    assert store.recently_pulled(t(0)) == [ImageKey(REG, REPO, D1), ImageKey(REG, "other", D2)]
    assert store.recently_pulled(t(31)) == []
    assert store.recently_pulled(t(0), among={(REG, D2), ("elsewhere.io", D1)}) == [ImageKey(REG, "other", D2)]
    assert store.recently_pulled(t(0), among=set()) == []
    detail = store.get_image(REG, D1)
    assert detail is not None and detail.repositories[0].last_pull == t(30)


def test_scan_lifecycle_and_current_scan_by_version(store: FindingsStore) -> None:
    scan_id = twice(store.start_scan, REG, REPO, D1, "push", t(0))
    assert store.start_scan(REG, REPO, D1, "push", t(0)) == scan_id  # a replayed trigger names the same scan
    assert not store.has_current_scan(REG, D1, "1.0")
    twice(store.finish_scan, scan_id, "succeeded", "", {"pull": 1.5}, "1.0", "db-7", ["apk@1", "os@1"], t(1))
    assert store.has_current_scan(REG, D1, "1.0") and not store.has_current_scan(REG, D1, "1.1")
    assert not store.has_current_scan(REG, D2, "1.0")
    failed = store.start_scan(REG, REPO, D1, "rescan", t(2))
    store.finish_scan(failed, "failed", "registry unreachable", {}, "1.1", "db-8", [], t(3))
    assert not store.has_current_scan(REG, D1, "1.1")
    store.record_push(REG, REPO, D1, None, MT, t(0))
    detail = store.get_image(REG, D1)
    assert detail is not None and detail.last_scan is not None
    last = detail.last_scan
    assert (last.scan_id, last.status, last.error, last.finished_at) == (failed, "failed", "registry unreachable", t(3))
    with pytest.raises(StoreError, match="no scan"):
        store.finish_scan("nope", "failed", "", {}, "", "", [], t(3))


def test_inventory_round_trip(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    inv = alpine_image[0]
    assert store.load_inventory(REG, D1) is None
    twice(store.save_inventory, REG, D1, inv, "1.0", ["apk@1"], t(0))
    stored = store.load_inventory(REG, D1)
    assert stored is not None and stored.inventory == inv
    assert (stored.scanner_version, stored.detector_versions, stored.saved_at) == ("1.0", ("apk@1",), t(0))
    store.save_inventory(REG, D1, replace(inv, reason="old"), "0.9", [], t(-5))  # older: ignored
    assert store.load_inventory(REG, D1) == stored
    # The layer-chain cache that replaced save_layer/load_layer: tests/store/test_layer_chain_store.py.


def test_assessment_history_first_seen_resolved_reopened(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    findings = alpine_image[1][:3]
    a, b, c = findings
    change = twice(store.save_assessment, REG, D1, findings, "Unhealthy", "3", {"active": 3}, t(0))
    assert change.previous_health is None and change.changed and len(change.added) == 3
    store.save_assessment(REG, D1, [a, b], "Unhealthy", "2", {"active": 2}, t(10))
    got = {s.key: s for s in store.list_findings(REG, D1)}
    assert set(got) == {finding_key(a), finding_key(b)}
    assert got[finding_key(a)].first_seen == t(0) and got[finding_key(a)].last_seen == t(10)
    change = twice(store.save_assessment, REG, D1, [a, b, c], "Unhealthy", "3", {"active": 3}, t(20))
    back = {s.key: s for s in store.list_findings(REG, D1)}[finding_key(c)]
    assert (back.first_seen, back.resolved_at, back.reopened, back.last_seen) == (t(0), None, 1, t(20))
    assert change.added == (finding_key(c),)
    store.save_assessment(REG, D1, [], "Healthy", "", {"active": 0}, t(30))
    assert store.list_findings(REG, D1) == []
    stale = store.save_assessment(REG, D1, [a], "Unhealthy", "", {}, t(25))
    assert stale.stale and not stale.changed and store.list_findings(REG, D1) == []


def test_change_detection(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    a, b = alpine_image[1][:2]
    first = store.save_assessment(REG, D1, [a], "Unhealthy", "", {}, t(0))
    assert first.changed and first.health_changed
    same = store.save_assessment(REG, D1, [replace(a, summary="reworded")], "Unhealthy", "", {}, t(1))
    assert not same.changed and same.added == () and same.removed == ()
    more = store.save_assessment(REG, D1, [a, b], "Unhealthy", "", {}, t(2))
    assert more.changed and not more.health_changed and more.added == (finding_key(b),)
    disabled = store.save_assessment(REG, D1, [a, replace(b, disabled=True)], "Unhealthy", "", {}, t(3))
    assert disabled.removed == (finding_key(b),)
    healthy = store.save_assessment(
        REG, D1, [replace(a, disabled=True), replace(b, disabled=True)], "Healthy", "", {}, t(4)
    )
    assert healthy.health_changed and healthy.previous_health == "Unhealthy" and healthy.removed == (finding_key(a),)


def test_usage_bills_first_scan_only(store: FindingsStore) -> None:
    assert store.record_usage(REG, D1, "rescan", t(1)) is False  # reordered: the rescan arrives first
    assert store.record_usage(REG, D1, "scan", t(2)) is True
    assert store.record_usage(REG, D1, "scan", t(2)) is False  # duplicated
    assert store.record_usage(REG, D1, "scan", t(0)) is False  # an earlier scan replayed late: still one charge
    assert store.record_usage(REG, D1, "push", t(3)) is False
    assert store.record_usage(REG, D2, "scan", t(5)) is True
    store.record_usage("other.azurecr.io", D2, "scan", t(5))
    counts = store.usage(REG, t(0))
    assert counts.billable == 2 and counts.events == {"rescan": 1, "scan": 3, "push": 1} and counts.free == 3
    later = store.usage(REG, t(1))  # D1's charge dates from its earliest scan, t(0)
    assert later.billable == 1 and later.events == {"rescan": 1, "scan": 2, "push": 1}


def test_lookups_filters_and_paging(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    findings = alpine_image[1]
    digests = [f"sha256:{i:064x}" for i in range(7)]
    for i, digest in enumerate(digests):
        store.record_push(REG if i < 5 else "b.io", f"repo{i % 2}", digest, f"t{i}", MT, t(i))
        store.save_assessment(
            REG if i < 5 else "b.io",
            digest,
            findings if i % 3 else [],
            "Unhealthy" if i % 3 else "Healthy",
            "",
            {},
            t(i),
        )
    seen, cursor, pages = [], None, 0
    while True:
        page = store.list_images(limit=3, cursor=cursor)
        seen.extend(page.items)
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert pages == 3 and len(seen) == 7 and [i.key for i in seen] == sorted(i.key for i in seen)
    assert {i.key.digest for i in store.list_images(registry=REG, repository="repo0").items} == {
        digests[0],
        digests[2],
        digests[4],
    }
    healthy = store.list_images(status="Healthy").items
    assert {i.key.digest for i in healthy} == {digests[0], digests[3], digests[6]}
    with pytest.raises(StoreError, match="cursor"):
        store.list_images(cursor="not-a-cursor")
    fixed = store.list_findings(REG, digests[1], patchable=True)
    assert fixed and all(s.finding.patchable for s in fixed)
    unfixed = store.list_findings(REG, digests[1], patchable=False)
    assert len(fixed) + len(unfixed) == len(findings)
    sev = findings[0].severity
    assert all(s.finding.severity == sev for s in store.list_findings(REG, digests[1], severity=sev))
    assert store.list_findings(REG, digests[1], fix_status="fixed") == fixed
    detail = store.get_image(REG, digests[1])
    assert detail is not None and len(detail.findings) == len(findings) and store.get_image(REG, "sha256:none") is None


def test_disabled_findings_only_on_request(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    a, b = alpine_image[1][:2]
    store.record_push(REG, REPO, D1, "x", MT, t(0))
    store.save_assessment(REG, D1, [a, replace(b, disabled=True, disabled_by="r")], "Unhealthy", "", {}, t(0))
    assert [s.finding.id for s in store.list_findings(REG, D1)] == [a.id]
    assert len(store.list_findings(REG, D1, include_disabled=True)) == 2
    assert store.images_with_vulnerability(b.id) == []


def test_images_with_vulnerability_by_id_or_alias(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    a = replace(alpine_image[1][0], id="ALPINE-CVE-2099-1", aliases=("CVE-2099-1", "GHSA-xxxx"))
    for repo in ("r1", "r2"):
        store.record_push(REG, repo, D1, "x", MT, t(0))
    store.record_push(REG, REPO, D2, "y", MT, t(0))
    store.save_assessment(REG, D1, [a], "Unhealthy", "", {}, t(1))
    store.save_assessment(REG, D2, [a], "Unhealthy", "", {}, t(1))
    both = [ImageKey(REG, REPO, D2), ImageKey(REG, "r1", D1), ImageKey(REG, "r2", D1)]
    assert store.images_with_vulnerability("CVE-2099-1") == both
    assert store.images_with_vulnerability("ALPINE-CVE-2099-1") == both == store.images_with_vulnerability("GHSA-xxxx")
    store.save_assessment(REG, D2, [], "Healthy", "", {}, t(2))  # resolved: no longer listed
    store.mark_deleted(REG, "r2", D1, t(3))
    assert store.images_with_vulnerability("CVE-2099-1") == [ImageKey(REG, "r1", D1)]
    assert store.images_with_vulnerability("CVE-0000-0") == []


def test_times_are_utc_and_naive_times_refused(store: FindingsStore) -> None:
    store.record_push(REG, REPO, D1, "x", MT, datetime(2025, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
    item = store.list_images().items[0]
    assert item.first_push == T0 and item.first_push is not None and item.first_push.tzinfo == UTC
    with pytest.raises(ValueError, match="naive"):
        store.record_push(REG, REPO, D1, "x", MT, datetime(2025, 1, 1))


def test_migrate_is_repeatable_and_open_store_urls(store_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_store(store_url) as first:
        first.migrate()
        first.migrate()
    with open_store(store_url, migrate=True) as again:
        again.record_push(REG, REPO, D1, None, MT, t(0))
        assert len(again.list_images().items) == 1
    with open_store(f"sqlite:///{tmp_path}/x.sqlite") as by_url:
        assert by_url.list_images().items == ()
    with pytest.raises(StoreError, match="unsupported"):
        open_store("mysql://x")


def _history(store: FindingsStore, digest: str) -> dict[str, tuple[str, str, str | None, int]]:
    """Every finding row of a digest, resolved ones too: key → (first_seen, last_seen, resolved_at, reopened);
    an open finding's last_seen is its image's latest assessment, as the lookups read it."""
    with store._tx(write=False) as tx:  # type: ignore[attr-defined]
        rows = tx.rows(
            "SELECT f.finding_key, f.first_seen, CASE WHEN f.resolved_at IS NULL THEN a.assessed_at"
            " ELSE f.last_seen END, f.resolved_at, f.reopened FROM findings f JOIN assessments a"
            " ON a.registry = f.registry AND a.digest = f.digest WHERE f.registry = ? AND f.digest = ?",
            (REG, digest),
        )
    return {key: (first, last, resolved, int(reopened)) for key, first, last, resolved, reopened in rows}


def _distinct_ids(findings: list[Finding], count: int) -> list[Finding]:
    by_id = {f.id: f for f in reversed(findings)}
    assert len(by_id) >= count, "the fixture image must have enough distinct vulnerabilities"
    return list(by_id.values())[:count]


def test_one_assessment_with_unchanged_new_changed_resolved_and_reopened_findings(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    same, changing, going, returning = _distinct_ids(alpine_image[1], 4)
    fresh = replace(same, id="ALPINE-CVE-2099-0001", aliases=("CVE-2099-0001",))  # a new record after an update
    k, at = finding_key, {m: to_text(t(m)) for m in (0, 10, 20, 30)}
    store.record_push(REG, REPO, D1, "v1", MT, t(0))
    store.save_assessment(REG, D1, [same, changing, going, returning], "Unhealthy", "", {}, t(0))
    store.save_assessment(REG, D1, [same, changing, going], "Unhealthy", "", {}, t(10))  # `returning` resolved
    # A database update gave `changing` another alias and severity; `going` is fixed, `returning` is back.
    changed = replace(changing, aliases=(*changing.aliases, "GHSA-new1-alia-s000"), severity="Critical")
    change = store.save_assessment(REG, D1, [same, changed, returning, fresh], "Unhealthy", "", {}, t(20))
    assert change.added == tuple(sorted((k(returning), k(fresh)))) and change.removed == (k(going),)
    assert change.previous_health == "Unhealthy" and not change.stale
    assert _history(store, D1) == {
        k(same): (at[0], at[20], None, 0),
        k(changing): (at[0], at[20], None, 0),
        k(going): (at[0], at[10], at[20], 0),
        k(returning): (at[0], at[20], None, 1),
        k(fresh): (at[20], at[20], None, 0),
    }
    current = {s.key: s.finding for s in store.list_findings(REG, D1)}
    assert current == {k(same): same, k(changing): changed, k(returning): returning, k(fresh): fresh}
    assert [s.key for s in store.list_findings(REG, D1, severity="Critical")] == [k(changing)]
    image = [ImageKey(REG, REPO, D1)]
    for vuln_id in ("GHSA-new1-alia-s000", same.id, changing.id, returning.id, fresh.id):
        assert store.images_with_vulnerability(vuln_id) == image, vuln_id
    assert store.images_with_vulnerability(going.id) == []
    # The same findings again: nothing changes but last_seen.
    again = twice(store.save_assessment, REG, D1, [same, changed, returning, fresh], "Unhealthy", "", {}, t(30))
    assert not again.changed and again.added == () and again.removed == ()
    assert _history(store, D1) == {
        k(same): (at[0], at[30], None, 0),
        k(changing): (at[0], at[30], None, 0),
        k(going): (at[0], at[10], at[20], 0),
        k(returning): (at[0], at[30], None, 1),
        k(fresh): (at[20], at[30], None, 0),
    }
    assert {s.key: s.finding for s in store.list_findings(REG, D1)} == current


def test_many_findings_unchanged_then_resolved(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    """A thousand findings on one digest, each statement over all of them."""
    base = alpine_image[1][0]
    many = [replace(base, package=replace(base.package, name=f"pkg{i}")) for i in range(1001)]
    assert len({finding_key(f) for f in many}) == len(many)
    first = store.save_assessment(REG, D1, many, "Unhealthy", "", {}, t(0))
    assert len(first.added) == len(many)
    assert not store.save_assessment(REG, D1, many, "Unhealthy", "", {}, t(1)).changed
    assert {row for row in _history(store, D1).values()} == {(to_text(t(0)), to_text(t(1)), None, 0)}
    gone = store.save_assessment(REG, D1, [], "Healthy", "", {}, t(2))
    assert len(gone.removed) == len(many) and gone.health_changed
    assert {row for row in _history(store, D1).values()} == {(to_text(t(0)), to_text(t(1)), to_text(t(2)), 0)}
    back = store.save_assessment(REG, D1, many, "Unhealthy", "", {}, t(3))
    assert len(back.added) == len(many)
    assert {row for row in _history(store, D1).values()} == {(to_text(t(0)), to_text(t(3)), None, 1)}


# --- lookups paged for the HTTP API (benchmarks/README.md, http_lookup) ------------------------------------


def _assessed_registry(store: FindingsStore, findings: list[Finding]) -> None:
    """Five repositories: Healthy, Unhealthy (every finding), Unsupported, not assessed, Unhealthy but deleted;
    and the Unhealthy digest pushed to a second repository too."""
    store.record_push(REG, "a/healthy", _digest(1), "1", MT, t(0))
    store.save_assessment(REG, _digest(1), [], "Healthy", "", {}, t(1))
    for repo in ("b/unhealthy", "c/same-digest"):
        store.record_push(REG, repo, _digest(2), "2", MT, t(0))
    store.save_assessment(REG, _digest(2), findings, "Unhealthy", "", {"total": len(findings)}, t(1))
    store.record_push(REG, "d/windows", _digest(3), "3", MT, t(0))
    store.save_assessment(REG, _digest(3), [], "Unsupported", "windows image", {}, t(1))
    store.record_push(REG, "e/unscanned", _digest(4), "4", MT, t(0))
    store.record_push(REG, "f/deleted", _digest(5), "5", MT, t(0))
    store.save_assessment(REG, _digest(5), findings, "Unhealthy", "", {}, t(1))
    store.mark_deleted(REG, "f/deleted", _digest(5), t(2))
    store.record_push("other.azurecr.io", "a/healthy", _digest(6), "6", MT, t(0))
    store.save_assessment("other.azurecr.io", _digest(6), [], "Healthy", "", {}, t(1))


def test_assessment_rows_in_key_order_one_per_active_finding(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    findings = alpine_image[1]
    disabled = replace(findings[0], disabled=True, disabled_by="rule")
    _assessed_registry(store, [disabled, *findings[1:]])
    page = store.list_assessment_rows(REG, limit=1000)
    active = sorted(finding_key(f) for f in findings[1:])
    expected = [
        ("a/healthy", _digest(1), ""),
        *(("b/unhealthy", _digest(2), k) for k in active),
        *(("c/same-digest", _digest(2), k) for k in active),
        ("d/windows", _digest(3), ""),
    ]
    assert [row.key for row in page.items] == expected and page.cursor is None
    healthy, first_finding = page.items[0], page.items[1]
    assert healthy.finding is None and healthy.image.health == "Healthy" and healthy.image.tags == ("1",)
    assert first_finding.finding is not None and first_finding.finding.key == active[0]
    assert first_finding.image.summary == {"total": len(findings)} and first_finding.image.tags == ("2",)
    assert page.items[-1].image.reason == "windows image"
    for limit in (1, 2, 3, len(expected) - 1, len(expected)):
        assert all_rows(store, REG, limit) == expected, limit
    assert store.list_assessment_rows("nowhere.azurecr.io").items == ()
    with pytest.raises(StoreError, match="cursor"):
        store.list_assessment_rows(REG, cursor="bm90IGEgY3Vyc29y")


def test_assessment_rows_resume_after_the_cursor_when_rows_change(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    findings = alpine_image[1]
    _assessed_registry(store, findings)
    first = store.list_assessment_rows(REG, limit=3)
    assert first.cursor is not None and [r.key[0] for r in first.items] == ["a/healthy", "b/unhealthy", "b/unhealthy"]
    # Between pages: an image before the cursor, one after it, and the cursor's image loses a finding.
    store.record_push(REG, "a/before", _digest(7), "7", MT, t(3))
    store.save_assessment(REG, _digest(7), [], "Healthy", "", {}, t(4))
    store.record_push(REG, "z/after", _digest(8), "8", MT, t(3))
    store.save_assessment(REG, _digest(8), [], "Healthy", "", {}, t(4))
    kept = [f for f in findings if finding_key(f) != sorted(map(finding_key, findings))[-1]]
    store.save_assessment(REG, _digest(2), kept, "Unhealthy", "", {}, t(5))
    rest: list[tuple[str, str, str]] = []
    cursor: str | None = first.cursor
    while cursor is not None:
        page = store.list_assessment_rows(REG, limit=3, cursor=cursor)
        rest.extend(r.key for r in page.items)
        cursor = page.cursor
    seen = [r.key for r in first.items]
    assert not set(seen) & set(rest) and ("a/before", _digest(7), "") not in rest
    keys = sorted(map(finding_key, kept))
    assert rest == [
        *(("b/unhealthy", _digest(2), k) for k in keys if k > seen[-1][2]),
        *(("c/same-digest", _digest(2), k) for k in keys),
        ("d/windows", _digest(3), ""),
        ("z/after", _digest(8), ""),
    ]


def test_images_with_vulnerability_paged(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    a = replace(alpine_image[1][0], id="ALPINE-CVE-2099-1", aliases=("CVE-2099-1",))
    b = replace(a, package=replace(a.package, name="libssl-twin"))  # two findings of a digest name the CVE
    for n in range(1, 6):
        for repo in ("r2", "r1"):
            store.record_push(REG, repo, _digest(n), "x", MT, t(0))
        store.save_assessment(
            REG, _digest(n), [a, b] if n != 3 else [], "Unhealthy" if n != 3 else "Healthy", "", {}, t(1)
        )
    store.mark_deleted(REG, "r2", _digest(5), t(2))
    expected = [ImageKey(REG, repo, _digest(n)) for n in (1, 2, 4, 5) for repo in ("r1", "r2")][:-1]
    whole = store.images_with_vulnerability_page("CVE-2099-1", limit=1000)
    assert list(whole.items) == expected and whole.cursor is None
    assert sorted(store.images_with_vulnerability("CVE-2099-1")) == sorted(expected)
    for limit in (1, 2, 3, len(expected)):
        keys: list[ImageKey] = []
        cursor = None
        while True:
            page = store.images_with_vulnerability_page("CVE-2099-1", limit=limit, cursor=cursor)
            assert page.items and len(page.items) <= limit
            keys.extend(page.items)
            if page.cursor is None:
                break
            cursor = page.cursor
        assert keys == expected, limit
    assert store.images_with_vulnerability_page("CVE-0000-0").items == ()
    with pytest.raises(StoreError, match="cursor"):
        store.images_with_vulnerability_page("CVE-2099-1", cursor="not-a-cursor")


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 24, 18, 1, 35, 123456, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_time_text_round_trips_as_before(at: datetime) -> None:
    """`from_text` uses fromisoformat now: on the stored format it gives what strptime gave."""
    text = to_text(at)
    assert text.endswith("Z") and len(text) == len("2026-01-01T00:00:00.000000Z")
    parsed = from_text(text)
    assert parsed == at and parsed is not None and parsed.utcoffset() == timedelta(0)
    assert parsed == datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert from_text(None) is None


def test_stored_times_and_documents_decode(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> None:
    store.record_push(REG, REPO, D1, "x", MT, datetime(2025, 6, 1, 12, 30, 15, 987654, tzinfo=UTC))
    summary = {"total": 2, "by_severity": {"High": 1, "Low": 1}, "score": 9.8, "none": None, "text": "é ✓"}
    store.save_assessment(REG, D1, alpine_image[1][:2], "Unhealthy", "", summary, t(1))
    item = store.list_images().items[0]
    assert item.first_push == datetime(2025, 6, 1, 12, 30, 15, 987654, tzinfo=UTC) and item.assessed_at == t(1)
    assert item.summary == summary
    assert loads(dumps(summary)) == json.loads(dumps(summary)) == summary
    assert loads('{"x": NaN}')["x"] != loads('{"x": NaN}')["x"]  # json's NaN, which orjson refuses, still reads


def test_sqlite_reads_do_not_wait_for_each_other_or_for_a_writer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """serve runs handlers in a thread pool: SQLite reads take their own connection (WAL), not one shared lock."""
    from scanner.store.sqlite_store import SqliteStore

    with open_store(tmp_path / "s.sqlite") as store:
        assert isinstance(store, SqliteStore)
        store.record_push(REG, REPO, D1, "x", MT, t(0))
        # Two read transactions open at once in two threads: each waits inside its transaction for the other.
        both_inside = threading.Barrier(2, timeout=60)
        seen: list[int] = []

        def read() -> None:
            with store._tx(write=False) as tx:
                seen.append(len(tx.rows("SELECT digest FROM images")))
                both_inside.wait()

        threads = [threading.Thread(target=read) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == [1, 1] and not both_inside.broken
        # A read while this thread holds a write transaction open: its own connection and the committed state.
        with store._tx() as tx:
            tx.run("UPDATE images SET media_type = 'changed'")
            assert [i.media_type for i in store.list_images().items] == [MT]
        assert [i.media_type for i in store.list_images().items] == ["changed"]
