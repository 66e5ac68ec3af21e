"""Assessments and their findings' history in the SQL store, one digest or a batch of digests per transaction.

A rescan after a database update may re-assess thousands of digests; written one transaction each, the
store's round trips and commits cost more than the assessing. `save_assessments` writes a batch in one
transaction with the same per-digest rules as `save_assessment` (which is a batch of one): each digest's
lock (taken in a fixed order, so two batches never wait on each other in a cycle), one read of every
digest's previous assessment and findings, then each statement once over all the batch's rows.

Per digest: an assessment older than the stored one is ignored (`stale`); an open finding stored with the
same document is not written at all; a new, changed or reopened one is upserted with all its ids (a
database update may add aliases); one no longer found is resolved, its `last_seen` the previous assessment's
time. An open finding's `last_seen` is its image's latest assessment (`lookups` reads it so): a rescan that
finds what it found before writes the assessment's row and nothing else, whatever the number of findings.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scanner.model.codec import finding_to_dict
from scanner.model.shapes import COVERAGE
from scanner.model.types import Coverage, Finding, Health
from scanner.store.records import AssessmentChange, NewAssessment
from scanner.store.sql import Dialect, Params, Rows, Tx, dumps, key_lists, to_text, unnested


def finding_key(finding: Finding) -> str:
    """Identity of a finding across rescans: the vulnerability and the package instance it is in."""
    pkg = finding.package
    parts = [finding.id, pkg.kind, pkg.ecosystem, pkg.name, pkg.version, pkg.arch, *pkg.locations]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


_FINDING_COLUMNS = (
    "registry, digest, finding_key, vuln_id, severity, fix_status, disabled, finding, first_seen, last_seen"
)
# New, changed or reopened findings. A reopened one (resolved until now) counts one more reopening; SET
# expressions read the row as it was before the update in both dialects. A batch holds each digest once and
# a digest's findings are keyed: no row meets ON CONFLICT DO UPDATE twice in one statement.
_ON_FINDING_CONFLICT = (
    " ON CONFLICT (registry, digest, finding_key) DO UPDATE SET vuln_id = excluded.vuln_id,"
    " severity = excluded.severity,"
    " fix_status = excluded.fix_status, disabled = excluded.disabled, finding = excluded.finding,"
    " last_seen = excluded.last_seen, resolved_at = NULL,"
    " reopened = CASE WHEN findings.resolved_at IS NULL THEN findings.reopened ELSE findings.reopened + 1 END"
)
UPSERT_FINDINGS = Rows(
    f"INSERT INTO findings ({_FINDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?){_ON_FINDING_CONFLICT}",
    f"INSERT INTO findings ({_FINDING_COLUMNS}) SELECT * FROM"
    f" {unnested('text', 'text', 'text', 'text', 'text', 'text', 'integer', 'text', 'text', 'text')}"
    f"{_ON_FINDING_CONFLICT}",
)
FINDING_IDS = Rows(
    "INSERT INTO finding_ids (vuln_id, registry, digest, finding_key) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    "INSERT INTO finding_ids (vuln_id, registry, digest, finding_key) SELECT * FROM"
    f" {unnested('text', 'text', 'text', 'text')} ON CONFLICT DO NOTHING",
)


# Each finding no longer found (resolved at, last seen, registry, digest, key): its last_seen, until now its
# image's latest assessment, stored as it was.
RESOLVE_FINDINGS = Rows(
    "UPDATE findings SET resolved_at = ?, last_seen = ? WHERE registry = ? AND digest = ? AND finding_key = ?",
    f"UPDATE findings SET resolved_at = k.at, last_seen = k.seen FROM {unnested(*['text'] * 5)}"
    " AS k (at, seen, registry, digest, finding_key) WHERE findings.registry = k.registry"
    " AND findings.digest = k.digest AND findings.finding_key = k.finding_key",
)
_ASSESSMENT_COLUMNS = "registry, digest, health, reason, summary, assessed_at, coverage"
_ON_ASSESSMENT_CONFLICT = (
    " ON CONFLICT (registry, digest) DO UPDATE SET health = excluded.health,"
    " reason = excluded.reason, summary = excluded.summary, assessed_at = excluded.assessed_at,"
    " coverage = excluded.coverage"
)
UPSERT_ASSESSMENTS = Rows(
    f"INSERT INTO assessments ({_ASSESSMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?){_ON_ASSESSMENT_CONFLICT}",
    f"INSERT INTO assessments ({_ASSESSMENT_COLUMNS}) SELECT * FROM {unnested(*['text'] * 7)}{_ON_ASSESSMENT_CONFLICT}",
)


@dataclass
class _Stored:
    """A digest's previous assessment as read: health and time (None: never assessed) and each finding's
    (resolved_at, disabled, document's fingerprint) by key."""

    health: Health | None = None
    at: str | None = None
    findings: dict[str, tuple[Any, Any, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Encoded:
    """A new finding as the batch writes and compares it: its key, stored document and that document's
    fingerprint (`Dialect.fingerprint`)."""

    finding: Finding
    key: str
    document: str
    fingerprint: str


@dataclass
class _Writes:
    """The batch's statements, each with all its rows."""

    upsert: list[Params] = field(default_factory=list)
    ids: list[Params] = field(default_factory=list)
    resolve: list[Params] = field(default_factory=list)
    assessments: list[Params] = field(default_factory=list)


class SqlAssessments:
    """`save_assessment` and `save_assessments` of `SqlStore`."""

    @abstractmethod
    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]: ...

    dialect: Dialect

    @abstractmethod
    def _lock_many(self, tx: Tx, scope: str, names: Sequence[str]) -> None: ...

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
        return self.save_assessments(
            [NewAssessment(registry, digest, findings, health, reason, summary, at, coverage)]
        )[0]

    def save_assessments(self, assessments: Sequence[NewAssessment]) -> list[AssessmentChange]:
        keys = [(a.registry, a.digest) for a in assessments]
        if len(set(keys)) != len(keys):
            raise ValueError("save_assessments: a digest may appear only once per batch")
        if not keys:
            return []
        prepared = []
        # Images with the same packages share Finding objects (`assess.findings.MatchMemo`): each one's key
        # and stored document is computed once per batch (held with the finding, so its id stays its own).
        encoded: dict[int, _Encoded] = {}
        for a in assessments:
            incoming: dict[str, _Encoded] = {}
            for f in a.findings:
                known = encoded.get(id(f))
                if known is None or known.finding is not f:
                    document = dumps(finding_to_dict(f))
                    known = encoded[id(f)] = _Encoded(f, finding_key(f), document, self.dialect.fingerprint(document))
                incoming[known.key] = known
            prepared.append((a, to_text(a.at), incoming))
        writes = _Writes()
        changes = []
        with self._tx() as tx:
            self._lock_many(tx, "digest", sorted(f"{registry}@{digest}" for registry, digest in keys))
            stored = _read(tx, keys, self.dialect.stored_document)
            for a, when, incoming in prepared:
                changes.append(_plan(a, when, incoming, stored[(a.registry, a.digest)], writes))
            tx.write(UPSERT_FINDINGS, writes.upsert)
            tx.write(FINDING_IDS, writes.ids)
            tx.write(RESOLVE_FINDINGS, writes.resolve)
            tx.write(UPSERT_ASSESSMENTS, writes.assessments)
        return changes


def _read(tx: Tx, keys: Sequence[tuple[str, str]], read_document: str) -> dict[tuple[str, str], _Stored]:
    """Each digest's previous assessment and findings, a key list per statement: a row per finding,
    or one row of NULL finding columns, each carrying the assessment (NULL when there is none yet).
    `read_document`: how each finding's document is read (`Dialect.stored_document`)."""
    stored = {key: _Stored() for key in keys}
    for with_keys, params in key_lists(keys):
        rows = tx.rows(
            f"{with_keys} SELECT k.registry, k.digest, a.health, a.assessed_at, f.finding_key, f.resolved_at,"
            f" f.disabled, {read_document} FROM k"
            " LEFT JOIN assessments a ON a.registry = k.registry AND a.digest = k.digest"
            " LEFT JOIN findings f ON f.registry = k.registry AND f.digest = k.digest",
            params,
        )
        for registry, digest, health, at, key, resolved, disabled, document in rows:
            entry = stored[(registry, digest)]
            entry.health, entry.at = health, at
            if key is not None:
                entry.findings[key] = (resolved, disabled, document)
    return stored


def _plan(
    a: NewAssessment,
    when: str,
    incoming: dict[str, _Encoded],
    stored: _Stored,
    writes: _Writes,
) -> AssessmentChange:
    """One digest's rows added to `writes`; what its assessment changes."""
    if stored.at is not None and when < stored.at:
        kept = stored.health if stored.health is not None else a.health  # a stored time has its health
        return AssessmentChange(stored.health, kept, stale=True)
    existing = stored.findings
    before = {k for k, (resolved, disabled, _) in existing.items() if resolved is None and not disabled}
    # A rescan mostly finds the same findings again: an open one stored with the same document (which holds
    # severity, fix state and disabled too) is left as it is.
    unchanged = {
        k
        for k, (resolved, _, stored_print) in existing.items()
        if resolved is None and k in incoming and incoming[k].fingerprint == stored_print
    }
    registry, digest = a.registry, a.digest
    for k, new in incoming.items():
        if k in unchanged:
            continue
        finding = new.finding
        writes.upsert.append(
            (
                registry,
                digest,
                k,
                finding.id,
                finding.severity,
                finding.fix_status,
                int(finding.disabled),
                new.document,
                when,
                when,
            )
        )
        # An unchanged finding has its ids already. A written one (new, changed or reopened) records all of
        # them: the key covers the id, but a database update may add aliases.
        writes.ids += [(vuln_id, registry, digest, k) for vuln_id in dict.fromkeys((finding.id, *finding.aliases))]
    gone = sorted(k for k, (resolved, _, _) in existing.items() if resolved is None and k not in incoming)
    writes.resolve += [(when, stored.at or when, registry, digest, k) for k in gone]
    coverage = dumps([COVERAGE.dump(c) for c in a.coverage])
    writes.assessments.append((registry, digest, a.health, a.reason, dumps(a.summary), when, coverage))
    after = {k for k, new in incoming.items() if not new.finding.disabled}
    return AssessmentChange(stored.health, a.health, tuple(sorted(after - before)), tuple(sorted(before - after)))
