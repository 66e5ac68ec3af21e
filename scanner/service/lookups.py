"""The read API behind the HTTP lookups: images, one image, its findings, the images carrying a vulnerability,
and Azure-shaped sub-assessments, each returned as the JSON-ready document the handler encodes.

Query parameters arrive as the text the client sent and are checked here; a refusal is a `BadParameter`
naming the parameter, an unknown image or sub-assessment a `NotFound` (`scanner.azure.http` gives each its
status). A listing hands out the store's cursor in a `nextLink` URL that the caller builds (`NextLink`).
Shapes: sub-assessment resources come from `scanner.report.subassessments`, a finding's own fields and an
image's `coverage` (what the database held for each of its ecosystems) from `scanner.report.scan_json`; the
image documents are shaped here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from scanner.assess.risk import risk_order
from scanner.model.types import FIX_STATUSES, HEALTHS, SEVERITY_ORDER, Finding, Severity
from scanner.report.scan_json import coverage_list, finding_dict
from scanner.report.subassessments import (
    MDVM_KEY,
    NO_WEAKNESSES,
    QUALYS_KEY,
    SHAPES,
    Scope,
    Shape,
    assessment_row,
    registry_host,
    row_name,
    shape_for_key,
)
from scanner.service.odata_filter import FilterError, Predicate, parse_filter
from scanner.store.errors import CursorError
from scanner.store.ports import MAX_PAGE, Lookups
from scanner.store.records import (
    AssessmentRow,
    ImageDetail,
    ImageKey,
    ImageSummary,
    Page,
    ScanRecord,
    StoredFinding,
)

DEFAULT_PAGE = 100
SORTS = ("risk", "severity")  # the orders of an image's findings

Query = Mapping[str, str]
# Stored findings in, the same findings with today's KEV, EPSS and risk out (`Clients.current_signals`).
Refresh = Callable[[list[Finding]], list[Finding]]
# (query parameter, token) → the URL of the next page: the request's URL with that parameter set to the token.
NextLink = Callable[[str, str], str]
# The store, opened on first use: a request refused for its parameters never opens it.
LookupStore = Callable[[], Lookups]
T = TypeVar("T")


class BadParameter(ValueError):
    """A query parameter the lookups refuse; the message starts with its name."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class NotFound(LookupError):
    """No such image, assessment or sub-assessment."""


# --- parameters ------------------------------------------------------------------------------------------
def _choice(query: Query, name: str, allowed: tuple[T, ...]) -> T | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    for option in allowed:
        if str(option).lower() == value.lower():
            return option
    raise BadParameter(name, f"expected one of {', '.join(map(str, allowed))}")


def _flag(query: Query, name: str) -> bool | None:
    value = _choice(query, name, ("true", "false"))
    return None if value is None else value == "true"


