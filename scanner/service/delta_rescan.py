"""Rescans after a database update that pay only for what the update changed.

After an update, the database says what changed since the build the store's last rescan completed against
(`scanner.vulndb.changes`: package keys, vulnerability ids, ecosystems whose coverage changed), the store
says which digests look those packages up or have open findings naming those ids
(`scanner.store.package_index`), and only those of them pulled recently (the full rescan's rule) are
re-assessed from their stored inventories. An image whose findings or health change gets its one
health-changed event, with `cause` naming the update.

Everything else is a full rescan (`rescan.rescan_recent`), which fails closed: no mark yet (the first
rescan), another scanner or detector version than the mark's, a database that keeps no change record or
whose record does not reach back to the mark (a file copied in by hand, a rebuild), a build whose changes are
not keyed (EPSS scores of a new day), another severity order (`ACRGUARD_SEVERITY_SOURCES`). The daily rescan
timer stays a full rescan, the safety net. The mark moves only when a rescan completed without a failed image,
so a failure is retried by the next one.

What the delta does not refresh: the coverage stored with the assessments of digests it leaves alone (feed
dates and counts, which health does not read); the next full rescan does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from scanner.policy.gate_actions import Publisher, PublishResult
from scanner.queue.interface import ScanQueue
from scanner.service.event_batch import send_each
from scanner.service.pipeline import Policy, detector_set
from scanner.service.rescan import RescanCounts, rescan_keys, rescan_recent
from scanner.store.package_index import PackageIndex, RescanMark
from scanner.store.ports import RescanWork
from scanner.vulndb.changes import ChangeSet, Unknown
from scanner.vulndb.interface import VulnDatabase

log = logging.getLogger(__name__)

MARK = "database"  # the rescan mark this module keeps


class DeltaStore(RescanWork, PackageIndex, Protocol):
    """What a rescan after an update needs of the store."""


@dataclass(frozen=True)
class UpdateRescan:
    mode: Literal["delta", "full"]
    counts: RescanCounts
    reason: str = ""  # why the rescan was full
    affected: int = 0  # delta: recently pulled digests the change set names
    changed: int = 0  # images whose findings or health changed (an event each, with a publisher)


class _CausePublisher:
    """Adds `cause` to each event's data: which update the findings added and resolved came from."""

    def __init__(self, inner: Publisher, cause: Mapping[str, Any]) -> None:
        self.inner = inner
        self.cause = dict(cause)

    def _caused(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        data = event.get("data")
        return {**event, "data": {**data, "cause": self.cause}} if isinstance(data, Mapping) else event

    def publish(self, event: Mapping[str, Any]) -> None:
        self.inner.publish(self._caused(event))

    def send_many(self, events: Sequence[Mapping[str, Any]]) -> list[PublishResult]:
        return send_each(self.inner, [self._caused(event) for event in events])


def _with_cause(policy: Policy, cause: Mapping[str, Any]) -> Policy:
    return policy if policy.publisher is None else replace(policy, publisher=_CausePublisher(policy.publisher, cause))


def database_build(db: VulnDatabase) -> str | None:
    """The database's build id; None for a database without a change record (or not a SQLite file)."""
    build = getattr(db, "build", None)
    return build() if callable(build) else None


def _changes(db: VulnDatabase, since: str) -> ChangeSet | Unknown:
    changes_since = getattr(db, "changes_since", None)
    if not callable(changes_since):
        return Unknown("the database keeps no change record")
    result = changes_since(since)
    return result if isinstance(result, ChangeSet | Unknown) else Unknown("the database keeps no change record")


def full_rescan(
    store: DeltaStore,
    db: VulnDatabase,
    since: datetime,
    scanner_version: str,
    queue: ScanQueue | None = None,
    policy: Policy | None = None,
    detector_versions: Sequence[str] | None = None,
) -> RescanCounts:
    """`rescan_recent`, then the mark (database build, versions) the next rescan after an update starts from."""
    detectors = detector_set(detector_versions)
    build = database_build(db)  # before: an update meanwhile leaves the mark behind, never ahead
    store.index_unindexed()
    counts = rescan_recent(store, db, since, scanner_version, queue, policy, detectors)
    if build is not None and counts.failed == 0:
        identity = _identity(scanner_version, policy or Policy())
        store.set_rescan_mark(MARK, RescanMark(build, identity, detectors), datetime.now(UTC))
    return counts


def _identity(scanner_version: str, policy: Policy) -> str:
    """What the mark records as the scanner: its version and the severity order it trusts (a setting that
    changes every finding's severity, as a new scanner version may)."""
    return f"{scanner_version} severity:{','.join(policy.severity_order)}"


def rescan_after_update(
    store: DeltaStore,
    db: VulnDatabase,
    since: datetime,
    scanner_version: str,
    queue: ScanQueue | None = None,
    policy: Policy | None = None,
    detector_versions: Sequence[str] | None = None,
) -> UpdateRescan:
    """Re-assesses the recently pulled digests the update can change, or all of them when that cannot be
    told (module docstring)."""
    policy = policy or Policy()
    detectors = detector_set(detector_versions)
    build = database_build(db)
    mark = store.rescan_mark(MARK)
    reason = _full_reason(build, mark, _identity(scanner_version, policy), detectors)
    changes: ChangeSet | Unknown = Unknown(reason)
    if not reason and mark is not None:
        changes = _changes(db, mark.build)
    if isinstance(changes, Unknown):
        log.info("rescan after the database update: full, %s", changes.reason)
        cause = {"kind": "database-update", "databaseBuild": build or "", "delta": False}
        counts = full_rescan(store, db, since, scanner_version, queue, _with_cause(policy, cause), detectors)
        return UpdateRescan("full", counts, reason=changes.reason)
    cause = {"kind": "database-update", "databaseBuild": changes.build, "delta": True}
    result = _delta(store, db, since, scanner_version, queue, _with_cause(policy, cause), detectors, changes)
    if result.counts.failed == 0:
        identity = _identity(scanner_version, policy)
        store.set_rescan_mark(MARK, RescanMark(changes.build, identity, detectors), datetime.now(UTC))
    log.info(
        "rescan after the database update: %d digest(s) affected, %d re-matched, %d requeued, %d failed, %d changed",
        result.affected,
        result.counts.rematched,
        result.counts.requeued,
        result.counts.failed,
        result.changed,
    )
    return result


def _full_reason(build: str | None, mark: RescanMark | None, identity: str, detectors: tuple[str, ...]) -> str:
    if build is None:
        return "the database keeps no change record"
    if mark is None:
        return "no rescan has completed against a known database build yet"
    if mark.scanner_version != identity:
        was, now = mark.scanner_version[:80], identity[:80]
        return f"the scanner or its severity order changed since the last rescan ({was} → {now})"
    if tuple(sorted(mark.detector_versions)) != detectors:
        return "the detector versions changed since the last rescan"
    return ""


def _delta(
    store: DeltaStore,
    db: VulnDatabase,
    since: datetime,
    scanner_version: str,
    queue: ScanQueue | None,
    policy: Policy,
    detectors: tuple[str, ...],
    changes: ChangeSet,
) -> UpdateRescan:
    if changes.empty:
        return UpdateRescan("delta", RescanCounts())
    store.index_unindexed()  # inventories stored before the index existed
    named = store.digests_affected(changes.packages, changes.ecosystems, changes.vuln_ids)
    if not named:
        return UpdateRescan("delta", RescanCounts())
    keys = store.recently_pulled(since, among=named)
    done = rescan_keys(keys, store, db, scanner_version, queue, policy, detectors)
    return UpdateRescan("delta", done.counts, affected=done.images, changed=done.changed)
