"""Health `NotAssessed` and the database's coverage in both stores: stored with the assessment, read back
equal (listings, image detail), filtered by, and one sub-assessment row per NotAssessed image."""

from __future__ import annotations

from datetime import UTC, datetime

from scanner.model.types import Coverage, Finding, Inventory
from scanner.store import FindingsStore
from tests.store.rows import all_rows, digest

AT = datetime(2025, 1, 1, tzinfo=UTC)
REG, MT = "reg.azurecr.io", "application/vnd.oci.image.manifest.v1+json"
REASON = "the database holds no Debian:12 advisories: run `acrguard db update`"
DEBIAN = (
    Coverage("Debian:12", "os", 0),
    Coverage("PyPI", "language", 47, "2024-06-01T12:00:00Z", selection=True),
)
ALPINE = (Coverage("Alpine:v3.10", "os", 1721, "2020-01-31T00:00:00Z"),)


def test_not_assessed_and_its_coverage_round_trip(
    store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    findings = alpine_image[1]
    store.record_push(REG, "a/debian", digest(1), "1", MT, AT)
    change = store.save_assessment(REG, digest(1), [], "NotAssessed", REASON, {"active": 0}, AT, DEBIAN)
    assert (change.previous_health, change.health) == (None, "NotAssessed")
    store.record_push(REG, "b/alpine", digest(2), "2", MT, AT)
    store.save_assessment(REG, digest(2), findings, "Unhealthy", "8", {}, AT, ALPINE)
    store.record_push(REG, "c/older", digest(3), "3", MT, AT)
    store.save_assessment(REG, digest(3), [], "Healthy", "", {}, AT)  # saved without coverage

    detail = store.get_image(REG, digest(1))
    assert detail is not None
    assert (detail.health, detail.reason, detail.coverage) == ("NotAssessed", REASON, DEBIAN)
    assert detail.repositories[0].coverage == DEBIAN
    listed = {i.key.repository: i.coverage for i in store.list_images(registry=REG).items}
    assert listed == {"a/debian": DEBIAN, "b/alpine": ALPINE, "c/older": ()}
    assert [i.key.digest for i in store.list_images(status="NotAssessed").items] == [digest(1)]

    # One row for the NotAssessed image (it has no finding), as for a Healthy one.
    rows = all_rows(store, REG, limit=3)
    assert rows[0] == ("a/debian", digest(1), "")
    assert rows[-1] == ("c/older", digest(3), "")
    assert len(rows) == 2 + len({(f.id, f.package.name) for f in findings})

    # A later assessment replaces the coverage (the database was updated).
    updated = (Coverage("Debian:12", "os", 3000, "2025-01-01T00:00:00Z"), DEBIAN[1])
    later = datetime(2025, 1, 2, tzinfo=UTC)
    change = store.save_assessment(REG, digest(1), [], "Healthy", "", {}, later, updated)
    assert (change.previous_health, change.health, change.health_changed) == ("NotAssessed", "Healthy", True)
    detail = store.get_image(REG, digest(1))
    assert detail is not None and detail.coverage == updated
