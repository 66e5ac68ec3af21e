"""HTTP blueprint: the dashboard, server-rendered HTML pages under `/api/dashboard`.

The routes are anonymous to the Functions host (a browser sends no function key) and check the caller
themselves (`scanner.service.dashboard_session`): a signed session cookie set by the login form (the API
key) or by sign-in with Microsoft (`scanner.service.entra_signin`, when Entra ID is configured), or the
API's credential headers; without either a page answers with a redirect to the login form. Failed sign-ins
are limited per client address and overall (`scanner.service.login_limits`): 429 with Retry-After. Pages read
through `scanner.service.dashboard` and render with `scanner.service.dashboard_pages`; forms that change
something (rules, dead letters, sign-out) are POSTs carrying the session's CSRF token, and only writers see
them. Every answer carries a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import azure.functions as func

from scanner import __version__
from scanner.azure.http import check_parameters, error_response, public_base
from scanner.model.client_input import ClientInputError, text_problem
from scanner.model.errors import AcrguardError
from scanner.model.settings import Settings, SettingsError
from scanner.queue import QueueError
from scanner.report.cyclonedx_sbom import to_cyclonedx
from scanner.report.sarif import to_sarif
from scanner.service import (
    dashboard,
    dashboard_gates,
    dashboard_operations,
    dashboard_pages,
    dashboard_session,
    entra,
    entra_signin,
    login_limits,
    rule_admin,
)
from scanner.service.config import clients
from scanner.service.dashboard_session import Viewer
from scanner.service.lookups import BadParameter, NotFound
from scanner.service.manage import ManageError
from scanner.store import StoreError

bp = func.Blueprint()  # type: ignore[no-untyped-call]

BASE = dashboard_pages.BASE_PATH
MAX_FORM = 64 << 10  # bytes of a form body
MAX_FIELDS = 32
# No script, no frames, nothing from elsewhere: the pages are HTML and one stylesheet.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Page = Callable[[func.HttpRequest, Viewer], func.HttpResponse]


# --- responses -------------------------------------------------------------------------------------------
def _html(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        body, status_code=status, mimetype="text/html", charset="utf-8", headers={**_HEADERS, **(headers or {})}
    )


def _redirect(location: str, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(status_code=303, headers={**_HEADERS, "Location": location, **(headers or {})})


def render(name: str, context: Mapping[str, Any], viewer: Viewer | None, status: int = 200) -> func.HttpResponse:
    settings = clients.settings()
    common = {"viewer": viewer, "version": __version__, "now": datetime.now(UTC), "notice": "", "page": ""}
    return _html(dashboard_pages.render(settings.dashboard_templates, name, common | dict(context)), status)


def _error_page(viewer: Viewer | None, status: int, heading: str, message: str) -> func.HttpResponse:
    return render("error.html.j2", {"heading": heading, "message": message}, viewer, status)


def _answered(err: Exception, viewer: Viewer | None) -> func.HttpResponse:
    """The page for what a service call raised: the API's statuses, as HTML."""
    if isinstance(err, ManageError):
        return _error_page(viewer, err.status, err.code, str(err))
    table: tuple[tuple[type[Exception], int, str], ...] = (
        (ClientInputError, 400, "Bad request"),
        (BadParameter, 400, "Bad request"),
        (NotFound, 404, "Not found"),
        (StoreError, 503, "Store unavailable"),
        (QueueError, 503, "Queue unavailable"),
        (AcrguardError, 500, "Misconfigured"),
    )
    status, heading = next((s, h) for kind, s, h in table if isinstance(err, kind))
    return _error_page(viewer, status, heading, str(err) or type(err).__name__)


_ANSWERED = (ManageError, ClientInputError, BadParameter, NotFound, StoreError, QueueError, AcrguardError)


# --- who is asking ---------------------------------------------------------------------------------------
def _now() -> int:
    return int(time.time())


def _secure(req: func.HttpRequest) -> bool:
    return bool(urlsplit(req.url).scheme == "https")


