"""Read side of the SQL store (the `Lookups` port): listings, image detail and finding queries for the HTTP API."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Container, Iterator, Sequence, Sized
from contextlib import AbstractContextManager
from datetime import datetime
from itertools import islice
from typing import Any

from scanner.model.codec import finding_from_dict
from scanner.model.shapes import COVERAGE
from scanner.model.types import SEVERITY_ORDER, Health, Severity
from scanner.store.ports import MAX_PAGE
from scanner.store.records import (
    AssessmentRow,
    FindingCount,
    FindingSpan,
    HealthCount,
    ImageDetail,
    ImageKey,
    ImageSummary,
    Occurrence,
    Page,
    ScanCount,
    ScanRecord,
    ScanStatus,
    StoredFinding,
    TagRecord,
    VulnerabilitySpread,
)
from scanner.store.sql import Row, Tx, decode_cursor, encode_cursor, from_text, loads, req_time, to_text

# Values per IN list: well under SQLite's and PostgreSQL's limits on bound parameters.
_IN_CHUNK = 500
_IMAGE_COLUMNS = (
    "i.registry, i.repository, i.digest, i.media_type, i.first_push, i.last_push, i.last_pull, i.deleted,"
    " a.health, a.reason, a.summary, a.assessed_at, a.coverage"
)
_IMAGE_FROM = "images i LEFT JOIN assessments a ON a.registry = i.registry AND a.digest = i.digest"


def _finding_columns(table: str) -> str:
    """A `StoredFinding`'s columns from `table` (the findings table or its alias). An open finding was seen
    last by its image's latest assessment, which does not write it again (`assessment_rows`); a resolved
    one's `last_seen` is stored."""
    return (
        f"{table}.finding_key, {table}.finding, {table}.first_seen, CASE WHEN {table}.resolved_at IS NULL"
        f" THEN COALESCE((SELECT seen.assessed_at FROM assessments seen WHERE seen.registry = {table}.registry"
        f" AND seen.digest = {table}.digest), {table}.last_seen) ELSE {table}.last_seen END, {table}.resolved_at,"
        f" {table}.reopened"
    )


_FINDING_COLUMNS = _finding_columns("findings")
# Healths whose images give a sub-assessment row per active finding (an Incomplete one an image row too).
_WITH_FINDING_ROWS = ("Unhealthy", "Incomplete")
# Assessed live images of a registry in keyset order, with the rows each gives after the cursor
# (repository, digest, finding key): an Unhealthy image one per active finding past the cursor, any other one
# row unless it is the cursor's own image (its row, keyed "", came before); an Incomplete image both.
_ROW_IMAGES = (
    f"SELECT {_IMAGE_COLUMNS}, CASE WHEN a.health IN ('Unhealthy', 'Incomplete') THEN (SELECT COUNT(*) FROM findings f"
    " WHERE f.registry = i.registry AND f.digest = i.digest AND f.resolved_at IS NULL AND f.disabled = 0"
    " AND (i.repository <> ? OR i.digest <> ? OR f.finding_key > ?)) ELSE 0 END"
    " + CASE WHEN a.health = 'Unhealthy' OR (i.repository = ? AND i.digest = ?) THEN 0 ELSE 1 END"
    " FROM images i JOIN assessments a ON a.registry = i.registry AND a.digest = i.digest"
    " WHERE i.registry = ? AND i.deleted = 0 AND (i.repository, i.digest) {op} (?, ?)"
    " ORDER BY i.repository, i.digest LIMIT ?"
)
# Digests with an active finding naming a vulnerability (id or alias) from a position on, in the order of
# the finding_ids index (grouped along it: no sort).
_VULN_DIGESTS = (
    "SELECT x.registry, x.digest FROM finding_ids x WHERE x.vuln_id = ? AND (x.registry, x.digest) {op} (?, ?)"
    " AND EXISTS (SELECT 1 FROM findings f WHERE f.registry = x.registry AND f.digest = x.digest"
    " AND f.finding_key = x.finding_key AND f.resolved_at IS NULL AND f.disabled = 0)"
    " GROUP BY x.registry, x.digest ORDER BY x.registry, x.digest LIMIT ?"
)
# An active finding on a digest live in at least one repository (findings of deleted images stay as history).
_LIVE_ACTIVE = (
    "f.resolved_at IS NULL AND f.disabled = 0 AND EXISTS (SELECT 1 FROM images i"
    " WHERE i.registry = f.registry AND i.digest = f.digest AND i.deleted = 0)"
)
_F_COLUMNS = _finding_columns("f")
_SEVERITY_RANK = "CASE f.severity " + " ".join(f"WHEN '{s}' THEN {n}" for n, s in enumerate(SEVERITY_ORDER)) + " END"
_CURSOR_SECRET = "page-cursor"
_SECRET_SELECT = "SELECT secret FROM store_secrets WHERE name = ?"
_SECRET_INSERT = "INSERT INTO store_secrets (name, secret) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
_SCAN_COLUMNS = (
    "scan_id, registry, repository, digest, scan_trigger, status, started_at, finished_at, error, timings,"
    " scanner_version, db_version, detector_versions"
)


