"""HTTP blueprint: health, the Azure-shaped sub-assessments API and the findings lookups.

Handlers decode parameters, check the caller (`auth.authorize`) and call the store; shapes live in
`scanner.report.subassessments` and `scanner.report.scan_json`. Errors are one-line JSON naming the culprit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import azure.functions as func
import orjson

from scanner import __version__
from scanner.azure.auth import authorize
from scanner.azure.openapi import document
from scanner.model.types import SEVERITY_ORDER, Health, Severity
from scanner.report.scan_json import finding_dict
from scanner.report.subassessments import SHAPES, Scope, Shape, assessment_row, registry_host, row_name, shape_for_key
from scanner.service.config import clients
from scanner.store import FindingsStore, StoreError
from scanner.store.records import ImageDetail, ImageSummary, StoredFinding

bp = func.Blueprint()  # type: ignore[no-untyped-call]

STORE_SETTING = "ACRGUARD_STORE"
SUB_ROUTE = (
    "subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{registry}"
    "/providers/Microsoft.Security/assessments/{key}/subAssessments"
)
HEALTHS: tuple[Health, ...] = ("Healthy", "Unhealthy", "Unsupported", "NotApplicable")
FIX_STATUSES = ("fixed", "not_fixed", "wont_fix")
MAX_PAGE = 1000
T = TypeVar("T")


class BadRequest(Exception):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def _store() -> FindingsStore:
    # The process's store, opened on first use: a cold start that only serves /health never touches it.
    return clients.store()


def _json(body: Any, status: int = 200) -> func.HttpResponse:
    # orjson: a page of sub-assessments is ~100 kB of JSON, encoded several times faster than by json.
    return func.HttpResponse(orjson.dumps(body), status_code=status, mimetype="application/json")


def _error(status: int, code: str, message: str) -> func.HttpResponse:
    return _json({"error": {"code": code, "message": message}}, status)


def _guarded(handler: Callable[[func.HttpRequest], func.HttpResponse]) -> Callable[[func.HttpRequest], Any]:
    """Authorization first, then the handler; bad parameters → 400, store trouble → 503."""

    def run(req: func.HttpRequest) -> func.HttpResponse:
        denied = authorize(req)
        if denied is not None:
            return denied
        try:
            return handler(req)
        except BadRequest as bad:
            return _error(400, "BadRequest", str(bad))
        except StoreError as trouble:
            return _error(503, "StoreUnavailable", str(trouble).splitlines()[0] if str(trouble) else "store error")

    # The host's function name comes from __name__ and must start with a letter.
    run.__name__ = handler.__name__.lstrip("_")
    run.__doc__ = handler.__doc__
    return run


# --- parameters ------------------------------------------------------------------------------------------
def _choice(req: func.HttpRequest, name: str, allowed: tuple[T, ...]) -> T | None:
    value = req.params.get(name)
    if value is None or value == "":
        return None
    for option in allowed:
        if str(option).lower() == value.lower():
            return option
    raise BadRequest(name, f"expected one of {', '.join(map(str, allowed))}")


def _flag(req: func.HttpRequest, name: str) -> bool | None:
    value = _choice(req, name, ("true", "false"))
    return None if value is None else value == "true"


def _int(req: func.HttpRequest, name: str, default: int) -> int:
    value = req.params.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise BadRequest(name, f"expected an integer from 1 to {MAX_PAGE}")
    return int(value)


def _next_link(req: func.HttpRequest, name: str, token: str | None) -> str | None:
    if token is None:
        return None
    parts = urlsplit(req.url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    if not query:  # HttpRequest keeps params apart from the URL in tests and some hosts
        query = [(k, v) for k, v in req.params.items() if k != name]
    return str(urlunsplit(parts._replace(query=urlencode([*query, (name, token)], safe="$"))))


def _paged(parameter: str, read: Callable[[str | None], T], cursor: str | None) -> T:
    """Run a store read with a client's page cursor; a cursor the store did not issue is the client's error
    (400 naming `parameter`), other store errors stay 503."""
    try:
        return read(cursor)
    except StoreError as bad:
        if cursor is not None and "cursor" in str(bad):
            raise BadRequest(parameter, "not a value this API issued") from bad
        raise


# --- sub-assessments -------------------------------------------------------------------------------------
def _scope_and_shape(req: func.HttpRequest) -> tuple[Scope, Shape] | func.HttpResponse:
    route = req.route_params
    key = route.get("key", "")
    default = shape_for_key(key)
    if default is None:
        return _error(404, "NotFound", f"unknown assessment {key!r}")
    shape = _choice(req, "shape", SHAPES) or default
    return Scope(route.get("sub", ""), route.get("rg", ""), route.get("registry", ""), key.lower()), shape


def _store_registry(store: FindingsStore, registry: str) -> str:
    """The store names registries by login server; an ACR's resource name is tried as given first."""
    if store.list_images(registry=registry, limit=1).items:
        return registry
    return registry_host(registry)