def _login_location(req: func.HttpRequest) -> str:
    parts = urlsplit(req.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{BASE}/login?next={quote(target, safe='')}"


def _safe_next(value: str) -> str:
    """Where to go after signing in: a dashboard path only, never another site."""
    if value.startswith(BASE) and "//" not in value and "\\" not in value and not urlsplit(value).netloc:
        return value
    return BASE


def page(handler: Page, *, write: bool = False) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """The caller first (a redirect to sign in when unknown; 403 for a change without the right), then the
    handler; what it raises as the API would answer it, as a page."""

    def run(req: func.HttpRequest) -> func.HttpResponse:
        viewer = dashboard_session.viewer(clients.settings(), dict(req.headers), _now())
        if viewer is None:
            if req.method == "GET":
                return _redirect(_login_location(req))
            return _error_page(None, 401, "Sign in first", "This change needs a signed-in session.")
        try:
            check_parameters(req)
            if write:
                form = _form(req)
                if not viewer.can_write:
                    return _error_page(
                        viewer,
                        403,
                        "Not allowed",
                        "Only writers (the API key, or the Findings.Write app role) change this.",
                    )
                if not dashboard_session.csrf_ok(viewer, form.get("csrf", "")):
                    return _error_page(viewer, 403, "Form expired", "The form's token is stale: reload the page.")
            return handler(req, viewer)
        except _ANSWERED as err:
            return _answered(err, viewer)

    run.__name__ = "dashboard_" + handler.__name__.lstrip("_")
    run.__doc__ = handler.__doc__
    return run


def _form(req: func.HttpRequest) -> dict[str, str]:
    """A urlencoded form body, bounded, each value checked as text."""
    body = req.get_body() or b""
    if len(body) > MAX_FORM:
        raise ClientInputError(f"form body larger than {MAX_FORM} bytes", status=413)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ClientInputError("form body: not a UTF-8 urlencoded form of at most 32 fields") from None
    form = dict(pairs)
    for name, value in form.items():
        problem = text_problem(name) or text_problem(value)
        if problem is not None:
            raise ClientInputError(f"form field {ascii(name)[1:-1][:40]}: {problem}")
    return form


# --- sign-in ---------------------------------------------------------------------------------------------
def _signin_config(settings: Settings) -> entra_signin.SignInConfig | None:
    """Sign-in with Microsoft's configuration, None when it is off (SettingsError when unusable)."""
    return entra_signin.config_from(settings, public_base(settings))


def _signin_request(req: func.HttpRequest, settings: Settings) -> entra_signin.SignInConfig | func.HttpResponse:
    """The sign-in configuration for a request to a sign-in route, or the page that refuses it."""
    try:
        check_parameters(req)
        config = _signin_config(settings)
    except ClientInputError as err:
        return _answered(err, None)
    except SettingsError as err:
        return _error_page(None, 500, "Misconfigured", str(err))
    if config is None:
        return _error_page(None, 404, "Not found", "Sign-in with Microsoft is not configured.")
    return config


def _login_context(settings: Settings) -> dict[str, Any]:
    try:
        entra, entra_error = _signin_config(settings) is not None, ""
    except SettingsError as err:
        entra, entra_error = False, str(err)
    return {
        "can_sign_in": dashboard_session.key_sign_in(settings),
        "entra": entra,
        "entra_error": entra_error,
        "hours": dashboard_session.SESSION_SECONDS // 3600,
    }


def dashboard_login(req: func.HttpRequest) -> func.HttpResponse:
    """The login form (GET) and the key it posts (POST): a session cookie and back to where the user was."""
    settings = clients.settings()
    context = _login_context(settings)
    can_sign_in = context["can_sign_in"]
    try:
        check_parameters(req)
        if req.method == "GET":
            return render(
                "login.html.j2", context | {"next": _safe_next(req.params.get("next", "")), "error": ""}, None
            )
        form = _form(req)
    except ClientInputError as err:
        return _answered(err, None)
    target = _safe_next(form.get("next", ""))
    address = login_limits.client_address(dict(req.headers))
    wait = login_limits.LIMITER.retry_after(address)
    if wait is not None:
        return _too_many(wait)
    if not can_sign_in or not dashboard_session.credential_ok(settings, form.get("key", "")):
        login_limits.LIMITER.failed(address)
        return render("login.html.j2", context | {"next": target, "error": "That key is not the API key."}, None, 401)
    login_limits.LIMITER.succeeded(address)
    cookie = dashboard_session.set_cookie(dashboard_session.issue(settings, _now()), _secure(req))
    return _redirect(target, {"Set-Cookie": cookie})


def dashboard_login_entra(req: func.HttpRequest) -> func.HttpResponse:
    """Starts a sign-in with Microsoft: the flow's state in a short-lived signed cookie, then the tenant's
    authorize endpoint."""
    settings = clients.settings()
    config = _signin_request(req, settings)
    if isinstance(config, func.HttpResponse):
        return config
    location, flow = entra_signin.start(config, _safe_next(req.params.get("next", "")), _now())
    cookie = entra_signin.flow_cookie(dashboard_session.seal(settings, "signin", flow), _secure(req))
    return _redirect(location, {"Set-Cookie": cookie})


def dashboard_login_callback(req: func.HttpRequest) -> func.HttpResponse:
    """Where Microsoft sends the browser back: the code redeemed, the ID token checked, a session whose
    right to write follows the user's app roles."""
    settings = clients.settings()
    address = login_limits.client_address(dict(req.headers))
    wait = login_limits.LIMITER.retry_after(address)
    if wait is not None:
        return _too_many(wait)
    context = _login_context(settings) | {"next": BASE}
    config = _signin_request(req, settings)
    if isinstance(config, func.HttpResponse):
        return config
    error = req.params.get("error", "")
    if error:  # the user cancelled, or the tenant refused them: nothing was guessed
        described = " ".join(req.params.get("error_description", "").split())[:200]
        message = f"Microsoft sign-in did not complete: {error[:60]}" + (f" ({described})" if described else "")
        return render("login.html.j2", context | {"error": message}, None, 401)
    cookie_header = {k.lower(): v for k, v in req.headers.items()}.get("cookie", "")
    flow_value = dashboard_session.cookie_value(cookie_header, entra_signin.FLOW_COOKIE)
    flow = dashboard_session.unseal(settings, "signin", flow_value, _now())
    try:
        signed = entra_signin.finish(config, flow, req.params.get("state", ""), req.params.get("code", ""))
    except entra_signin.SignInRefused as err:
        login_limits.LIMITER.failed(address)
        return render("login.html.j2", context | {"error": f"Sign-in refused: {err}"}, None, 401)
    except entra_signin.NoRole as err:
        return _error_page(None, 403, "Not allowed", f"Signed in, but {err}: ask an administrator to assign one.")
    except (entra_signin.SignInUnavailable, entra.KeysUnavailable) as err:
        return _error_page(None, 503, "Sign-in unavailable", f"{err}; try again later")
    login_limits.LIMITER.succeeded(address)
    target = _safe_next(str((flow or {}).get("t", "")))
    session = dashboard_session.issue(settings, _now(), can_write=signed.can_write)
    # A page that moves on by itself rather than a redirect: the session cookie is SameSite=Strict, and a
    # redirect in a chain that began on Microsoft's site would not carry it to the next page.
    reply = render("signed_in.html.j2", {"next": target, "who": signed.name, "can_write": signed.can_write}, None)
    reply.headers["Set-Cookie"] = dashboard_session.set_cookie(session, _secure(req))
    return reply


def _too_many(wait: int) -> func.HttpResponse:
    """The refusal once an address (or everyone) failed to sign in too often: the API's error body."""
    message = f"too many failed sign-ins; try again in {wait} s"
    return error_response(429, "TooManyRequests", message, headers={**_HEADERS, "Retry-After": str(wait)})


def dashboard_logout(req: func.HttpRequest) -> func.HttpResponse:
    """Ends the session (the cookie is cleared; a CSRF token is needed, so no other site can sign one out)."""
    viewer = dashboard_session.viewer(clients.settings(), dict(req.headers), _now())
    try:
        form = _form(req)
    except ClientInputError as err:
        return _answered(err, viewer)
    if viewer is not None and viewer.signed_in and not dashboard_session.csrf_ok(viewer, form.get("csrf", "")):
        return _error_page(viewer, 403, "Form expired", "The form's token is stale: reload the page.")
    return _redirect(f"{BASE}/login", {"Set-Cookie": dashboard_session.set_cookie("", _secure(req))})


def dashboard_stylesheet(req: func.HttpRequest) -> func.HttpResponse:
    """The stylesheet (the user's when their template directory holds one); public, it holds no findings."""
    del req
    css = dashboard_pages.stylesheet(clients.settings().dashboard_templates)
    headers = {**_HEADERS, "Cache-Control": "max-age=300"}
    return func.HttpResponse(css, mimetype="text/css", charset="utf-8", headers=headers)


# --- pages -----------------------------------------------------------------------------------------------
def _image_key(req: func.HttpRequest) -> tuple[str, str]:
    return req.route_params.get("registry", ""), req.route_params.get("digest", "")


def _overview(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """Registries and repositories by health, findings by severity, top risks, scans, feeds and the trend."""
    feeds = dashboard.Feeds(describe=lambda: clients.db().describe())
    store_key = clients.settings().store or ""
    now = datetime.now(UTC)
    context = dashboard.overview(clients.store(), feeds, req.params, clients.current_signals, now, store_key)
    return render("overview.html.j2", context | {"page": "overview"}, viewer)


def _images(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """The images of a registry or repository, by health."""
    return render("images.html.j2", dashboard.images(clients.store(), req.params) | {"page": "images"}, viewer)


def _image(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """One image: health, findings (filtered and sorted by the query), tags, layers and scans."""
    registry, digest = _image_key(req)
    store = clients.store()

    def layers() -> list[dict[str, Any]]:
        stored = store.load_inventory(registry, digest)
        if stored is None:
            return []
        return [
            {"index": layer.index, "digest": layer.digest, "size": layer.size, "created_by": layer.created_by}
            for layer in stored.inventory.image.layers
        ]

    context = dashboard.image(store, registry, digest, req.params, clients.current_signals, layers)
    self_path = f"/images/{quote(registry, safe='')}/{quote(digest, safe='')}"
    return render("image.html.j2", context | {"self_path": self_path, "scan_seconds": dashboard.scan_seconds}, viewer)


def _finding(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """One finding of an image, with its remediation."""
    registry, digest = _image_key(req)
    key = req.route_params.get("key", "")
    context = dashboard.finding(clients.store(), registry, digest, key, clients.current_signals)
    return render("finding.html.j2", context, viewer)


def _download(req: func.HttpRequest, kind: str) -> func.HttpResponse:
    registry, digest = _image_key(req)
    store = clients.store()
    detail = store.get_image(registry, digest)
    stored = store.load_inventory(registry, digest)
    if detail is None or stored is None:
        raise NotFound(f"no stored inventory of {registry}@{digest}")
    name = digest.replace(":", "-")
    if kind == "sbom":
        body, media, filename = to_cyclonedx(stored.inventory), "application/vnd.cyclonedx+json", f"{name}.cdx.json"
    else:
        found = clients.current_signals([s.finding for s in detail.findings])
        reference = f"{registry}/{detail.repositories[0].key.repository}@{digest}"
        sarif = to_sarif(found, reference, __version__, coverage=detail.coverage)
        body, media, filename = json.dumps(sarif, indent=1), "application/sarif+json", f"{name}.sarif"
    headers = {**_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return func.HttpResponse(body, mimetype=media, charset="utf-8", headers=headers)


def _sbom(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """The image's stored inventory as a CycloneDX JSON SBOM."""
    del viewer
    return _download(req, "sbom")


def _sarif(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """The image's present findings as SARIF."""
    del viewer
    return _download(req, "sarif")


def _vulnerability(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """One vulnerability: its records, severity sources, and the images and tags carrying it."""
    vuln_id = req.route_params.get("vuln_id", "")
    if not vuln_id or len(vuln_id) > 200:
        raise BadParameter("vulnerability", "expected an id of at most 200 characters")
    try:
        records = [dict(r) for r in clients.db().by_id(vuln_id)]
    except (AcrguardError, OSError):
        records = []  # the database is optional for this page: the findings say enough
    context = dashboard.vulnerability(clients.store(), vuln_id, records, clients.current_signals)
    return render("vulnerability.html.j2", context, viewer)


def _rules_context(error: str = "", form: Mapping[str, str] | None = None) -> dict[str, Any]:
    store = clients.store()
    views = rule_admin.list_rules(store, clients.settings().rules)
    rows = dashboard.rules(views, store.disabled_counts(), datetime.now(UTC).date())
    return {"rules": rows, "error": error, "form": dict(form or {}), "page": "rules"}


def _rules(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """The disable rules, what each hides now, and (for writers) the form to create one."""
    notices = {"created": "Rule created.", "deleted": "Rule deleted.", "expiry": "Expiry changed."}
    notice = notices.get(req.params.get("done", ""), "")
    return render("rules.html.j2", _rules_context() | {"notice": notice}, viewer)


def _create_rule(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """Creates a rule from the form; the images it changes are re-assessed before the answer."""
    form = _form(req)
    body = dashboard.rule_from_form(form)
    try:
        rule_admin.create_rule(body, clients.store(), clients.db(), clients.policy(), clients.settings().rules)
    except ManageError as err:
        return render("rules.html.j2", _rules_context(str(err), form), viewer, err.status)
    return _redirect(f"{BASE}/rules?done=created")


def _delete_rule(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """Deletes a stored rule; the images it disabled findings of are re-assessed before the answer."""
    del viewer
    name = req.route_params.get("name", "")
    rule_admin.delete_rule(name, clients.store(), clients.db(), clients.policy(), clients.settings().rules)
    return _redirect(f"{BASE}/rules?done=deleted")


def _change_expiry(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """Sets or clears a stored rule's expiry; the images it affects are re-assessed before the answer."""
    form = _form(req)
    name = req.route_params.get("name", "")
    try:
        rule_admin.change_expiry(
            name, form.get("expires", ""), clients.store(), clients.db(), clients.policy(), clients.settings().rules
        )
    except ManageError as err:
        if err.status != 400:
            raise
        return render("rules.html.j2", _rules_context(str(err), {}), viewer, err.status)
    return _redirect(f"{BASE}/rules?done=expiry")


def _gates(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """The configured gates and their recent verdicts (by gate and image through the URL)."""
    context = dashboard_gates.gates(clients.policy().gates, clients.store(), req.params)
    return render("gates.html.j2", context | {"page": "gates"}, viewer)


def _operations(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """Dead letters (requeue for writers) and the usage meter."""
    done = req.params.get("requeued", "")
    context = dashboard_operations.operations(clients.store(), clients.dead_letters(), clients.queue(), req.params)
    notice = f"Dead letter {done} requeued." if done else ""
    return render("operations.html.j2", context | {"page": "operations", "notice": notice}, viewer)


def _requeue(req: func.HttpRequest, viewer: Viewer) -> func.HttpResponse:
    """Sends a dead letter back to the scan queue."""
    del viewer
    letter_id = req.route_params.get("id", "")
    dashboard_operations.requeue(letter_id, clients.dead_letters(), clients.queue())
    return _redirect(f"{BASE}/operations?requeued={quote(letter_id, safe='')}")


# --- routes -----------------------------------------------------------------------------------------------
_ANON = func.AuthLevel.ANONYMOUS
bp.route(route="dashboard/static/dashboard.css", methods=["GET"], auth_level=_ANON)(dashboard_stylesheet)
bp.route(route="dashboard/login", methods=["GET", "POST"], auth_level=_ANON)(dashboard_login)
bp.route(route="dashboard/login/entra", methods=["GET"], auth_level=_ANON)(dashboard_login_entra)
bp.route(route="dashboard/login/callback", methods=["GET"], auth_level=_ANON)(dashboard_login_callback)
bp.route(route="dashboard/logout", methods=["POST"], auth_level=_ANON)(dashboard_logout)
bp.route(route="dashboard", methods=["GET"], auth_level=_ANON)(page(_overview))
bp.route(route="dashboard/images", methods=["GET"], auth_level=_ANON)(page(_images))
bp.route(route="dashboard/images/{registry}/{digest}", methods=["GET"], auth_level=_ANON)(page(_image))
bp.route(route="dashboard/images/{registry}/{digest}/sbom", methods=["GET"], auth_level=_ANON)(page(_sbom))
bp.route(route="dashboard/images/{registry}/{digest}/sarif", methods=["GET"], auth_level=_ANON)(page(_sarif))
bp.route(route="dashboard/images/{registry}/{digest}/findings/{key}", methods=["GET"], auth_level=_ANON)(page(_finding))
bp.route(route="dashboard/vulnerabilities/{vuln_id}", methods=["GET"], auth_level=_ANON)(page(_vulnerability))
bp.route(route="dashboard/rules", methods=["GET"], auth_level=_ANON)(page(_rules))
bp.route(route="dashboard/rules", methods=["POST"], auth_level=_ANON)(page(_create_rule, write=True))
bp.route(route="dashboard/rules/{name}/delete", methods=["POST"], auth_level=_ANON)(page(_delete_rule, write=True))
bp.route(route="dashboard/rules/{name}/expiry", methods=["POST"], auth_level=_ANON)(page(_change_expiry, write=True))
bp.route(route="dashboard/gates", methods=["GET"], auth_level=_ANON)(page(_gates))
bp.route(route="dashboard/operations", methods=["GET"], auth_level=_ANON)(page(_operations))
bp.route(route="dashboard/dead-letters/{id}/requeue", methods=["POST"], auth_level=_ANON)(page(_requeue, write=True))
