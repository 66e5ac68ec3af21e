"""The findings store by role: one small protocol per kind of record, and the combinations the service's
operations need. A consumer types its store parameter with the narrowest of these it uses, so what it may
touch is visible in its signature; `FindingsStore` (scanner.store.interface) is all of them.

Every write is idempotent: replaying the same event or scan (same arguments, same `at`) leaves the same
state, and events replayed out of order converge (times merge with min/max, a stale assessment is
ignored). Times are timezone-aware datetimes, stored as UTC.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Container, Sequence
from datetime import datetime
from typing import Any, Protocol

from scanner.model.types import Coverage, Finding, Health, Inventory, Severity
from scanner.store.records import (
    AssessmentChange,
    AssessmentRow,
    FindingCount,
    FindingSpan,
    GateVerdictRecord,
    HealthCount,
    ImageDetail,
    ImageKey,
    ImageSummary,
    NewAssessment,
    Occurrence,
    Page,
    RuleSnapshot,
    ScanCount,
    ScanRecord,
    ScanStatus,
    StoredFinding,
    StoredInventory,
    StoredRule,
    UsageCounts,
    VulnerabilitySpread,
)

# The most items a page of a listing holds; a larger `limit` is cut to it.
MAX_PAGE = 1000
# Usage kinds; only the first "scan" of a digest is billable (rescans and re-pushes are free).
BILLABLE_KIND = "scan"


class ImageLedger(Protocol):
    """What happened to images in their registries: pushes (with tags), pulls, deletes."""

    @abstractmethod
    def record_push(
        self, registry: str, repository: str, digest: str, tag: str | None, media_type: str, at: datetime
    ) -> None:
        """A manifest push (or import). A tag that pointed at another digest moves; the old digest keeps
        its tag history with `current` False. A push newer than a delete revives the image."""

    @abstractmethod
    def mark_deleted(self, registry: str, repository: str, digest: str, at: datetime) -> None:
        """The manifest was deleted: it leaves the health views, its history stays."""

    @abstractmethod
    def record_pull(self, registry: str, repository: str, digest: str, at: datetime, source: str) -> None:
        """A pull from the ledger (`source`: registry-notification, log-analytics…); keeps `last_pull`."""

    @abstractmethod
    def recently_pulled(self, since: datetime, among: Container[tuple[str, str]] | None = None) -> list[ImageKey]:
        """Images (not deleted) pulled at or after `since`: the rescan timer's work list; with `among`, only
        those whose (registry, digest) it holds (a rescan after an update: the digests the update names)."""


class ScanRecords(Protocol):
    """Scans as they run and end, the inventories they made, and the layer-chain cache of inventories."""

    @abstractmethod
    def start_scan(
        self,
        registry: str,
        repository: str,
        digest: str,
        trigger: str,
        at: datetime,
        scan_id: str | None = None,
    ) -> str:
        """Record a scan as running and return its id. Without `scan_id` the id derives from the
        arguments, so a replayed trigger names the same scan."""

    @abstractmethod
    def finish_scan(
        self,
        scan_id: str,
        status: ScanStatus,
        error: str,
        timings: dict[str, float],
        scanner_version: str,
        db_version: str,
        detector_versions: Sequence[str],
        at: datetime,
    ) -> None: ...

    @abstractmethod
    def has_current_scan(self, registry: str, digest: str, scanner_version: str) -> bool:
        """A digest scanned successfully by this scanner version need not be pulled again."""

    @abstractmethod
    def save_inventory(
        self,
        registry: str,
        digest: str,
        inventory: Inventory,
        scanner_version: str,
        detector_versions: Sequence[str],
        at: datetime,
    ) -> None: ...

    @abstractmethod
    def load_inventory(self, registry: str, digest: str) -> StoredInventory | None:
        """The last inventory of a digest, for rescans without pulling."""

    @abstractmethod
    def load_inventories(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredInventory]:
        """`load_inventory` for many (registry, digest) keys in one read; a key without one is absent."""

    @abstractmethod
    def save_layer_chain(self, chain_key: str, inventory: Inventory, at: datetime) -> None:
        """Cache the inventory of a full layer chain (`scanner.inventory.chain_cache.chain_key`). The key is
        content-addressed: the first inventory saved under it stays."""

    @abstractmethod
    def load_layer_chain(self, chain_key: str) -> Inventory | None:
        """The inventory cached under `chain_key`, or None."""


class Assessments(Protocol):
    """Each digest's health and findings, with the findings' history."""

    @abstractmethod
    def save_assessment(
        self,
        registry: str,
        digest: str,
        findings: Sequence[Finding],
        health: Health,
        reason: str,
        summary: dict[str, Any],
        at: datetime,
        coverage: Sequence[Coverage] = (),
    ) -> AssessmentChange:
        """Upsert the digest's findings with history: `first_seen` kept, `resolved_at` set when a finding
        disappears, reopened when it comes back. An assessment older than the stored one is ignored.
        `coverage` (what the database held for each of the image's ecosystems) is stored with the health."""

    @abstractmethod
    def save_assessments(self, assessments: Sequence[NewAssessment]) -> list[AssessmentChange]:
        """`save_assessment` for several digests, each at most once, in one transaction (a rescan's batch);
        their changes in the same order."""

    @abstractmethod
    def record_gate_verdicts(self, verdicts: Sequence[GateVerdictRecord]) -> None:
        """What the gates decided about an assessed image and the actions taken; a replay overwrites. The
        history is bounded (the newest verdicts of each gate, none very old)."""


class UsageMeter(Protocol):
    """Metered events per digest, for billing."""

    @abstractmethod
    def record_usage(self, registry: str, digest: str, kind: str, at: datetime) -> bool:
        """Meter one event; True when this call created the digest's one charge (its first "scan")."""

    @abstractmethod
    def record_usages(self, keys: Sequence[tuple[str, str]], kind: str, at: datetime) -> None:
        """Meter one event of `kind` for each (registry, digest), in one write; not the charging kind (its
        charge is decided per digest by `record_usage`)."""

    @abstractmethod
    def usage(self, registry: str, since: datetime) -> UsageCounts: ...


class Lookups(Protocol):
    """The read side: images with their health, tags and last scan, findings, sub-assessment rows. Listings
    come a page of at most `MAX_PAGE` at a time; a cursor they did not issue is a `CursorError`."""

    @abstractmethod
    def list_images(
        self,
        registry: str | None = None,
        repository: str | None = None,
        status: Health | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ImageSummary]:
        """Images not deleted, ordered by (registry, repository, digest); `cursor` from the last page."""

    @abstractmethod
    def get_image(self, registry: str, digest: str) -> ImageDetail | None:
        """Everything about a digest, deleted or not (history stays); None if never seen."""

    @abstractmethod
    def images_with_vulnerability(self, vuln_id: str) -> list[ImageKey]:
        """Images (not deleted) with an active finding whose id or alias is `vuln_id`."""

    @abstractmethod
    def images_with_vulnerability_page(
        self, vuln_id: str, limit: int = 100, cursor: str | None = None
    ) -> Page[ImageKey]:
        """`images_with_vulnerability` a page at a time, ordered by (registry, digest, repository), the order
        of the store's index by vulnerability, so a page costs the same whether the CVE is rare or in a large
        share of the store; `cursor` from the last page."""

    @abstractmethod
    def list_assessment_rows(self, registry: str, limit: int = 100, cursor: str | None = None) -> Page[AssessmentRow]:
        """A registry's sub-assessment rows, ordered by (repository, digest, finding key): for each live
        assessed image one row per active finding when Unhealthy, else one row without a finding (an Incomplete
        one that row, then one per active finding); images not assessed give none. `cursor` (from the last
        page) carries the last row's key, so rows added or removed between pages neither repeat nor shift the
        rows that follow."""

    @abstractmethod
    def get_scan(self, scan_id: str) -> ScanRecord | None:
        """One scan by its id (an image's `last_scan.scan_id`); None if there is none."""

    @abstractmethod
    def list_findings(
        self,
        registry: str,
        digest: str,
        severity: Severity | None = None,
        patchable: bool | None = None,
        fix_status: str | None = None,
        include_disabled: bool = False,
    ) -> list[StoredFinding]:
        """Unresolved findings of a digest, most severe first."""

    # --- across the fleet (the dashboard) ----------------------------------------------------------------
    @abstractmethod
    def health_counts(self) -> list[HealthCount]:
        """Live images per (registry, repository, health), ordered by registry and repository."""

    @abstractmethod
    def finding_counts(self, registry: str | None = None) -> list[FindingCount]:
        """Active findings of live digests by severity and fix state (a digest in two repositories once)."""

    @abstractmethod
    def finding_spans(self, since: datetime) -> list[FindingSpan]:
        """Findings (not disabled) still open or resolved at or after `since`, grouped by severity and the
        days they were first seen and resolved: enough to count the open findings of every day since."""

    @abstractmethod
    def widespread_vulnerabilities(self, limit: int = 50) -> list[VulnerabilitySpread]:
        """The vulnerabilities of active findings on live digests, most severe first, then carried by the
        most digests; each with one of its findings (its severity, risk, KEV, EPSS)."""

    @abstractmethod
    def scan_counts(self, since: datetime) -> list[ScanCount]:
        """Scans started at or after `since`, by status."""

    @abstractmethod
    def recent_scans(self, since: datetime, status: ScanStatus | None = None, limit: int = 20) -> list[ScanRecord]:
        """Scans started at or after `since` (of one status), newest first."""

    @abstractmethod
    def scan_history(self, registry: str, digest: str, limit: int = 50) -> list[ScanRecord]:
        """A digest's scans, newest first."""

    @abstractmethod
    def occurrences(self, vuln_id: str, limit: int = 200) -> list[Occurrence]:
        """Live images with an active finding whose id or alias is `vuln_id`, each with that finding,
        ordered by (registry, repository, digest)."""

    @abstractmethod
    def gate_verdicts(
        self,
        gate: str | None = None,
        registry: str | None = None,
        repository: str | None = None,
        digest: str | None = None,
        limit: int = 100,
    ) -> list[GateVerdictRecord]:
        """Gates' verdicts, newest first, of one gate and/or one image when given."""

    @abstractmethod
    def disabled_counts(self) -> dict[str, tuple[int, int]]:
        """Per rule name: the unresolved findings it disables on live digests, and their digests."""


class RuleStore(Protocol):
    """Disable rules created over HTTP (the rule files are read from disk, not stored)."""

    @abstractmethod
    def create_rule(self, name: str, document: dict[str, Any], at: datetime) -> bool:
        """Store a validated rule document; False (nothing written) when a stored rule already has this
        name, compared case-insensitively."""

    @abstractmethod
    def delete_rule(self, name: str) -> bool:
        """False when no stored rule has this name (case-insensitive)."""

    @abstractmethod
    def get_rule(self, name: str) -> StoredRule | None: ...

    @abstractmethod
    def list_rules(self) -> RuleSnapshot:
        """Every stored rule, oldest first, with the revision they were read at."""

    @abstractmethod
    def rules_revision(self) -> int:
        """A counter every create and delete moves: a reader reloads the rules only when it changed."""


# --- what the service's operations combine -----------------------------------------------------------------
class EventIntake(ImageLedger, ScanRecords, Protocol):
    """Registry events (`scanner.service.pipeline.handle_event`): the ledger, and whether a pushed digest
    was already scanned by this scanner version."""


class ManualScans(ImageLedger, ScanRecords, Lookups, Protocol):
    """A manual scan request (`scanner.service.manage.request_scan`): the image as known, its push, its scan."""


class Reassessment(ScanRecords, Assessments, Protocol):
    """Assessing a digest again from its stored inventory."""


class ScanWork(ScanRecords, Assessments, UsageMeter, Lookups, Protocol):
    """One queued scan (`scanner.service.pipeline.process_scan`): its record and inventory, the assessment,
    the charge, and the image's last scan (an abandoned attempt is closed)."""


class RescanWork(ImageLedger, ScanRecords, Assessments, UsageMeter, Protocol):
    """The rescan timer (`scanner.service.rescan.rescan_recent`): pulled digests re-matched from their
    stored inventories."""


class RuleChanges(RuleStore, Lookups, ScanRecords, Assessments, Protocol):
    """Creating or deleting a rule over HTTP (`scanner.service.rule_admin`): the rule, the images it may
    change, and their re-assessment."""
