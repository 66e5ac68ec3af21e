"""Registry events → store and queue; queued requests → scans; pulled digests → rescans.

Store, queue, database and the fetch step are injected: the function app passes the real adapters (the
sandboxed job for the fetch), tests pass a local archive. Every step is idempotent because events and
queue messages are delivered at least once and possibly out of order.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from scanner.assess.assessment import ApplyRules, Assessment, AttachRemediation, SummariseRemediation, assess
from scanner.assess.findings import MatchMemo
from scanner.image.registry_options import RegistryAccess
from scanner.inventory.detectors.plugins import default_registry
from scanner.model.errors import one_line
from scanner.model.severity_order import DEFAULT_SEVERITY_ORDER
from scanner.model.types import Inventory
from scanner.policy.gate_actions import ActionsAdapter, Publisher, apply_verdicts, health_changed_event
from scanner.policy.gates import Gate, GateVerdict, evaluate
from scanner.policy.image_context import ImageContext
from scanner.policy.rule_reports import hides_kev_reports
from scanner.queue.errors import LeaseLostError
from scanner.queue.interface import Message, Reason, ScanQueue, ScanRequest
from scanner.service import gate_history
from scanner.service.events import RegistryEvent
from scanner.service.retry import RetrySettings
from scanner.store.errors import StoreError
from scanner.store.ports import (
    BILLABLE_KIND,
    Assessments,
    EventIntake,
    ImageLedger,
    Reassessment,
    ScanRecords,
    ScanWork,
)
from scanner.store.records import AssessmentChange, GateVerdictRecord, ImageKey
from scanner.vulndb.interface import VulnDatabase

if TYPE_CHECKING:
    from scanner.inventory.chain_cache import LayerChainCache

# (image, assessment, what it changed, the image's tags, when) → the rows exported (`FindingsExporter`).
Export = Callable[[ImageKey, Assessment, AssessmentChange, tuple[str, ...], datetime], None]

log = logging.getLogger(__name__)

# The real implementation runs `scanner.sandbox.job` in the sandbox; it must return the image's inventory.
FetchAndInventory = Callable[[ScanRequest], Inventory]
PULL_SOURCE = "registry-notification"


class CachingFetch(ABC):
    """A fetch step that can use the layer-chain cache (the sandboxed job does): `process_scan` hands it a
    cache over the store, so an image whose layer chain is known is neither fetched nor parsed. Plain
    `FetchAndInventory` callables (tests' local archives) are called without one."""

    @abstractmethod
    def with_cache(self, request: ScanRequest, cache: LayerChainCache | None) -> Inventory:
        """The request's inventory; `cache.outcome` says afterwards whether the cache answered."""

    def cache_timings(self) -> dict[str, float]:
        """Figures of the last call's own caches, for the scan's timings (none by default)."""
        return {}

    def __call__(self, request: ScanRequest) -> Inventory:
        return self.with_cache(request, None)


@dataclass(frozen=True)
class Policy:
    """The optional user rules, remediation and gates, loaded once by the caller."""

    apply_rules: ApplyRules | None = None
    attach_remediation: AttachRemediation | None = None
    summarise_remediation: SummariseRemediation | None = None
    gates: tuple[Gate, ...] = ()
    gate_actions: ActionsAdapter | None = None  # lock / quarantine / publish; None evaluates without acting
    # Where health-changed events go: whenever an image's health or finding set changes,
    # with or without gates. When None, only gates with `notify` publish, through `gate_actions`.
    publisher: Publisher | None = None
    # Continuous export of the image's rows after such a change (`service.findings_export`); never raises.
    export: Export | None = None
    # The order the severity sources are trusted in (`ACRGUARD_SEVERITY_SOURCES`).
    severity_order: tuple[str, ...] = DEFAULT_SEVERITY_ORDER


@dataclass(frozen=True)
class DrainCounts:
    processed: int = 0
    failed: int = 0


def current_detector_versions() -> tuple[str, ...]:
    """The detector set's identity ("name@version"): an inventory made by another set is stale."""
    return tuple(sorted(f"{d.name}@{d.version}" for d in default_registry()))


def detector_set(versions: Sequence[str] | None) -> tuple[str, ...]:
    """The detector set an inventory is judged against: `versions` as given (sorted), else this process's."""
    return tuple(sorted(versions)) if versions is not None else current_detector_versions()


def handle_push(event: RegistryEvent, store: EventIntake, queue: ScanQueue, scanner_version: str) -> ScanRequest | None:
    """Records the push (and tag) and queues one scan per (registry, digest). None when nothing was
    queued: a chart, a digest already scanned by this scanner version, or a scan already pending."""
    if event.kind == "chart":
        return None
    store.record_push(event.registry, event.repository, event.digest, event.tag, event.media_type, event.at)
    if store.has_current_scan(event.registry, event.digest, scanner_version):
        return None  # a re-push or a new tag: the tag is attached, no second scan and no second charge
    reason: Reason = "import" if event.kind == "import" else "push"
    request = ScanRequest.create(event.registry, event.repository, event.digest, tag=event.tag, reason=reason)
    sent = queue.send(request, request.dedupe_key(scanner_version))
    if not sent.deduplicated:
        log.info("scan queued: %s/%s@%s (%s)", request.registry, request.repository, request.digest, request.reason)
    return None if sent.deduplicated else request


def handle_delete(event: RegistryEvent, store: ImageLedger) -> None:
    store.mark_deleted(event.registry, event.repository, event.digest, event.at)


def handle_pull(event: RegistryEvent, store: ImageLedger, source: str = PULL_SOURCE) -> None:
    store.record_pull(event.registry, event.repository, event.digest, event.at, source)


def handle_event(
    event: RegistryEvent,
    store: EventIntake,
    queue: ScanQueue,
    scanner_version: str,
    pull_source: str = PULL_SOURCE,
    *,
    registries: RegistryAccess,
) -> ScanRequest | None:
    """Dispatch by kind; the one entry point the function handlers call (Event Grid, registry notifications,
    the resource log, import notifications). `pull_source` names where pull records came from in the ledger
    (registry notifications, the resource log). An event naming a registry that `registries` does not allow
    raises RegistryNotAllowed before anything is recorded or queued (so nothing ever connects to it): the
    caller dead-letters the event with that one-line reason."""
    registries.require(event.registry)
    if event.kind in ("push", "import"):
        return handle_push(event, store, queue, scanner_version)
    if event.kind == "delete":
        handle_delete(event, store)
    elif event.kind == "pull":
        handle_pull(event, store, pull_source)
    return None


def refused_event_body(event: RegistryEvent) -> str:
    """A refused event as its dead letter keeps it (the parsed fields; the envelope may hold many events)."""
    fields = {**asdict(event), "at": event.at.isoformat()}
    return json.dumps(fields, sort_keys=True)


def process_scan(
    request: ScanRequest,
    store: ScanWork,
    db: VulnDatabase,
    fetch_and_inventory: FetchAndInventory,
    scanner_version: str,
    policy: Policy | None = None,
    detector_versions: Sequence[str] | None = None,
    attempt: int = 1,
) -> AssessmentChange:
    """One full scan: delivery number `attempt` of the request, recorded as its own scan record (so the
    attempts and the gaps between them stay visible). On error the record is `failed` with the cause in
    one line and the error is re-raised so that the queue retries the message."""
    policy = policy or Policy()
    detectors = detector_set(detector_versions)
    if attempt > 1:
        _close_abandoned_attempt(request, store, attempt, scanner_version, db, detectors)
    scan_id = store.start_scan(
        request.registry,
        request.repository,
        request.digest,
        request.reason,
        datetime.now(UTC),
        scan_id=attempt_scan_id(request, attempt),
    )
    timings: dict[str, float] = {}
    label = f"{request.registry}/{request.repository}@{request.digest}"
    log.info("scan started: %s (%s, attempt %d)", label, request.reason, attempt)
    try:
        started = time.monotonic()
        inventory = _inventory(request, store, fetch_and_inventory, scanner_version, detectors, timings)
        timings["inventory"] = time.monotonic() - started
        now = datetime.now(UTC)
        store.save_inventory(request.registry, request.digest, inventory, scanner_version, detectors, now)
        change = _assess_and_save(
            request.registry, request.repository, request.digest, inventory, store, db, policy, now
        )
        timings["total"] = time.monotonic() - started
        store.record_usage(request.registry, request.digest, BILLABLE_KIND, now)
    except Exception as err:
        store.finish_scan(
            scan_id, "failed", one_line(err), timings, scanner_version, db_version(db), detectors, datetime.now(UTC)
        )
        log.warning("scan failed: %s after %.2f s: %s", label, time.monotonic() - started, one_line(err))
        raise
    store.finish_scan(scan_id, "succeeded", "", timings, scanner_version, db_version(db), detectors, datetime.now(UTC))
    log.info(
        "scan finished: %s %s (%d new, %d resolved finding%s), %.2f s%s",
        label,
        change.health,
        len(change.added),
        len(change.removed),
        "" if len(change.removed) == 1 else "s",
        timings["total"],
        " from the layer cache" if timings.get("layer_cache_hit") == 1.0 else "",
    )
    return change


def _inventory(
    request: ScanRequest,
    store: ScanRecords,
    fetch_and_inventory: FetchAndInventory,
    scanner_version: str,
    detectors: tuple[str, ...],
    timings: dict[str, float],
) -> Inventory:
    if not isinstance(fetch_and_inventory, CachingFetch):
        return fetch_and_inventory(request)
    # Imported here: event handling never needs the image modules the cache's relabelling uses.
    from scanner.inventory.chain_cache import LayerChainCache

    cache = LayerChainCache(store, scanner_version, detectors)
    try:
        return fetch_and_inventory.with_cache(request, cache)
    finally:
        if cache.outcome != "unused":
            # 1: served from the layer-chain cache (no layer fetched or parsed); 0: scanned.
            timings["layer_cache_hit"] = 1.0 if cache.outcome == "hit" else 0.0
        timings.update(fetch_and_inventory.cache_timings())


def attempt_scan_id(request: ScanRequest, attempt: int) -> str:
    """The scan record of one delivery: a redelivered message after a crash gets a new record, the same
    delivery processed twice (it cannot be, but a replay might) names the same one."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"acrguard-scan:{request.request_id}:{attempt}"))


def _close_abandoned_attempt(
    request: ScanRequest,
    store: ScanWork,
    attempt: int,
    scanner_version: str,
    db: VulnDatabase,
    detectors: tuple[str, ...],
) -> None:
    """A previous delivery whose record is still `running` was abandoned: its worker died or its lease ran
    out (the queue redelivers only then). Say so, instead of leaving a scan running for ever."""
    detail = store.get_image(request.registry, request.digest)
    last = detail.last_scan if detail is not None else None
    previous = {attempt_scan_id(request, n): n for n in range(1, attempt)}
    if last is None or last.status != "running" or last.scan_id not in previous:
        return
    store.finish_scan(
        last.scan_id,
        "failed",
        f"abandoned: attempt {previous[last.scan_id]} did not finish (the worker stopped or its lease expired)",
        dict(last.timings),
        scanner_version,
        db_version(db),
        detectors,
        datetime.now(UTC),
    )


def reassess_stored(
    key: ImageKey, store: Reassessment, db: VulnDatabase, policy: Policy | None = None
) -> AssessmentChange | None:
    """Re-assesses one digest from its stored inventory, without pulling, whatever scanner made it: for a
    rule change, which needs no new inventory. None when the digest has no stored inventory."""
    stored = store.load_inventory(key.registry, key.digest)
    if stored is None:
        return None
    now = datetime.now(UTC)
    return _assess_and_save(
        key.registry, key.repository, key.digest, stored.inventory, store, db, policy or Policy(), now
    )


def drain_queue(
    queue: ScanQueue,
    store: ScanWork,
    db: VulnDatabase,
    fetch_and_inventory: FetchAndInventory,
    scanner_version: str,
    max_messages: int = 16,
    policy: Policy | None = None,
    settings: RetrySettings | None = None,
) -> DrainCounts:
    """Processes up to `max_messages` messages: completed on success; on error released again after an
    exponential backoff by its delivery count, until the queue dead-letters it after its last attempt.
    The hosts pass the configured `settings` (`Clients.drain`); without, the defaults apply."""
    settings = settings or RetrySettings()
    processed = failed = 0
    while processed + failed < max_messages:
        messages = queue.receive(1, settings.visibility_timeout)
        if not messages:
            break
        lease = _LeaseKeeper(queue, messages[0], settings)
        try:
            process_scan(
                lease.message.request,
                store,
                db,
                fetch_and_inventory,
                scanner_version,
                policy,
                attempt=lease.message.dequeue_count,
            )
        except Exception as err:
            message = lease.stop()
            delay = settings.retry_delay(message.dequeue_count)
            try:
                if queue.fail(message, one_line(err), delay):
                    log.warning("scan %s dead-lettered after %d attempts", _label(message), message.dequeue_count)
                else:
                    log.info("scan %s attempt %d failed; retry in %d s", _label(message), message.dequeue_count, delay)
            except LeaseLostError as lost:  # another consumer has it now; its outcome stands
                log.warning("scan %s: %s", _label(message), lost)
            failed += 1
            continue
        message = lease.stop()
        try:
            queue.complete(message)
        except LeaseLostError as lost:  # the result is stored; a redelivery will find it and do no harm
            log.warning("scan %s: %s", _label(message), lost)
        processed += 1
    return DrainCounts(processed, failed)


class _LeaseKeeper:
    """Renews a message's lease in a thread while its scan runs, so that a short visibility timeout (quick
    recovery when a worker dies) does not hand a long scan to a second worker meanwhile."""

    def __init__(self, queue: ScanQueue, message: Message, settings: RetrySettings) -> None:
        self.queue = queue
        self.message = message
        self.settings = settings
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{message.id}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.settings.renew_every):
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    self.message = self.queue.extend(self.message, self.settings.visibility_timeout)
                except LeaseLostError as lost:
                    log.warning("scan %s: %s", _label(self.message), lost)
                    return
                except Exception as err:  # the queue may be briefly unreachable; the lease has time left
                    log.warning("scan %s: lease renewal failed: %s", _label(self.message), one_line(err))

    def stop(self) -> Message:
        """Stops renewing; the message with its latest lease token."""
        with self._lock:
            self._stop.set()
        self._thread.join()
        return self.message


def _label(message: Message) -> str:
    return f"{message.request.registry}/{message.request.repository}@{message.request.digest}"


def db_version(db: VulnDatabase) -> str:
    """The database's freshness: the latest import time of its sources (the format if it has none)."""
    try:
        info = db.describe()
    except Exception:  # a stand-in database may not describe itself; the version is informative only
        return ""
    times = [str(s.get("imported_at") or "") for s in info.get("sources", []) if isinstance(s, dict)]
    return max(times, default="") or f"format-{info.get('format_version', '')}"


