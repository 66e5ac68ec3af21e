"""Read side of the SQL store: listings, image detail and finding queries for the HTTP API."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from scanner.codec import finding_from_dict
from scanner.models import SEVERITY_ORDER, Health, Severity
from scanner.store.records import ImageDetail, ImageKey, ImageSummary, Page, ScanRecord, StoredFinding, TagRecord
from scanner.store.sql import Row, Tx, decode_cursor, encode_cursor, from_text, loads, req_time, to_text

MAX_PAGE = 1000
_IMAGE_COLUMNS = (
    "i.registry, i.repository, i.digest, i.media_type, i.first_push, i.last_push, i.last_pull, i.deleted,"
    " a.health, a.reason, a.summary, a.assessed_at"
)
_IMAGE_FROM = "images i LEFT JOIN assessments a ON a.registry = i.registry AND a.digest = i.digest"
_FINDING_COLUMNS = "finding_key, finding, first_seen, last_seen, resolved_at, reopened"
_SCAN_COLUMNS = (
    "scan_id, registry, repository, digest, scan_trigger, status, started_at, finished_at, error, timings,"
    " scanner_version, db_version, detector_versions"
)


class SqlLookups(ABC):
    @abstractmethod
    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]:
        """A transaction (`write=False`: read-only); library errors leave it as StoreError."""

    def recently_pulled(self, since: datetime) -> list[ImageKey]:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                "SELECT registry, repository, digest FROM images WHERE last_pull >= ? AND deleted = 0"
                " ORDER BY registry, repository, digest",
                (to_text(since),),
            )
        return [ImageKey(*row) for row in rows]

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
        if cursor is not None:
            # Keyset paging: stable under concurrent inserts, no OFFSET scans.
            where.append("(i.registry, i.repository, i.digest) > (?, ?, ?)")
            params.extend(decode_cursor(cursor, 3))
        sql = (
            f"SELECT {_IMAGE_COLUMNS} FROM {_IMAGE_FROM} WHERE {' AND '.join(where)}"
            f" ORDER BY i.registry, i.repository, i.digest LIMIT {limit + 1}"
        )
        with self._tx(write=False) as tx:
            rows = tx.rows(sql, params)
            items = tuple(self._summary(tx, row) for row in rows[:limit])
        last = items[-1].key if items and len(rows) > limit else None
        return Page(items, encode_cursor((last.registry, last.repository, last.digest)) if last else None)

    def _summary(self, tx: Tx, row: Row) -> ImageSummary:
        registry, repository, digest, media_type, first, last, pull, deleted, health, reason, summary, at = row
        tags = tx.rows(
            "SELECT tag FROM tags WHERE registry = ? AND repository = ? AND digest = ? AND is_current = 1 ORDER BY tag",
            (registry, repository, digest),
        )
        return ImageSummary(
            key=ImageKey(registry, repository, digest),
            media_type=media_type,
            first_push=from_text(first),
            last_push=from_text(last),
            last_pull=from_text(pull),
            deleted=bool(deleted),
            tags=tuple(t[0] for t in tags),
            health=health,
            reason=reason or "",
            summary=loads(summary) if summary else {},
            assessed_at=from_text(at),
        )

    def get_image(self, registry: str, digest: str) -> ImageDetail | None:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT {_IMAGE_COLUMNS} FROM {_IMAGE_FROM} WHERE i.registry = ? AND i.digest = ?"
                " ORDER BY i.repository",
                (registry, digest),
            )
            if not rows:
                return None
            repositories = tuple(self._summary(tx, row) for row in rows)
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
        )

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

    def _findings(
        self, tx: Tx, registry: str, digest: str, extra: str, params: list[Any], include_disabled: bool
    ) -> list[StoredFinding]:
        if not include_disabled:
            extra += " AND disabled = 0"
        rows = tx.rows(
            f"SELECT {_FINDING_COLUMNS} FROM findings WHERE registry = ? AND digest = ? AND resolved_at IS NULL{extra}",
            [registry, digest, *params],
        )
        found = [
            StoredFinding(key, finding_from_dict(loads(doc)), req_time(first), req_time(last), from_text(resolved), n)
            for key, doc, first, last, resolved, n in rows
        ]
        found.sort(
            key=lambda s: (SEVERITY_ORDER.index(s.finding.severity), s.finding.package.name, s.finding.id, s.key)
        )
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