def _list_sub_assessments(req: func.HttpRequest) -> func.HttpResponse:
    """Azure's List: `nextLink` with an opaque `$skipToken` (the last row's key: rows added between pages
    neither repeat nor shift the following ones); `api-version` is accepted and ignored."""
    resolved = _scope_and_shape(req)
    if isinstance(resolved, func.HttpResponse):
        return resolved
    scope, shape = resolved
    top = _int(req, "$top", 100)
    store = _store()
    registry = _store_registry(store, scope.registry)
    page = _paged(
        "$skipToken",
        lambda cursor: store.list_assessment_rows(registry, limit=top, cursor=cursor),
        req.params.get("$skipToken") or None,
    )
    body: dict[str, Any] = {"value": [assessment_row(scope, row, shape) for row in page.items]}
    link = _next_link(req, "$skipToken", page.cursor)
    if link:
        body["nextLink"] = link
    return _json(body)


def _get_sub_assessment(req: func.HttpRequest) -> func.HttpResponse:
    resolved = _scope_and_shape(req)
    if isinstance(resolved, func.HttpResponse):
        return resolved
    scope, shape = resolved
    name = req.route_params.get("name", "").lower()
    store = _store()
    registry = _store_registry(store, scope.registry)
    # Names are uuid5 digests of the row's identity and cannot be reversed: walk the rows, a page at a time.
    cursor: str | None = None
    while True:
        page = store.list_assessment_rows(registry, limit=MAX_PAGE, cursor=cursor)
        for row in page.items:
            if row_name(row) == name:
                return _json(assessment_row(scope, row, shape))
        if page.cursor is None:
            return _error(404, "NotFound", f"no sub-assessment {name!r}")
        cursor = page.cursor


# --- lookups ----------------------------------------------------------------------------------------------
def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _summary_dict(image: ImageSummary) -> dict[str, Any]:
    return {
        "registry": image.key.registry,
        "repository": image.key.repository,
        "digest": image.key.digest,
        "mediaType": image.media_type,
        "tags": list(image.tags),
        "health": image.health,
        "reason": image.reason,
        "summary": image.summary,
        "firstPush": _iso(image.first_push),
        "lastPush": _iso(image.last_push),
        "lastPull": _iso(image.last_pull),
        "assessedAt": _iso(image.assessed_at),
        "deleted": image.deleted,
    }


def _stored_dict(stored: StoredFinding) -> dict[str, Any]:
    return finding_dict(stored.finding) | {
        "key": stored.key,
        "active": stored.active,
        "firstSeen": _iso(stored.first_seen),
        "lastSeen": _iso(stored.last_seen),
        "reopened": stored.reopened,
    }


