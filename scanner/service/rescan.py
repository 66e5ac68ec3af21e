"""Rescans: pulled digests re-assessed from their stored inventories, a batch at a time.

A batch (at most `BATCH` digests, each once) costs the store three writes and a read, whatever its size:
the stored inventories read together, the assessments written in one transaction
(`FindingsStore.save_assessments`), the rescans metered together; and its images' health-changed events go
out together after it (`event_batch`). Per image nothing changes: the same assessment, the same rules for
what a rescan stores, the same event. A digest whose inventory is missing or was made by another scanner or
detector versions is queued for a full scan (when a queue is given). One bad image must not stop the others:
a failure is logged and counted, never raised; a batch the store cannot write together is written one
digest at a time.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from scanner.assess.assessment import Assessment
from scanner.assess.findings import MatchMemo
from scanner.model.errors import one_line
from scanner.model.types import Inventory
from scanner.queue.interface import ScanQueue, ScanRequest
from scanner.service.event_batch import EventBatch
from scanner.service.pipeline import Policy, after_save, assess_inventory, detector_set
from scanner.store.ports import RescanWork
from scanner.store.records import AssessmentChange, ImageKey, NewAssessment
from scanner.vulndb.interface import VulnDatabase

log = logging.getLogger(__name__)

BATCH = 500  # digests re-assessed, stored and published together
RESCAN_KIND = "rescan"  # the usage event a rescan meters

RescanOutcome = Literal["rematched", "requeued", "skipped", "failed"]


@dataclass(frozen=True)
class RescanCounts:
    rematched: int = 0  # re-assessed from the stored inventory, nothing pulled
    requeued: int = 0  # stored inventory missing or made by other scanner/detector versions
    failed: int = 0


@dataclass(frozen=True)
class KeysRescanned:
    counts: RescanCounts
    images: int  # distinct digests among the keys, whatever their outcome (skipped ones too)
    changed: int  # images whose findings or health changed


def rescan_recent(
    store: RescanWork,
    db: VulnDatabase,
    since: datetime,
    scanner_version: str,
    queue: ScanQueue | None = None,
    policy: Policy | None = None,
    detector_versions: Sequence[str] | None = None,
) -> RescanCounts:
    """Re-matches every digest pulled since `since` against the current database from its stored
    inventory, without pulling (module docstring)."""
    keys = store.recently_pulled(since)
    return rescan_keys(keys, store, db, scanner_version, queue, policy, detector_versions).counts


def rescan_keys(
    keys: Iterable[ImageKey],
    store: RescanWork,
    db: VulnDatabase,
    scanner_version: str,
    queue: ScanQueue | None = None,
    policy: Policy | None = None,
    detector_versions: Sequence[str] | None = None,
) -> KeysRescanned:
    """`keys` rescanned in batches (the same digest in several repositories is one image, rescanned once)."""
    policy = policy or Policy()
    detectors = detector_set(detector_versions)
    counts: Counter[RescanOutcome] = Counter()
    changed = 0
    memo = MatchMemo(db, policy.severity_order)  # images on one base share their packages' matching
    events = EventBatch(policy.publisher) if policy.publisher is not None else None
    batched = replace(policy, publisher=events) if events is not None else policy
    try:
        for batch in _batches(keys):
            with _collector_paused():
                outcomes = rescan_batch(batch, store, db, scanner_version, detectors, queue, batched, memo)
            for outcome, change in outcomes:
                counts[outcome] += 1
                changed += int(change is not None and change.changed)
            if events is not None:
                events.flush()
    finally:
        if events is not None:
            events.flush()  # what an interrupted rescan changed is stored: its events go out too
    rescanned = RescanCounts(counts["rematched"], counts["requeued"], counts["failed"])
    return KeysRescanned(rescanned, images=counts.total(), changed=changed)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A batch allocates hundreds of thousands of short-lived objects next to the database's record cache and
    the match memo; the cyclic collector walked those again and again (a tenth of a batch's time, measured),
    and a batch makes no cycles worth collecting before it ends. Collected between batches as usual."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _batches(keys: Iterable[ImageKey]) -> Iterator[list[ImageKey]]:
    seen: set[tuple[str, str]] = set()
    batch: list[ImageKey] = []
    for key in keys:
        if (key.registry, key.digest) in seen:
            continue
        seen.add((key.registry, key.digest))
        batch.append(key)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def rescan_batch(
    keys: Sequence[ImageKey],
    store: RescanWork,
    db: VulnDatabase,
    scanner_version: str,
    detectors: tuple[str, ...],
    queue: ScanQueue | None,
    policy: Policy,
    memo: MatchMemo | None = None,
) -> list[tuple[RescanOutcome, AssessmentChange | None]]:
    """Each of `keys` (distinct digests) re-assessed from its stored inventory when that is current (made by
    this scanner and these detector versions), else queued for a full scan when a queue is given ("skipped"
    without one); the outcomes in order."""
    outcomes: list[tuple[RescanOutcome, AssessmentChange | None]] = [("skipped", None)] * len(keys)
    stored = store.load_inventories([(key.registry, key.digest) for key in keys])
    now = datetime.now(UTC)
    assessed: list[tuple[int, Inventory, Assessment]] = []
    for n, key in enumerate(keys):
        found = stored.get((key.registry, key.digest))
        if (
            found is None
            or found.scanner_version != scanner_version
            or tuple(sorted(found.detector_versions)) != detectors
        ):
            if queue is not None:
                request = ScanRequest.create(key.registry, key.repository, key.digest, reason="rescan")
                queue.send(request, request.dedupe_key(scanner_version))
                outcomes[n] = ("requeued", None)
            continue
        try:
            assessed.append((n, found.inventory, assess_inventory(found.inventory, db, policy, memo)))
        except Exception as err:
            outcomes[n] = _failed(key, err)
    saved = _save(store, [(keys[n], result) for n, _, result in assessed], now)
    rematched: list[int] = []
    for (n, inventory, result), change in zip(assessed, saved, strict=True):
        if isinstance(change, Exception):
            outcomes[n] = _failed(keys[n], change)
            continue
        try:
            after_save(keys[n], inventory, result, change, store, policy, now)
        except Exception as err:
            outcomes[n] = _failed(keys[n], err)
            continue
        outcomes[n] = ("rematched", change)
        rematched.append(n)
    try:
        store.record_usages([(keys[n].registry, keys[n].digest) for n in rematched], RESCAN_KIND, now)
    except Exception as err:  # not metered: counted as failed, so a rescan after an update tries them again
        for n in rematched:
            outcomes[n] = _failed(keys[n], err)
    return outcomes


def _save(
    store: RescanWork, items: Sequence[tuple[ImageKey, Assessment]], at: datetime
) -> list[AssessmentChange | Exception]:
    """The batch's assessments in one transaction; when the store cannot take them together, one at a time,
    so that one digest's failure is only its own."""
    new = [
        NewAssessment(key.registry, key.digest, r.findings, r.health, r.reason, r.summary, at, r.coverage)
        for key, r in items
    ]
    if not new:
        return []
    try:
        return list(store.save_assessments(new))
    except Exception as err:
        log.warning("rescan: %d assessments not stored together (%s): one at a time", len(new), one_line(err))
    out: list[AssessmentChange | Exception] = []
    for item in new:
        try:
            out.append(store.save_assessments([item])[0])
        except Exception as err:
            out.append(err)
    return out


def _failed(key: ImageKey, err: BaseException) -> tuple[RescanOutcome, None]:
    log.warning("rescan of %s@%s failed: %s", key.registry, key.digest, one_line(err))
    return "failed", None
