"""Daily signals do not rewrite history: the Alpine 3.10 sample assessed against Alpine's real secdb with FIRST's
EPSS scores of 2026-09-29 (real) is stored; EPSS is imported again with other scores; the rescan is no new finding,
no resolved one and no health change, first-seen dates stay; the lookups show the scores of the database now,
even before the rescan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from scanner.assess.assessment import assess
from scanner.assess.findings import with_exploitation
from scanner.assess.risk import with_risk
from scanner.inventory.build import inventory
from scanner.model.types import Finding, Inventory
from scanner.service import lookups
from scanner.store import FindingsStore, open_store
from scanner.store.records import AssessmentChange
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "alpine-3.10-app.tar"
FIXTURES = ROOT / "tests" / "fixtures"
SECDB = FIXTURES / "osv" / "alpine-secdb" / "v3.10"
REAL_EPSS = FIXTURES / "epss" / "epss_scores-2026-09-29.csv"
OTHER_EPSS = FIXTURES / "epss" / "epss_scores-2025-08-25.csv"  # other scores for the same CVEs
REGISTRY, DIGEST = "myacr.azurecr.io", "sha256:" + "a" * 64
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _save(store: FindingsStore, inv: Inventory, db_path: Path, at: datetime) -> tuple[AssessmentChange, list[Finding]]:
    with SqliteVulnDatabase.open(db_path) as db:
        result = assess(inv, db)
    change = store.save_assessment(
        REGISTRY, DIGEST, list(result.findings), result.health, result.reason, result.summary, at, result.coverage
    )
    return change, list(result.findings)


def test_a_new_epss_score_is_not_a_new_finding_and_lookups_show_it(tmp_path: Path) -> None:
    db_path = tmp_path / "vulndb.sqlite"
    import_sources(db_path, [str(SECDB), str(REAL_EPSS)])
    [inv] = inventory(f"docker-archive:{SAMPLE}")
    store = open_store(tmp_path / "store.sqlite")
    store.record_push(REGISTRY, "app", DIGEST, "v1", "application/vnd.oci.image.manifest.v1+json", T0)
    first, found = _save(store, inv, db_path, T0)
    assert first.previous_health is None and first.health == "Unhealthy" and len(first.added) == len(found)
    musl = next(f for f in found if f.package.name == "musl")
    assert musl.epss is not None and musl.epss.score == 0.02527  # CVE-2019-14697 on 2026-09-29
    stored_before = {s.key: s for s in store.list_findings(REGISTRY, DIGEST)}

    import_sources(db_path, [str(OTHER_EPSS)])  # the daily file: every score replaced

    def current(findings: list[Finding]) -> list[Finding]:
        with SqliteVulnDatabase.open(db_path) as db:
            return with_risk(with_exploitation(findings, db))

    # Before any rescan: the stored finding still holds the old score, the lookup shows today's.
    doc = lookups.image_findings(lambda: store, REGISTRY, DIGEST, {}, current)
    shown = {(f["package"]["name"], f["id"]): f for f in doc["value"]}
    assert shown[("musl", "ALPINE-CVE-2019-14697")]["epss"]["score"] == 0.01208
    assert {s.finding.epss.score for s in store.list_findings(REGISTRY, DIGEST) if s.finding.epss} >= {0.02527}

    change, rescanned = _save(store, inv, db_path, T0 + timedelta(days=1))
    assert (change.added, change.removed, change.stale) == ((), (), False)
    assert change.previous_health == change.health == "Unhealthy" and not change.health_changed
    stored_after = {s.key: s for s in store.list_findings(REGISTRY, DIGEST)}
    assert stored_after.keys() == stored_before.keys()
    for key, before in stored_before.items():
        after = stored_after[key]
        assert (after.first_seen, after.reopened, after.resolved_at) == (before.first_seen, 0, None)
    musl_now = next(f for f in rescanned if f.package.name == "musl")
    assert musl_now.epss is not None and musl_now.epss.score == 0.01208
    assert musl_now.risk != musl.risk  # the risk follows the score; the finding's identity does not