class SqlLookups(ABC):
    _cursor_secret: bytes | None = None  # the store's cursor key, read once

    @abstractmethod
    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]:
        """A transaction (`write=False`: read-only); library errors leave it as StoreError."""

    def _cursor_key(self) -> bytes:
        """The key this store signs its page cursors with: random, created by the first process that needs it
        and kept in the store, so every instance sharing the store (and every restart) accepts the cursors
        any of them issued, and a cursor from another store is refused."""
        if self._cursor_secret is None:
            with self._tx(write=False) as tx:
                rows = tx.rows(_SECRET_SELECT, (_CURSOR_SECRET,))
            if not rows:
                with self._tx() as tx:  # two first users: one insert wins, both read the winner
                    tx.run(_SECRET_INSERT, (_CURSOR_SECRET, secrets.token_hex(32)))
                    rows = tx.rows(_SECRET_SELECT, (_CURSOR_SECRET,))
            self._cursor_secret = bytes.fromhex(rows[0][0])
        return self._cursor_secret

    def _page_cursor(self, purpose: str, key: Sequence[str] | None) -> str | None:
        return None if key is None else encode_cursor(self._cursor_key(), purpose, key)

    def _after(self, purpose: str, cursor: str | None, size: int) -> list[str] | None:
        return None if cursor is None else decode_cursor(self._cursor_key(), purpose, cursor, size)

    def recently_pulled(self, since: datetime, among: Container[tuple[str, str]] | None = None) -> list[ImageKey]:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                "SELECT registry, repository, digest FROM images WHERE last_pull >= ? AND deleted = 0"
                " ORDER BY registry, repository, digest",
                (to_text(since),),
            )
        if among is None:
            return [ImageKey(*row) for row in rows]
        return [ImageKey(r, repository, d) for r, repository, d in rows if (r, d) in among]

    def list_images(
        self,
        registry: str | None = None,
        repository: str | None = None,
        status: Health | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ImageSummary]:
        limit = max(1, min(limit, MAX_PAGE))
        where, params = ["i.deleted = 0"], []
        for column, value in (("i.registry", registry), ("i.repository", repository), ("a.health", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        after = self._after("images", cursor, 3)
        if after is not None:
            # Keyset paging: stable under concurrent inserts, no OFFSET scans.
            where.append("(i.registry, i.repository, i.digest) > (?, ?, ?)")
            params.extend(after)
        sql = (
            f"SELECT {_IMAGE_COLUMNS} FROM {_IMAGE_FROM} WHERE {' AND '.join(where)}"
            f" ORDER BY i.registry, i.repository, i.digest LIMIT {limit + 1}"
        )
        with self._tx(write=False) as tx:
            rows = tx.rows(sql, params)
            items = tuple(_summaries(rows[:limit], _current_tags(tx, rows[:limit])))
        last = items[-1].key if items and len(rows) > limit else None
        return Page(items, self._page_cursor("images", (last.registry, last.repository, last.digest) if last else None))

    def list_assessment_rows(self, registry: str, limit: int = 100, cursor: str | None = None) -> Page[AssessmentRow]:
        limit = max(1, min(limit, MAX_PAGE))
        after = self._after("assessment-rows", cursor, 3) or ["", "", ""]
        with self._tx(write=False) as tx:
            picked, total = _row_images(tx, registry, after, limit)
            images = [row for row, _ in picked]
            with_findings = [row[2] for row in images if row[8] in _WITH_FINDING_ROWS]
            encoded = _active_findings(tx, registry, with_findings)
            summaries = _summaries(images, _current_tags(tx, images))
        rows: list[AssessmentRow] = []
        for image in summaries:
            if len(rows) == limit:
                break
            resumed = [image.key.repository, image.key.digest] == after[:2]
            if image.health != "Unhealthy" and not resumed:
                rows.append(AssessmentRow(image, None))  # an Incomplete image's row comes before its findings'
            if image.health not in _WITH_FINDING_ROWS or len(rows) == limit:
                continue
            remaining = (raw for key, raw in encoded.get(image.key.digest, ()) if not resumed or key > after[2])
            # Decoded only when on the page: the last image may have more findings than the page has room for.
            rows.extend(AssessmentRow(image, _stored(raw)) for raw in islice(remaining, limit - len(rows)))
        # `total` counts the rows after the cursor; more than a page of them means there is a next page.
        more = total > limit and bool(rows)
        return Page(tuple(rows), self._page_cursor("assessment-rows", rows[-1].key if more else None))

    def get_image(self, registry: str, digest: str) -> ImageDetail | None:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT {_IMAGE_COLUMNS} FROM {_IMAGE_FROM} WHERE i.registry = ? AND i.digest = ?"
                " ORDER BY i.repository",
                (registry, digest),
            )
            if not rows:
                return None
            tags = tx.rows(
                "SELECT repository, tag, digest, first_seen, last_seen, is_current FROM tags"
                " WHERE registry = ? AND digest = ? ORDER BY repository, tag",
                (registry, digest),
            )
            scans = tx.rows(
                f"SELECT {_SCAN_COLUMNS} FROM scans WHERE registry = ? AND digest = ?"
                " ORDER BY started_at DESC, scan_id DESC LIMIT 1",
                (registry, digest),
            )
            findings = self._findings(tx, registry, digest, "", [], True)
        # The tag history holds the current tags too (ordered by repository, tag): no query per repository.
        current: dict[ImageKey, list[str]] = {}
        for repo, tag, dig, _, _, is_current in tags:
            if is_current:
                current.setdefault(ImageKey(registry, repo, dig), []).append(tag)
        repositories = tuple(_summaries(rows, {k: tuple(v) for k, v in current.items()}))
        first = repositories[0]
        return ImageDetail(
            registry=registry,
            digest=digest,
            repositories=repositories,
            tag_history=tuple(
                TagRecord(repo, tag, dig, req_time(fs), req_time(ls), bool(cur)) for repo, tag, dig, fs, ls, cur in tags
            ),
            health=first.health,
            reason=first.reason,
            summary=first.summary,
            assessed_at=first.assessed_at,
            last_scan=_scan(scans[0]) if scans else None,
            findings=tuple(findings),
            coverage=first.coverage,
        )

    def get_scan(self, scan_id: str) -> ScanRecord | None:
        with self._tx(write=False) as tx:
            rows = tx.rows(f"SELECT {_SCAN_COLUMNS} FROM scans WHERE scan_id = ?", (scan_id,))
        return _scan(rows[0]) if rows else None

    def images_with_vulnerability(self, vuln_id: str) -> list[ImageKey]:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                "SELECT DISTINCT i.registry, i.repository, i.digest FROM finding_ids x"
                " JOIN findings f ON f.registry = x.registry AND f.digest = x.digest AND f.finding_key = x.finding_key"
                " JOIN images i ON i.registry = x.registry AND i.digest = x.digest"
                " WHERE x.vuln_id = ? AND f.resolved_at IS NULL AND f.disabled = 0 AND i.deleted = 0"
                " ORDER BY i.registry, i.repository, i.digest",
                (vuln_id,),
            )
        return [ImageKey(*row) for row in rows]

    def images_with_vulnerability_page(
        self, vuln_id: str, limit: int = 100, cursor: str | None = None
    ) -> Page[ImageKey]:
        # Ordered by (registry, digest, repository), the order of the finding_ids index: a page walks that
        # index from the cursor and stops after a page, whether the CVE is in 3 images or in a quarter of
        # the store (an order by repository first had to sort every match: 20 ms for 2,600 images).
        limit = max(1, min(limit, MAX_PAGE))
        registry, digest, repository = self._after("vulnerability-images", cursor, 3) or ("", "", "")
        position, inclusive = (registry, digest), True  # the cursor's digest may have more repositories
        keys: list[ImageKey] = []
        with self._tx(write=False) as tx:
            while len(keys) <= limit:
                sql = _VULN_DIGESTS.format(op=">=" if inclusive else ">")
                pairs: list[tuple[str, str]] = [(r, d) for r, d in tx.rows(sql, (vuln_id, *position, limit + 1))]
                live = _live_repositories(tx, pairs)
                for r, d in pairs:
                    resumed = (r, d) == (registry, digest)
                    repositories = live.get((r, d), [])
                    keys.extend(ImageKey(r, repo, d) for repo in repositories if not resumed or repo > repository)
                if len(pairs) <= limit:  # no digest after these
                    break
                position, inclusive = pairs[-1], False
        # ImageKey fields are (registry, repository, digest); the cursor is in page order.
        last = keys[limit - 1] if len(keys) > limit else None
        page_end = (last.registry, last.digest, last.repository) if last else None
        return Page(tuple(keys[:limit]), self._page_cursor("vulnerability-images", page_end))

    def list_findings(
        self,
        registry: str,
        digest: str,
        severity: Severity | None = None,
        patchable: bool | None = None,
        fix_status: str | None = None,
        include_disabled: bool = False,
    ) -> list[StoredFinding]:
        where: list[str] = []
        params: list[Any] = []
        if severity is not None:
            where.append(" AND severity = ?")
            params.append(severity)
        if patchable is not None:
            where.append(" AND fix_status = ?" if patchable else " AND fix_status <> ?")
            params.append("fixed")
        if fix_status is not None:
            where.append(" AND fix_status = ?")
            params.append(fix_status)
        with self._tx(write=False) as tx:
            return self._findings(tx, registry, digest, "".join(where), params, include_disabled)

    # --- across the fleet (the dashboard) ----------------------------------------------------------------
    def health_counts(self) -> list[HealthCount]:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT i.registry, i.repository, a.health, COUNT(*) FROM {_IMAGE_FROM} WHERE i.deleted = 0"
                " GROUP BY i.registry, i.repository, a.health ORDER BY i.registry, i.repository"
            )
        return [HealthCount(r, repo, health, int(n)) for r, repo, health, n in rows]

    def finding_counts(self, registry: str | None = None) -> list[FindingCount]:
        where, params = _LIVE_ACTIVE, []
        if registry is not None:
            where += " AND f.registry = ?"
            params.append(registry)
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT f.severity, f.fix_status, COUNT(*) FROM findings f WHERE {where}"
                " GROUP BY f.severity, f.fix_status",
                params,
            )
        return [FindingCount(severity, fix, int(n)) for severity, fix, n in rows]

    def finding_spans(self, since: datetime) -> list[FindingSpan]:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                "SELECT severity, SUBSTR(first_seen, 1, 10), SUBSTR(resolved_at, 1, 10), COUNT(*) FROM findings"
                " WHERE disabled = 0 AND (resolved_at IS NULL OR resolved_at >= ?)"
                " GROUP BY severity, SUBSTR(first_seen, 1, 10), SUBSTR(resolved_at, 1, 10)",
                (to_text(since),),
            )
        return [FindingSpan(severity, opened, resolved, int(n)) for severity, opened, resolved, n in rows]

    def widespread_vulnerabilities(self, limit: int = 50) -> list[VulnerabilitySpread]:
        limit = max(1, min(limit, MAX_PAGE))
        with self._tx(write=False) as tx:
            counted = tx.rows(
                f"SELECT f.vuln_id, MIN({_SEVERITY_RANK}), COUNT(DISTINCT f.registry || ' ' || f.digest)"
                f" FROM findings f WHERE {_LIVE_ACTIVE}"
                f" GROUP BY f.vuln_id ORDER BY 2, 3 DESC, f.vuln_id LIMIT {limit}"
            )
            spread: list[VulnerabilitySpread] = []
            for vuln_id, _, digests in counted:
                # One finding of each: through the index by vulnerability, the first active one.
                rows = tx.rows(
                    f"SELECT {_F_COLUMNS} FROM finding_ids x JOIN findings f ON f.registry = x.registry"
                    " AND f.digest = x.digest AND f.finding_key = x.finding_key WHERE x.vuln_id = ?"
                    " AND f.vuln_id = ? AND f.resolved_at IS NULL AND f.disabled = 0 LIMIT 1",
                    (vuln_id, vuln_id),
                )
                if rows:
                    spread.append(VulnerabilitySpread(vuln_id, int(digests), _stored(rows[0])))
        return spread

    def scan_counts(self, since: datetime) -> list[ScanCount]:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                "SELECT status, COUNT(*) FROM scans WHERE started_at >= ? GROUP BY status", (to_text(since),)
            )
        return [ScanCount(status, int(n)) for status, n in rows]

    def recent_scans(self, since: datetime, status: ScanStatus | None = None, limit: int = 20) -> list[ScanRecord]:
        limit = max(1, min(limit, MAX_PAGE))
        where, params = "started_at >= ?", [to_text(since)]
        if status is not None:
            where += " AND status = ?"
            params.append(status)
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT {_SCAN_COLUMNS} FROM scans WHERE {where} ORDER BY started_at DESC, scan_id DESC LIMIT {limit}",
                params,
            )
        return [_scan(row) for row in rows]

    def scan_history(self, registry: str, digest: str, limit: int = 50) -> list[ScanRecord]:
        limit = max(1, min(limit, MAX_PAGE))
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT {_SCAN_COLUMNS} FROM scans WHERE registry = ? AND digest = ?"
                f" ORDER BY started_at DESC, scan_id DESC LIMIT {limit}",
                (registry, digest),
            )
        return [_scan(row) for row in rows]

    def occurrences(self, vuln_id: str, limit: int = 200) -> list[Occurrence]:
        limit = max(1, min(limit, MAX_PAGE))
        with self._tx(write=False) as tx:
            found = tx.rows(
                f"SELECT f.registry, f.digest, {_F_COLUMNS}"
                " FROM finding_ids x JOIN findings f ON f.registry = x.registry AND f.digest = x.digest"
                f" AND f.finding_key = x.finding_key WHERE x.vuln_id = ? AND {_LIVE_ACTIVE}"
                f" ORDER BY f.registry, f.digest, f.finding_key LIMIT {limit}",
                (vuln_id,),
            )
            by_digest: dict[tuple[str, str], Row] = {}
            for row in found:
                by_digest.setdefault((row[0], row[1]), row[2:])
            images: list[Row] = []
            for registry in sorted({r for r, _ in by_digest}):
                digests = sorted(d for r, d in by_digest if r == registry)
                for chunk in _chunks(digests):
                    images.extend(
                        tx.rows(
                            f"SELECT {_IMAGE_COLUMNS} FROM {_IMAGE_FROM} WHERE i.registry = ?"
                            f" AND i.digest IN ({_marks(chunk)}) AND i.deleted = 0",
                            [registry, *chunk],
                        )
                    )
            summaries = _summaries(images, _current_tags(tx, images))
        out = [Occurrence(image, _stored(by_digest[(image.key.registry, image.key.digest)])) for image in summaries]
        out.sort(key=lambda o: o.image.key)
        return out[:limit]

    def disabled_counts(self) -> dict[str, tuple[int, int]]:
        # Which rule disabled a finding is in its document; disabled findings are few next to the rest.
        with self._tx(write=False) as tx:
            rows = tx.rows(
                "SELECT f.registry, f.digest, f.finding FROM findings f WHERE f.resolved_at IS NULL AND f.disabled = 1"
                " AND EXISTS (SELECT 1 FROM images i WHERE i.registry = f.registry AND i.digest = f.digest"
                " AND i.deleted = 0)"
            )
        findings: dict[str, int] = {}
        digests: dict[str, set[tuple[str, str]]] = {}
        for registry, digest, doc in rows:
            rule = finding_from_dict(loads(doc)).disabled_by
            findings[rule] = findings.get(rule, 0) + 1
            digests.setdefault(rule, set()).add((registry, digest))
        return {rule: (n, len(digests[rule])) for rule, n in findings.items()}

    def _findings(
        self, tx: Tx, registry: str, digest: str, extra: str, params: list[Any], include_disabled: bool
    ) -> list[StoredFinding]:
        if not include_disabled:
            extra += " AND disabled = 0"
        rows = tx.rows(
            f"SELECT {_FINDING_COLUMNS} FROM findings WHERE registry = ? AND digest = ? AND resolved_at IS NULL{extra}",
            [registry, digest, *params],
        )
        found = [_stored(row) for row in rows]
        found.sort(
            key=lambda s: (SEVERITY_ORDER.index(s.finding.severity), s.finding.package.name, s.finding.id, s.key)
        )
        return found