def _int(query: Query, name: str, default: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise BadParameter(name, f"expected an integer from 1 to {MAX_PAGE}")
    return int(value)


def _paged(query: Query, parameter: str, read: Callable[[str | None], Page[T]]) -> Page[T]:
    """A store read from the client's page cursor (query `parameter`); a cursor the store did not issue is
    the client's error, naming `parameter`."""
    try:
        return read(query.get(parameter) or None)
    except CursorError as bad:
        raise BadParameter(parameter, "not a value this API issued") from bad


def _listing(items: list[dict[str, Any]], parameter: str, cursor: str | None, next_link: NextLink) -> dict[str, Any]:
    body: dict[str, Any] = {"value": items}
    if cursor is not None:
        body["nextLink"] = next_link(parameter, cursor)
    return body


# --- sub-assessments -------------------------------------------------------------------------------------
# Rows a filtered listing reads from the store for one response at most: a filter matching few rows answers a
# short (even empty) page with a `nextLink` rather than reading the whole store in one request.
FILTER_BUDGET = 5 * MAX_PAGE
# The CWE ids of findings, by finding id (`scanner.service.weaknesses`, on the configured database).
Weak = Callable[[list[Finding]], Mapping[str, Sequence[str]]]
# A registry the subscription-scope listing covers: (login server, subscription, resource group, resource name).
RegistryResource = tuple[str, str, str, str]


@dataclass(frozen=True)
class Views:
    """What a lookup shows beside the stored findings: today's signals, and the CWE ids of MDVM rows."""

    refresh: Refresh | None = None
    weaknesses: Weak | None = None


def _shape(scope: Scope, query: Query) -> Shape:
    default = shape_for_key(scope.assessment_key)
    if default is None:
        raise NotFound(f"unknown assessment {scope.assessment_key!r}")
    return _choice(query, "shape", SHAPES) or default


def _store_registry(store: Lookups, registry: str) -> str:
    """The store names registries by login server; an ACR's resource name is tried as given first."""
    if store.list_images(registry=registry, limit=1).items:
        return registry
    return registry_host(registry)


def refreshed(found: list[StoredFinding], refresh: Refresh | None) -> list[StoredFinding]:
    """Stored findings with today's exploitation signals (KEV, EPSS) and the risk they give: the store keeps each
    finding as its last assessment saw it, and EPSS moves daily; a lookup shows the current score."""
    if refresh is None or not found:
        return found
    return [replace(s, finding=f) for s, f in zip(found, refresh([s.finding for s in found]), strict=True)]


def _refreshed_rows(rows: list[AssessmentRow], refresh: Refresh | None) -> list[AssessmentRow]:
    with_finding = [r for r in rows if r.finding is not None]
    fresh = iter(refreshed([r.finding for r in with_finding if r.finding is not None], refresh))
    return [replace(r, finding=next(fresh)) if r.finding is not None else r for r in rows]


def _resources(rows: Sequence[AssessmentRow], scope: Scope, shape: Shape, views: Views) -> list[dict[str, Any]]:
    rows = _refreshed_rows(list(rows), views.refresh)
    findings = [r.finding.finding for r in rows if r.finding is not None]
    weak = views.weaknesses(findings) if views.weaknesses and shape == "mdvm" and findings else NO_WEAKNESSES
    return [assessment_row(scope, row, shape, weak) for row in rows]


def _predicate(query: Query) -> Predicate | None:
    text = query.get("$filter")
    if text is None or text == "":
        return None
    try:
        return parse_filter(text)
    except FilterError as bad:
        raise BadParameter("$filter", str(bad)) from bad


@dataclass(frozen=True)
class _Source:
    """One registry a listing walks: the store's name for it and where its resources nest."""

    registry: str
    scope: Scope


@dataclass(frozen=True)
class _Page:
    """What a listing's query asks for, checked before the store is opened."""

    top: int
    keep: Predicate | None
    token: str | None


def _page_query(query: Query) -> _Page:
    return _Page(_int(query, "$top", DEFAULT_PAGE), _predicate(query), query.get("$skipToken") or None)


def _walk(
    lookups: Lookups, sources: Sequence[_Source], asked: _Page, shape: Shape, views: Views
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `$top` resources of these registries in turn from the `$skipToken` on, those `$filter` keeps, and
    the token of the next page (None: no more). One registry's token is the store's cursor; across registries it
    also names the registry the cursor is in."""
    top, keep = asked.top, asked.keep
    index, cursor = _position(sources, asked.token)
    items: list[dict[str, Any]] = []
    read = 0
    while index < len(sources):
        source = sources[index]
        # A filtered read asks for no more rows than the page has room for: whatever matches fits, and the
        # store's cursor (after the last row read) is where the next page resumes.
        try:
            page = lookups.list_assessment_rows(source.registry, top - len(items), cursor)
        except CursorError as bad:
            raise BadParameter("$skipToken", "not a value this API issued") from bad
        read += len(page.items)
        resources = _resources(page.items, source.scope, shape, views)
        items.extend(r for r in resources if keep is None or keep(r))
        cursor = page.cursor
        if cursor is None:
            index += 1
        if len(items) >= top or (keep is not None and read >= FILTER_BUDGET):
            break
    if index >= len(sources):
        return items, None
    return items, _token(sources, index, cursor)


def _position(sources: Sequence[_Source], token: str | None) -> tuple[int, str | None]:
    if token is None:
        return 0, None
    if len(sources) == 1:
        return 0, token
    try:
        registry, cursor = json.loads(base64.urlsafe_b64decode(token.encode("ascii") + b"=="))
        index = next(i for i, s in enumerate(sources) if s.registry == registry)
    except (ValueError, TypeError, UnicodeError, StopIteration) as bad:
        raise BadParameter("$skipToken", "not a value this API issued") from bad
    if not isinstance(cursor, str):
        raise BadParameter("$skipToken", "not a value this API issued")
    return index, cursor or None


def _token(sources: Sequence[_Source], index: int, cursor: str | None) -> str | None:
    if len(sources) == 1:
        return cursor
    text = json.dumps([sources[index].registry, cursor or ""], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


def list_sub_assessments(
    store: LookupStore, scope: Scope, query: Query, next_link: NextLink, views: Views = Views()
) -> dict[str, Any]:
    """Azure's List: `nextLink` with an opaque `$skipToken` (the last row's key: rows added between pages
    neither repeat nor shift the following ones); `$filter` (`scanner.service.odata_filter`) keeps the rows it
    matches; `api-version` is accepted and ignored."""
    shape = _shape(scope, query)
    asked = _page_query(query)  # a bad parameter is refused before the store is opened
    scope = replace(scope, assessment_key=scope.assessment_key.lower())
    lookups = store()
    source = _Source(_store_registry(lookups, scope.registry), scope)
    items, token = _walk(lookups, [source], asked, shape, views)
    return _listing(items, "$skipToken", token, next_link)


def _list_all_shape(query: Query) -> tuple[Shape, str]:
    """`list_all` covers every assessment at a scope; acrguard's rows are one set, shown under the MDVM-era key
    (Defender's current one) unless `shape=qualys` asks for the Qualys era's."""
    shape: Shape = _choice(query, "shape", SHAPES) or "mdvm"
    return shape, MDVM_KEY if shape == "mdvm" else QUALYS_KEY


def list_registry_sub_assessments(
    store: LookupStore, sub: str, rg: str, registry: str, query: Query, next_link: NextLink, views: Views = Views()
) -> dict[str, Any]:
    """Azure's ListAll at a registry's scope: its rows, as List gives them under the assessment `shape` picks."""
    shape, key = _list_all_shape(query)
    asked = _page_query(query)
    lookups = store()
    source = _Source(_store_registry(lookups, registry), Scope(sub, rg, registry, key))
    items, token = _walk(lookups, [source], asked, shape, views)
    return _listing(items, "$skipToken", token, next_link)


def list_subscription_sub_assessments(
    store: LookupStore,
    sub: str,
    registries: Sequence[RegistryResource],
    query: Query,
    next_link: NextLink,
    views: Views = Views(),
) -> dict[str, Any]:
    """Azure's ListAll at a subscription's scope: the rows of the registries configured in that subscription
    (`ACRGUARD_REGISTRY_RESOURCES`: the store does not know a registry's resource group), one after the other in
    the configured order; none configured, none listed."""
    shape, key = _list_all_shape(query)
    asked = _page_query(query)
    sources = [
        _Source(host, Scope(subscription, group, name, key))
        for host, subscription, group, name in registries
        if subscription.lower() == sub.lower()
    ]
    if not sources:
        return _listing([], "$skipToken", None, next_link)
    items, token = _walk(store(), sources, asked, shape, views)
    return _listing(items, "$skipToken", token, next_link)


def get_sub_assessment(
    store: LookupStore, scope: Scope, name: str, query: Query, views: Views = Views()
) -> dict[str, Any]:
    """Azure's Get of one sub-assessment by its name."""
    shape = _shape(scope, query)
    scope = replace(scope, assessment_key=scope.assessment_key.lower())
    name = name.lower()
    lookups = store()
    registry = _store_registry(lookups, scope.registry)
    # Names are uuid5 digests of the row's identity and cannot be reversed: walk the rows, a page at a time.
    cursor: str | None = None
    while True:
        page = lookups.list_assessment_rows(registry, limit=MAX_PAGE, cursor=cursor)
        for row in page.items:
            if row_name(row) == name:
                return _resources([row], scope, shape, views)[0]
        if page.cursor is None:
            raise NotFound(f"no sub-assessment {name!r}")
        cursor = page.cursor


# --- scans -------------------------------------------------------------------------------------------------
def get_scan(store: LookupStore, scan_id: str) -> dict[str, Any]:
    """One scan by its id (the `lastScan.scanId` of an image document)."""
    scan = store().get_scan(scan_id)
    if scan is None:
        raise NotFound(f"no scan {scan_id[:100]!r}")
    return scan_document(scan)


# --- images and findings ---------------------------------------------------------------------------------
def list_images(store: LookupStore, query: Query, next_link: NextLink) -> dict[str, Any]:
    """Images (not deleted) by `registry`, `repository` and health `status`, a page (`limit`) at a time."""
    status = _choice(query, "status", HEALTHS)
    limit = _int(query, "limit", DEFAULT_PAGE)
    lookups = store()
    page = _paged(
        query,
        "cursor",
        lambda cursor: lookups.list_images(
            registry=query.get("registry") or None,
            repository=query.get("repository") or None,
            status=status,
            limit=limit,
            cursor=cursor,
        ),
    )
    return _listing([summary_document(i) for i in page.items], "cursor", page.cursor, next_link)


def get_image(store: LookupStore, registry: str, digest: str, refresh: Refresh | None = None) -> dict[str, Any]:
    detail = store().get_image(registry, digest)
    if detail is None:
        raise NotFound(f"no image {registry}/{digest}")
    return detail_document(replace(detail, findings=tuple(refreshed(list(detail.findings), refresh))))


def image_findings(
    store: LookupStore, registry: str, digest: str, query: Query, refresh: Refresh | None = None
) -> dict[str, Any]:
    """An image's unresolved findings, by `severity`, `patchable`, `fix_status`; `include_disabled` adds the
    ones rules disabled. `sort=risk` (the default): highest risk first, then most severe, id and package;
    `sort=severity`: the store's order, most severe first, then package and id. The list is not paged, so it
    is sorted here, whole."""
    severity: Severity | None = _choice(query, "severity", SEVERITY_ORDER)
    patchable = _flag(query, "patchable")
    fix_status = _choice(query, "fix_status", FIX_STATUSES)
    include_disabled = bool(_flag(query, "include_disabled"))
    order = _choice(query, "sort", SORTS) or "risk"
    lookups = store()
    if lookups.get_image(registry, digest) is None:
        raise NotFound(f"no image {registry}/{digest}")
    found = refreshed(
        lookups.list_findings(registry, digest, severity, patchable, fix_status, include_disabled), refresh
    )
    if order == "risk":
        found = by_risk(found)
    return {"value": [stored_finding_document(f) for f in found]}


def by_risk(found: list[StoredFinding]) -> list[StoredFinding]:
    """Stored findings in risk order (the store's key breaks what is left of a tie). A finding stored before
    risk scores has 0 until the image is assessed again."""
    return sorted(found, key=lambda s: (risk_order(s.finding), s.key))


def vulnerability_images(store: LookupStore, vuln_id: str, query: Query, next_link: NextLink) -> dict[str, Any]:
    """A page of the images carrying a vulnerability (`limit`, `cursor` and `nextLink` as `list_images`)."""
    limit = _int(query, "limit", DEFAULT_PAGE)
    lookups = store()
    page = _paged(query, "cursor", lambda cursor: lookups.images_with_vulnerability_page(vuln_id, limit, cursor))
    # The id asked for comes first, beside the page.
    return {"vulnerability": vuln_id} | _listing(
        [key_document(k) for k in page.items], "cursor", page.cursor, next_link
    )


# --- documents -------------------------------------------------------------------------------------------
def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def key_document(key: ImageKey) -> dict[str, Any]:
    return {"registry": key.registry, "repository": key.repository, "digest": key.digest}


def summary_document(image: ImageSummary) -> dict[str, Any]:
    return {
        "registry": image.key.registry,
        "repository": image.key.repository,
        "digest": image.key.digest,
        "mediaType": image.media_type,
        "tags": list(image.tags),
        "health": image.health,
        "reason": image.reason,
        "summary": image.summary,
        "coverage": coverage_list(image.coverage),
        "firstPush": _iso(image.first_push),
        "lastPush": _iso(image.last_push),
        "lastPull": _iso(image.last_pull),
        "assessedAt": _iso(image.assessed_at),
        "deleted": image.deleted,
    }


def stored_finding_document(stored: StoredFinding) -> dict[str, Any]:
    """A finding's own fields (as `acrguard scan --format json` writes them) and its history in the store."""
    return finding_dict(stored.finding) | {
        "key": stored.key,
        "active": stored.active,
        "firstSeen": _iso(stored.first_seen),
        "lastSeen": _iso(stored.last_seen),
        "reopened": stored.reopened,
    }


def detail_document(detail: ImageDetail) -> dict[str, Any]:
    scan = detail.last_scan
    return {
        "registry": detail.registry,
        "digest": detail.digest,
        "health": detail.health,
        "reason": detail.reason,
        "summary": detail.summary,
        "coverage": coverage_list(detail.coverage),
        "assessedAt": _iso(detail.assessed_at),
        "repositories": [summary_document(r) for r in detail.repositories],
        "tags": sorted({f"{r.key.repository}:{t}" for r in detail.repositories for t in r.tags}),
        "tagHistory": [
            {
                "repository": t.repository,
                "tag": t.tag,
                "current": t.current,
                "firstSeen": _iso(t.first_seen),
                "lastSeen": _iso(t.last_seen),
            }
            for t in detail.tag_history
        ],
        "lastScan": None
        if scan is None
        else {
            "scanId": scan.scan_id,
            "status": scan.status,
            "trigger": scan.trigger,
            "startedAt": _iso(scan.started_at),
            "finishedAt": _iso(scan.finished_at),
            "scannerVersion": scan.scanner_version,
            "dbVersion": scan.db_version,
        },
        "findings": [stored_finding_document(f) for f in by_risk(list(detail.findings))],
    }


def scan_document(scan: ScanRecord) -> dict[str, Any]:
    """A scan as `GET /api/scans/{id}` answers: what an image's `lastScan` shows, and the rest of the record."""
    return {
        "scanId": scan.scan_id,
        "registry": scan.registry,
        "repository": scan.repository,
        "digest": scan.digest,
        "status": scan.status,
        "trigger": scan.trigger,
        "startedAt": _iso(scan.started_at),
        "finishedAt": _iso(scan.finished_at),
        "error": scan.error,
        "timings": scan.timings,
        "scannerVersion": scan.scanner_version,
        "dbVersion": scan.db_version,
        "detectorVersions": list(scan.detector_versions),
    }
