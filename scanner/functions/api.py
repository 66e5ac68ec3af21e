"""HTTP blueprint. For now only a health probe; the sub-assessment API arrives with the function set."""

from __future__ import annotations

import json

import azure.functions as func

from scanner import __version__

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness: the app imported and its scanner version. Reveals nothing about findings."""
    del req
    body = json.dumps({"status": "ok", "scanner_version": __version__})
    return func.HttpResponse(body, status_code=200, mimetype="application/json")