def _summaries(rows: Sequence[Row], tags: dict[ImageKey, tuple[str, ...]]) -> list[ImageSummary]:
    """Rows starting with `_IMAGE_COLUMNS` → summaries with their current tags."""
    summaries = []
    for row in rows:
        registry, repository, digest, media_type, first, last, pull, deleted, health, reason, summary, at, cov = row[
            :13
        ]
        key = ImageKey(registry, repository, digest)
        summaries.append(
            ImageSummary(
                key=key,
                media_type=media_type,
                first_push=from_text(first),
                last_push=from_text(last),
                last_pull=from_text(pull),
                deleted=bool(deleted),
                tags=tags.get(key, ()),
                health=health,
                reason=reason or "",
                summary=loads(summary) if summary else {},
                assessed_at=from_text(at),
                coverage=tuple(COVERAGE.load(c) for c in loads(cov)) if cov else (),
            )
        )
    return summaries


def _stored(row: Row) -> StoredFinding:
    key, doc, first, last, resolved, reopened = row
    return StoredFinding(
        key, finding_from_dict(loads(doc)), req_time(first), req_time(last), from_text(resolved), reopened
    )


def _chunks(values: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _marks(values: Sized) -> str:
    return ", ".join("?" * len(values))


def _current_tags(tx: Tx, rows: Sequence[Row]) -> dict[ImageKey, tuple[str, ...]]:
    """Current tags of the images of `rows` (registry, repository, digest first): one query per chunk of
    digests instead of one per image (the N+1 the lookup benchmark found)."""
    wanted = {ImageKey(*row[:3]) for row in rows}
    found: dict[ImageKey, list[str]] = {}
    registries = sorted({k.registry for k in wanted})
    for chunk in _chunks(sorted({k.digest for k in wanted})):
        tags = tx.rows(
            f"SELECT registry, repository, digest, tag FROM tags WHERE registry IN ({_marks(registries)})"
            f" AND digest IN ({_marks(chunk)}) AND is_current = 1 ORDER BY tag",
            [*registries, *chunk],
        )
        for registry, repository, digest, tag in tags:
            key = ImageKey(registry, repository, digest)
            if key in wanted:
                found.setdefault(key, []).append(tag)
    return {key: tuple(names) for key, names in found.items()}


def _live_repositories(tx: Tx, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    """The repositories in which each (registry, digest) is live, sorted."""
    wanted = set(pairs)
    found: dict[tuple[str, str], list[str]] = {}
    registries = sorted({r for r, _ in wanted})
    for chunk in _chunks(sorted({d for _, d in wanted})):
        rows = tx.rows(
            f"SELECT registry, digest, repository FROM images WHERE registry IN ({_marks(registries)})"
            f" AND digest IN ({_marks(chunk)}) AND deleted = 0",
            [*registries, *chunk],
        )
        for registry, digest, repository in rows:
            if (registry, digest) in wanted:
                found.setdefault((registry, digest), []).append(repository)
    for repositories in found.values():
        repositories.sort()
    return found


def _row_images(tx: Tx, registry: str, after: list[str], limit: int) -> tuple[list[tuple[Row, int]], int]:
    """The assessed live images of a registry from the cursor's image on, each with the number of
    sub-assessment rows it gives after the cursor, until more than `limit` rows are covered (the extra row
    says a next page exists). Counting needs no document decoded; images giving no row are left out."""
    repository, digest, _ = after
    picked: list[tuple[Row, int]] = []
    total, inclusive = 0, True
    while total <= limit:
        batch = tx.rows(
            _ROW_IMAGES.format(op=">=" if inclusive else ">"),
            (*after, after[0], after[1], registry, repository, digest, limit + 1),
        )
        for row in batch:
            count = int(row[-1])
            if count:
                picked.append((row[:-1], count))
                total += count
                if total > limit:
                    break
        if len(batch) <= limit:  # the registry has no images after this batch
            break
        repository, digest, inclusive = batch[-1][1], batch[-1][2], False
    return picked, total


def _active_findings(tx: Tx, registry: str, digests: Sequence[str]) -> dict[str, list[tuple[str, Row]]]:
    """Active findings of these digests by digest, in finding-key order, still encoded: only those on the
    page get decoded."""
    found: dict[str, list[tuple[str, Row]]] = {}
    for chunk in _chunks(sorted(set(digests))):
        rows = tx.rows(
            f"SELECT digest, {_FINDING_COLUMNS} FROM findings WHERE registry = ? AND digest IN ({_marks(chunk)})"
            " AND resolved_at IS NULL AND disabled = 0",
            [registry, *chunk],
        )
        for row in rows:
            found.setdefault(row[0], []).append((row[1], row[1:]))
    for entries in found.values():
        entries.sort(key=lambda entry: entry[0])  # hex keys: the same order in Python and every collation
    return found


def _scan(row: Row) -> ScanRecord:
    scan_id, registry, repository, digest, trigger, status, started, finished, error, timings, sv, dbv, dets = row
    return ScanRecord(
        scan_id=scan_id,
        registry=registry,
        repository=repository,
        digest=digest,
        trigger=trigger,
        status=status,
        started_at=req_time(started),
        finished_at=from_text(finished),
        error=error,
        timings=loads(timings),
        scanner_version=sv,
        db_version=dbv,
        detector_versions=tuple(loads(dets)),
    )
