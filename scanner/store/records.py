"""What the findings store hands out: frozen records, no I/O. Times are timezone-aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from scanner.model.types import Coverage, Finding, Health, Inventory

ScanStatus = Literal["running", "succeeded", "failed"]
T = TypeVar("T")


@dataclass(frozen=True, order=True)
class ImageKey:
    """An image as a registry names it: the same digest may live in several repositories."""

    registry: str
    repository: str
    digest: str


@dataclass(frozen=True)
class TagRecord:
    repository: str
    tag: str
    digest: str
    first_seen: datetime
    last_seen: datetime
    current: bool  # the tag points at this digest now (False once moved away or the image deleted)


@dataclass(frozen=True)
class ScanRecord:
    scan_id: str
    registry: str
    repository: str
    digest: str
    trigger: str  # push, import, rescan, manual…
    status: ScanStatus
    started_at: datetime
    finished_at: datetime | None = None
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    scanner_version: str = ""
    db_version: str = ""
    detector_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredInventory:
    inventory: Inventory
    scanner_version: str
    detector_versions: tuple[str, ...]
    saved_at: datetime


@dataclass(frozen=True)
class StoredFinding:
    """A finding with its history on one digest; `resolved_at` is None while it is present."""

    key: str  # stable identity: vulnerability id + package identity
    finding: Finding
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    reopened: int  # how many times it came back after being resolved

    @property
    def active(self) -> bool:
        return self.resolved_at is None and not self.finding.disabled


@dataclass(frozen=True)
class NewAssessment:
    """One digest's assessment to store (`save_assessments`)."""

    registry: str
    digest: str
    findings: Sequence[Finding]
    health: Health
    reason: str
    summary: dict[str, Any]
    at: datetime
    coverage: Sequence[Coverage] = ()


@dataclass(frozen=True)
class AssessmentChange:
    """What `save_assessment` changed; the health-changed event is raised when `changed`."""

    previous_health: Health | None  # None: the digest had never been assessed
    health: Health
    added: tuple[str, ...] = ()  # finding keys newly active
    removed: tuple[str, ...] = ()  # finding keys no longer active (resolved or disabled)
    stale: bool = False  # an assessment older than the stored one: ignored

    @property
    def health_changed(self) -> bool:
        return self.previous_health != self.health

    @property
    def changed(self) -> bool:
        return not self.stale and (self.health_changed or bool(self.added) or bool(self.removed))


@dataclass(frozen=True)
class ImageSummary:
    """One (registry, repository, digest) with the digest's latest health; for listings."""

    key: ImageKey
    media_type: str
    first_push: datetime | None
    last_push: datetime | None
    last_pull: datetime | None
    deleted: bool
    tags: tuple[str, ...]  # current tags in this repository
    health: Health | None  # None: not assessed yet
    reason: str
    summary: dict[str, Any]
    assessed_at: datetime | None
    coverage: tuple[Coverage, ...] = ()  # what the database held for each of its ecosystems when assessed


@dataclass(frozen=True)
class ImageDetail:
    """A digest across its repositories, with tag history, last scan and present findings."""

    registry: str
    digest: str
    repositories: tuple[ImageSummary, ...]
    tag_history: tuple[TagRecord, ...]
    health: Health | None
    reason: str
    summary: dict[str, Any]
    assessed_at: datetime | None
    last_scan: ScanRecord | None
    findings: tuple[StoredFinding, ...]  # unresolved ones, disabled included (flagged)
    coverage: tuple[Coverage, ...] = ()  # what the database held for each of its ecosystems when assessed


@dataclass(frozen=True)
class UsageCounts:
    billable: int  # digests scanned for the first time in the window
    events: dict[str, int]  # usage events by kind in the window

    @property
    def free(self) -> int:
        return sum(self.events.values()) - self.billable


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    cursor: str | None  # pass back to get the next page; None on the last page


@dataclass(frozen=True)
class StoredRule:
    """A disable rule created over HTTP: its document in the rule-file schema of one rule, as accepted."""

    name: str
    document: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class RuleSnapshot:
    """Every stored rule (oldest first) and the revision they were read at, in one transaction."""

    revision: int
    rules: tuple[StoredRule, ...]


@dataclass(frozen=True)
class AssessmentRow:
    """One row of a registry's sub-assessments: an active finding of an Unhealthy or Incomplete image, or
    (`finding` None) the one row of an image assessed Healthy, Unsupported, NotApplicable, NotAssessed or Incomplete (an
    Incomplete image gives both: its image row first)."""

    image: ImageSummary
    finding: StoredFinding | None

    @property
    def key(self) -> tuple[str, str, str]:
        """The keyset order of rows within a registry: (repository, digest, finding key or "")."""
        return (self.image.key.repository, self.image.key.digest, self.finding.key if self.finding else "")


# --- fleet-wide read models (the dashboard's) -----------------------------------------------------------------
@dataclass(frozen=True)
class HealthCount:
    """How many live images of a repository have one health (None: not assessed yet)."""

    registry: str
    repository: str
    health: Health | None
    images: int


@dataclass(frozen=True)
class FindingCount:
    """Active findings of live digests with one severity and fix state (each digest counted once)."""

    severity: str
    fix_status: str
    findings: int


@dataclass(frozen=True)
class FindingSpan:
    """Findings (not disabled) first seen on `opened` (a UTC date, YYYY-MM-DD) and resolved on `resolved`
    (None: still open), by severity: the history a per-day trend is counted from."""

    severity: str
    opened: str
    resolved: str | None
    findings: int


@dataclass(frozen=True)
class VulnerabilitySpread:
    """One vulnerability across the live fleet: the digests carrying it and one of its findings."""

    vuln_id: str
    digests: int
    finding: StoredFinding


@dataclass(frozen=True)
class ScanCount:
    status: ScanStatus
    scans: int


@dataclass(frozen=True)
class Occurrence:
    """One image carrying a vulnerability, with the finding there."""

    image: ImageSummary
    finding: StoredFinding


@dataclass(frozen=True)
class GateActionOutcome:
    """One action a gate's verdict led to (`lock`, `unlock`, `quarantine Failed`, `notify`…) and whether it
    was carried out; `error` is its one-line failure."""

    action: str
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class GateVerdictRecord:
    """What one gate decided about one image at one assessment, and what was done about it."""

    gate: str
    registry: str
    repository: str
    digest: str
    tags: tuple[str, ...]
    failed: bool
    reasons: tuple[str, ...]
    actions: tuple[GateActionOutcome, ...]  # empty when no action ran (none configured, or evaluation only)
    decided_at: datetime
