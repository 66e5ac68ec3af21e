"""HTTP blueprint: health, the Azure-shaped sub-assessments API and the findings lookups.

Each lookup decodes the route and query and calls `scanner.service.lookups`, which checks the parameters,
reads the store and returns the document; `_lookup` encodes it, and `scanner.azure.http` checks the caller
first and answers errors, each as one line of JSON naming the culprit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import azure.functions as func

from scanner import __version__
from scanner.azure.http import compact, guarded, json_response, next_link
from scanner.azure.openapi import document
from scanner.report.subassessments import LIST_ALL_REGISTRY_ROUTE, LIST_ALL_SUBSCRIPTION_ROUTE, ROUTE, Scope
from scanner.service import lookups
from scanner.service.config import clients
from scanner.service.weaknesses import cwe_reader

bp = func.Blueprint()  # type: ignore[no-untyped-call]

Document = dict[str, Any]


def _lookup(read: Callable[[func.HttpRequest], Document]) -> Callable[[func.HttpRequest], Any]:
    """A lookup's handler: the caller checked, the document encoded, errors answered (`scanner.azure.http`)."""

    def respond(req: func.HttpRequest) -> func.HttpResponse:
        return json_response(read(req), encode=compact)

    respond.__name__, respond.__doc__ = read.__name__, read.__doc__
    return guarded(respond, encode=compact)


def _sub_scope(req: func.HttpRequest) -> Scope:
    route = req.route_params
    return Scope(route.get("sub", ""), route.get("rg", ""), route.get("registry", ""), route.get("key", ""))


def _image(req: func.HttpRequest) -> tuple[str, str]:
    return req.route_params.get("registry", ""), req.route_params.get("digest", "")


# --- sub-assessments -------------------------------------------------------------------------------------
def _views() -> lookups.Views:
    """Today's KEV and EPSS, and the CWE ids the advisories give, from the configured database."""
    return lookups.Views(clients.current_signals, cwe_reader(clients.db))


def _list_sub_assessments(req: func.HttpRequest) -> Document:
    """Azure's List: `nextLink` with an opaque `$skipToken`, `$filter`; `api-version` is accepted and ignored."""
    return lookups.list_sub_assessments(clients.store, _sub_scope(req), req.params, next_link(req), _views())


def _list_registry_sub_assessments(req: func.HttpRequest) -> Document:
    """Azure's ListAll at a registry's scope."""
    route = req.route_params
    return lookups.list_registry_sub_assessments(
        clients.store,
        route.get("sub", ""),
        route.get("rg", ""),
        route.get("registry", ""),
        req.params,
        next_link(req),
        _views(),
    )


def _list_subscription_sub_assessments(req: func.HttpRequest) -> Document:
    """Azure's ListAll at a subscription's scope: the registries of ACRGUARD_REGISTRY_RESOURCES in it."""
    registries = clients.settings().registry_resources
    return lookups.list_subscription_sub_assessments(
        clients.store, req.route_params.get("sub", ""), registries, req.params, next_link(req), _views()
    )


def _get_sub_assessment(req: func.HttpRequest) -> Document:
    name = req.route_params.get("name", "")
    return lookups.get_sub_assessment(clients.store, _sub_scope(req), name, req.params, _views())


def _get_scan(req: func.HttpRequest) -> Document:
    """One scan by id: the `lastScan.scanId` an image document shows."""
    return lookups.get_scan(clients.store, req.route_params.get("scan_id", ""))


# --- images and findings ----------------------------------------------------------------------------------
def _list_images(req: func.HttpRequest) -> Document:
    return lookups.list_images(clients.store, req.params, next_link(req))


def _get_image(req: func.HttpRequest) -> Document:
    return lookups.get_image(clients.store, *_image(req), refresh=clients.current_signals)


def _image_findings(req: func.HttpRequest) -> Document:
    return lookups.image_findings(clients.store, *_image(req), req.params, clients.current_signals)


def _vulnerability_images(req: func.HttpRequest) -> Document:
    """A page of the images carrying a vulnerability (`limit`, `cursor` and `nextLink` as `/api/images`)."""
    vuln_id = req.route_params.get("vuln_id", "")
    return lookups.vulnerability_images(clients.store, vuln_id, req.params, next_link(req))


# --- routes -----------------------------------------------------------------------------------------------
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness: the app imported and its scanner version. Reveals nothing about findings."""
    del req
    return json_response({"status": "ok", "scanner_version": __version__})


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    """The API's description; static, so it reveals no findings."""
    del req
    return json_response(document(), encode=compact)


bp.route(route=ROUTE, methods=["GET"])(_lookup(_list_sub_assessments))
bp.route(route=ROUTE + "/{name}", methods=["GET"])(_lookup(_get_sub_assessment))
bp.route(route=LIST_ALL_REGISTRY_ROUTE, methods=["GET"])(_lookup(_list_registry_sub_assessments))
bp.route(route=LIST_ALL_SUBSCRIPTION_ROUTE, methods=["GET"])(_lookup(_list_subscription_sub_assessments))
bp.route(route="scans/{scan_id}", methods=["GET"])(_lookup(_get_scan))
bp.route(route="images", methods=["GET"])(_lookup(_list_images))
bp.route(route="images/{registry}/{digest}", methods=["GET"])(_lookup(_get_image))
bp.route(route="images/{registry}/{digest}/findings", methods=["GET"])(_lookup(_image_findings))
bp.route(route="vulnerabilities/{vuln_id}/images", methods=["GET"])(_lookup(_vulnerability_images))
