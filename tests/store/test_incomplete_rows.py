"""Health `Incomplete` in both stores: stored and listed like any health, and its sub-assessment rows are the
image's own row (keyed "") followed by a row per active finding, in key order, across any page size."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from scanner.model.types import Finding, Inventory
from scanner.store import FindingsStore
from scanner.store.assessment_rows import finding_key
from tests.store.rows import all_rows, digest

T0 = datetime(2025, 1, 1, tzinfo=UTC)
REG, MT = "reg.azurecr.io", "application/vnd.oci.image.manifest.v1+json"
REASON = "inventory incomplete: /lib/apk/db/installed: 114294784 bytes, over the limit of 67108864"


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_incomplete_images_give_their_row_then_their_findings(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    findings = alpine_image[1]
    disabled = replace(findings[0], disabled=True, disabled_by="rule")
    store.record_push(REG, "a/healthy", digest(1), "1", MT, t(0))
    store.save_assessment(REG, digest(1), [], "Healthy", "", {}, t(1))
    store.record_push(REG, "b/incomplete", digest(2), "2", MT, t(0))
    store.save_assessment(REG, digest(2), [disabled, *findings[1:]], "Incomplete", REASON, {}, t(1))
    store.record_push(REG, "c/empty", digest(3), "3", MT, t(0))
    store.save_assessment(REG, digest(3), [], "Incomplete", REASON, {}, t(1))
    store.record_push(REG, "d/unhealthy", digest(4), "4", MT, t(0))
    store.save_assessment(REG, digest(4), findings, "Unhealthy", "", {}, t(1))

    active = sorted(finding_key(f) for f in findings[1:])
    expected = [
        ("a/healthy", digest(1), ""),
        ("b/incomplete", digest(2), ""),
        *(("b/incomplete", digest(2), k) for k in active),
        ("c/empty", digest(3), ""),
        *(("d/unhealthy", digest(4), k) for k in sorted(finding_key(f) for f in findings)),
    ]
    page = store.list_assessment_rows(REG, limit=1000)
    assert [row.key for row in page.items] == expected and page.cursor is None
    head = page.items[1]
    assert head.finding is None and head.image.health == "Incomplete" and head.image.reason == REASON
    for limit in (1, 2, 3, len(active), len(expected) - 1, len(expected)):
        assert all_rows(store, REG, limit) == expected, limit

    listed = store.list_images(registry=REG, status="Incomplete")
    assert [image.key.repository for image in listed.items] == ["b/incomplete", "c/empty"]
    detail = store.get_image(REG, digest(2))
    assert detail is not None and detail.health == "Incomplete" and detail.reason == REASON
    assert len([f for f in detail.findings if not f.finding.disabled]) == len(active)


def test_an_incomplete_assessment_is_a_health_change(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    findings = alpine_image[1]
    store.record_push(REG, "a/app", digest(1), "1", MT, t(0))
    store.save_assessment(REG, digest(1), findings, "Unhealthy", "", {}, t(1))
    change = store.save_assessment(REG, digest(1), findings, "Incomplete", REASON, {}, t(2))
    assert (change.previous_health, change.health, change.changed) == ("Unhealthy", "Incomplete", True)