def _assess_and_save(
    registry: str,
    repository: str,
    digest: str,
    inventory: Inventory,
    store: Assessments,
    db: VulnDatabase,
    policy: Policy,
    at: datetime,
    memo: MatchMemo | None = None,
) -> AssessmentChange:
    result = assess_inventory(inventory, db, policy, memo)
    change = store.save_assessment(
        registry, digest, result.findings, result.health, result.reason, result.summary, at, result.coverage
    )
    after_save(ImageKey(registry, repository, digest), inventory, result, change, store, policy, at)
    return change


def assess_inventory(
    inventory: Inventory, db: VulnDatabase, policy: Policy, memo: MatchMemo | None = None
) -> Assessment:
    """The image's assessment under `policy` (rules, remediation, severity order), not yet stored."""
    return assess(
        inventory,
        db,
        apply_rules=policy.apply_rules,
        attach_remediation=policy.attach_remediation,
        summarise_remediation=policy.summarise_remediation,
        severity_order=policy.severity_order,
        memo=memo,
    )


def after_save(
    key: ImageKey,
    inventory: Inventory,
    result: Assessment,
    change: AssessmentChange,
    store: Assessments,
    policy: Policy,
    at: datetime,
) -> None:
    """What follows a stored assessment: warnings for hidden known-exploited findings, the gates (verdicts,
    actions, their record), the health-changed event, the export."""
    registry, repository, digest = key.registry, key.repository, key.digest
    for hidden in hides_kev_reports(result.findings, where=f"on {registry}/{repository}@{digest}"):
        log.warning("%s", hidden.message)  # allowed, but a known-exploited finding must not be hidden silently
    # Gates judge only images that were assessed (an Unsupported image has no findings, and passing it would
    # unlock or release it), and only the newest assessment (a stale replay must not undo a newer verdict).
    # An Incomplete one is judged by each gate's `on_incomplete`, a NotAssessed one (no findings, but the
    # database could not have found any) by its `on_not_assessed` (default: both fail).
    assessed = result.health in ("Healthy", "Unhealthy", "Incomplete", "NotAssessed")
    incomplete = result.reason if result.health == "Incomplete" else ""
    not_assessed = result.reason if result.health == "NotAssessed" else ""
    # The image as the registry knows it (the inventory's own reference may be a scratch layout's).
    image = replace(ImageContext.from_inventory(inventory), registry=registry, repository=repository, digest=digest)
    verdicts: list[GateVerdict] = []
    if policy.gates and assessed and not change.stale:
        verdicts = evaluate(policy.gates, image, result.findings, incomplete, not_assessed)
        report = None
        if policy.gate_actions is not None:
            # With a service publisher every change is published below; gates' `notify` would repeat it.
            report = apply_verdicts(
                verdicts, image, policy.gate_actions, change, summary=result.summary, notify=policy.publisher is None
            )
            for error in report.errors:  # never raised into the scan: the findings are already stored
                log.warning("gate action failed for %s@%s: %s", registry, digest, error)
        _record_verdicts(store, gate_history.records(image, verdicts, report, at))
    if policy.publisher is not None and change.changed:
        event = health_changed_event(image, change, summary=result.summary, gates=verdicts)
        try:
            policy.publisher.publish(event)
        except Exception as err:  # the findings are stored; a dead webhook must not fail the scan
            log.warning("health-changed event for %s@%s not published: %s", registry, digest, one_line(err))
    if policy.export is not None:
        policy.export(key, result, change, image.tags, at)


def _record_verdicts(store: Assessments, verdicts: list[GateVerdictRecord]) -> None:
    """The gates' verdicts for the dashboard; a store that cannot take them now does not fail the scan."""
    try:
        store.record_gate_verdicts(verdicts)
    except StoreError as err:
        log.warning("gate verdicts not recorded: %s", one_line(err))
