"""What every HTTP blueprint answers with: JSON responses, the one error body
(`{"error": {"code", "message"}}`, the message one line), and which exception answers with which status.

Handlers decode the request, call the service and return `json_response(document)`; `guarded` checks the
caller first, then every query and route value (no NUL, no lone surrogate: `scanner.model.client_input`), and
turns what the service raises into its error response:

    ManageError         its own status and code (the management operations' refusals)
    ClientInputError    400 BadRequest, or 413 PayloadTooLarge (a JSON body out of bounds)
    BadParameter        400 BadRequest
    NotFound            404 NotFound
    StoreError          503 StoreUnavailable
    QueueError          503 Unavailable
    other AcrguardError 500 Misconfigured (a malformed rule file, say)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import azure.functions as func
import orjson

from scanner.azure.auth import authorize
from scanner.model.client_input import ClientInputError, text_problem
from scanner.model.errors import AcrguardError
from scanner.model.settings import Settings
from scanner.queue import QueueError
from scanner.service.access import Denial
from scanner.service.config import clients
from scanner.service.lookups import BadParameter, NextLink, NotFound
from scanner.service.manage import ManageError
from scanner.store import StoreError

Handler = Callable[[func.HttpRequest], func.HttpResponse]
# How a body is written. Each blueprint keeps the encoding it has always answered with, byte for byte.
Encoder = Callable[[Any], str | bytes]

# (error, status, code) in the order they are tried: subclasses before their bases.
_STATUSES: tuple[tuple[type[Exception], int, str], ...] = (
    (BadParameter, 400, "BadRequest"),
    (NotFound, 404, "NotFound"),
    (StoreError, 503, "StoreUnavailable"),
    (QueueError, 503, "Unavailable"),
    (AcrguardError, 500, "Misconfigured"),
)
# What `guarded` answers; anything else is a bug and reaches the host, which answers 500.
_ANSWERED: tuple[type[Exception], ...] = (ManageError, ClientInputError, *(kind for kind, _, _ in _STATUSES))


def standard(body: Any) -> str:
    """The standard library's JSON: the management API, health and event notifications."""
    return json.dumps(body)


def compact(body: Any) -> bytes:
    """orjson, for the lookups: a page of sub-assessments is ~100 kB of JSON, encoded several times faster."""
    return orjson.dumps(body)


def json_response(
    body: Any, status: int = 200, encode: Encoder = standard, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(encode(body), status_code=status, mimetype="application/json", headers=headers)


def error_response(
    status: int, code: str, message: str, encode: Encoder = standard, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return json_response({"error": {"code": code, "message": message}}, status, encode, headers)


def denied_response(denial: Denial) -> func.HttpResponse:
    """The refusal `authorize` decided; a 401 with the challenge a client needs to know which credential to
    send."""
    challenge = {"WWW-Authenticate": 'Bearer realm="acrguard"'} if denial.status == 401 else None
    return error_response(denial.status, denial.code, denial.message, headers=challenge)


def error_for(err: Exception, encode: Encoder = standard) -> func.HttpResponse:
    """The response for an error the service raised (see the table above)."""
    if isinstance(err, ManageError | ClientInputError):
        return error_response(err.status, err.code, str(err), encode)
    status, code = next((s, c) for kind, s, c in _STATUSES if isinstance(err, kind))
    return error_response(status, code, str(err) or type(err).__name__, encode)


def guarded(handler: Handler, *, write: bool = False, encode: Encoder = standard) -> Callable[[func.HttpRequest], Any]:
    """Authorization first (`write`: never anonymous), then the handler; what it raises as `error_for` says."""

    def run(req: func.HttpRequest) -> func.HttpResponse:
        denied = authorize(req, write=write)
        if denied is not None:
            return denied_response(denied)
        try:
            check_parameters(req)
            return handler(req)
        except _ANSWERED as err:
            return error_for(err, encode)

    # The host's function name comes from __name__ and must start with a letter.
    run.__name__ = handler.__name__.lstrip("_")
    run.__doc__ = handler.__doc__
    return run


def check_parameters(req: func.HttpRequest) -> None:
    """Raises ClientInputError naming the first query or route parameter a store could not take as text."""
    for kind, values in (("query", req.params), ("route", req.route_params)):
        for name, value in values.items():
            problem = text_problem(name) or text_problem(value)
            if problem is not None:
                raise ClientInputError(f"{kind} parameter {ascii(name)[1:-1][:40]}: {problem}")


def public_base(settings: Settings) -> str:
    """Where clients reach this API, for the links it hands out: `ACRGUARD_PUBLIC_URL`, else in Azure the
    app's default host name (`WEBSITE_HOSTNAME`, https; `http` for the Core Tools' localhost), else "" (links
    relative to the host the client already reached). Never the request's Host header, which the client
    writes: a link built from it would point the next page wherever the caller (or a forged request) said."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.website_hostname
    if host:
        local = host.split(":")[0] in ("localhost", "127.0.0.1")
        return f"{'http' if local else 'https'}://{host}"
    return ""


def next_link(req: func.HttpRequest) -> NextLink:
    """The request's path and query under the public base URL, with one query parameter set to the next
    page's token."""
    base = public_base(clients.settings())

    def link(name: str, token: str) -> str:
        parts = urlsplit(req.url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
        if not query:  # HttpRequest keeps params apart from the URL in tests and some hosts
            query = [(k, v) for k, v in req.params.items() if k != name]
        return f"{base}{urlunsplit(('', '', parts.path, urlencode([*query, (name, token)], safe='$'), ''))}"

    return link
