"""The findings store: what the event, timer and HTTP handlers read and write.

Every write is idempotent: replaying the same event or scan (same arguments, same `at`) leaves the same
state, and events replayed out of order converge (times merge with min/max, a stale assessment is
ignored). Times are timezone-aware datetimes, stored as UTC.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from scanner.model.types import Finding, Health, Inventory, Severity
from scanner.store.records import (
    AssessmentChange,
    AssessmentRow,
    ImageDetail,
    ImageKey,
    ImageSummary,
    Page,
    RuleSnapshot,
    ScanStatus,
    StoredFinding,
    StoredInventory,
    StoredRule,
    UsageCounts,
)

# Usage kinds; only the first "scan" of a digest is billable (rescans and re-pushes are free).
BILLABLE_KIND = "scan"


class FindingsStore(ABC):
    """Images, tags, pulls, scans, inventories, layer cache, findings with history, usage."""

    @abstractmethod
    def migrate(self) -> None:
        """Bring the schema up to date; safe to call from several instances at once."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> FindingsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- registry events -------------------------------------------------------------------------------
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
    def recently_pulled(self, since: datetime) -> list[ImageKey]:
        """Images (not deleted) pulled at or after `since`: the rescan timer's work list."""

    # --- scans -----------------------------------------------------------------------------------------
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
    def save_layer_chain(self, chain_key: str, inventory: Inventory, at: datetime) -> None:
        """Cache the inventory of a full layer chain (`scanner.inventory.chain_cache.chain_key`). The key is
        content-addressed: the first inventory saved under it stays."""

    @abstractmethod
    def load_layer_chain(self, chain_key: str) -> Inventory | None:
        """The inventory cached under `chain_key`, or None."""

    # --- assessments -----------------------------------------------------------------------------------
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
    ) -> AssessmentChange:
        """Upsert the digest's findings with history: `first_seen` kept, `resolved_at` set when a finding
        disappears, reopened when it comes back. An assessment older than the stored one is ignored."""

    # --- usage -----------------------------------------------------------------------------------------
    @abstractmethod
    def record_usage(self, registry: str, digest: str, kind: str, at: datetime) -> bool:
        """Meter one event; True when this call created the digest's one charge (its first "scan")."""

    @abstractmethod
    def usage(self, registry: str, since: datetime) -> UsageCounts: ...

    # --- lookups for the HTTP API ----------------------------------------------------------------------
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
        assessed image one row per active finding when Unhealthy, else one row without a finding; images not
        assessed give none. `cursor` (from the last page) carries the last row's key, so rows added or
        removed between pages neither repeat nor shift the rows that follow."""

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

    # --- disable rules created over HTTP ---------------------------------------------------------------
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