def _detail_dict(detail: ImageDetail) -> dict[str, Any]:
    scan = detail.last_scan
    return {
        "registry": detail.registry,
        "digest": detail.digest,
        "health": detail.health,
        "reason": detail.reason,
        "summary": detail.summary,
        "assessedAt": _iso(detail.assessed_at),
        "repositories": [_summary_dict(r) for r in detail.repositories],
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
        "findings": [_stored_dict(f) for f in detail.findings],
    }


def _list_images(req: func.HttpRequest) -> func.HttpResponse:
    status = _choice(req, "status", HEALTHS)
    limit = _int(req, "limit", 100)
    store = _store()
    page = _paged(
        "cursor",
        lambda cursor: store.list_images(
            registry=req.params.get("registry") or None,
            repository=req.params.get("repository") or None,
            status=status,
            limit=limit,
            cursor=cursor,
        ),
        req.params.get("cursor") or None,
    )
    body: dict[str, Any] = {"value": [_summary_dict(i) for i in page.items]}
    link = _next_link(req, "cursor", page.cursor)
    if link:
        body["nextLink"] = link
    return _json(body)


def _get_image(req: func.HttpRequest) -> func.HttpResponse:
    registry, digest = req.route_params.get("registry", ""), req.route_params.get("digest", "")
    detail = _store().get_image(registry, digest)
    if detail is None:
        return _error(404, "NotFound", f"no image {registry}/{digest}")
    return _json(_detail_dict(detail))


def _image_findings(req: func.HttpRequest) -> func.HttpResponse:
    registry, digest = req.route_params.get("registry", ""), req.route_params.get("digest", "")
    severity: Severity | None = _choice(req, "severity", SEVERITY_ORDER)
    patchable = _flag(req, "patchable")
    fix_status = _choice(req, "fix_status", FIX_STATUSES)
    include_disabled = bool(_flag(req, "include_disabled"))
    store = _store()
    if store.get_image(registry, digest) is None:
        return _error(404, "NotFound", f"no image {registry}/{digest}")
    found = store.list_findings(registry, digest, severity, patchable, fix_status, include_disabled)
    return _json({"value": [_stored_dict(f) for f in found]})


def _vulnerability_images(req: func.HttpRequest) -> func.HttpResponse:
    """A page of the images carrying a vulnerability (`limit`, `cursor` and `nextLink` as `/api/images`)."""
    vuln_id = req.route_params.get("vuln_id", "")
    limit = _int(req, "limit", 100)
    store = _store()
    page = _paged(
        "cursor",
        lambda cursor: store.images_with_vulnerability_page(vuln_id, limit=limit, cursor=cursor),
        req.params.get("cursor") or None,
    )
    body: dict[str, Any] = {
        "vulnerability": vuln_id,
        "value": [{"registry": k.registry, "repository": k.repository, "digest": k.digest} for k in page.items],
    }
    link = _next_link(req, "cursor", page.cursor)
    if link:
        body["nextLink"] = link
    return _json(body)


# --- routes -----------------------------------------------------------------------------------------------
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness: the app imported and its scanner version. Reveals nothing about findings."""
    del req
    body = json.dumps({"status": "ok", "scanner_version": __version__})
    return func.HttpResponse(body, status_code=200, mimetype="application/json")


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    """The API's description; static, so it reveals no findings."""
    del req
    return _json(document())


bp.route(route=SUB_ROUTE, methods=["GET"])(_guarded(_list_sub_assessments))
bp.route(route=SUB_ROUTE + "/{name}", methods=["GET"])(_guarded(_get_sub_assessment))
bp.route(route="images", methods=["GET"])(_guarded(_list_images))
bp.route(route="images/{registry}/{digest}", methods=["GET"])(_guarded(_get_image))
bp.route(route="images/{registry}/{digest}/findings", methods=["GET"])(_guarded(_image_findings))
bp.route(route="vulnerabilities/{vuln_id}/images", methods=["GET"])(_guarded(_vulnerability_images))
