"""HTTP blueprint: the management API: manual scans, explicit import notifications, disable
rules over HTTP, dead letters. Handlers decode the body and call one function of `scanner.service.manage`
or `scanner.service.rule_admin`; `scanner.azure.http.guarded` checks the caller first (writes never
anonymous) and answers their errors, each as one line of JSON.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from scanner import __version__
from scanner.azure.events import dead_letter
from scanner.azure.http import error_response, guarded, json_response
from scanner.model.client_input import ClientInputError, decode_json
from scanner.service import manage, rule_admin
from scanner.service.config import clients

bp = func.Blueprint()  # type: ignore[no-untyped-call]


def _body(req: func.HttpRequest, what: str) -> Any:
    """The JSON body within the edge's bounds; a ClientInputError (400, 413) names what is wrong."""
    return decode_json(req.get_body(), what)


# --- scans and imports ------------------------------------------------------------------------------------
def _create_scan(req: func.HttpRequest) -> func.HttpResponse:
    """A manual scan: 202 when queued, 200 when already current or already pending."""
    order = manage.parse_scan_order(_body(req, "scan request"))
    options = clients.registry_options()
    resolve = manage.registry_resolver(options)
    outcome = manage.request_scan(
        order, clients.store(), clients.queue(), __version__, resolve, registries=options.registries
    )
    return json_response(manage.scan_outcome_document(outcome), 202 if outcome.status == "queued" else 200)


def _import_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Explicit import notifications; malformed items are dead-lettered and reported, the rest handled."""
    raw = req.get_body()
    try:
        body = decode_json(raw, "import notifications")
    except ClientInputError as err:
        dead_letter(raw.decode("utf-8", errors="replace"), str(err))  # nothing lost, even a body nobody can read
        return error_response(err.status, err.code, str(err))
    items = manage.import_notifications(
        body, clients.store(), clients.queue(), __version__, dead_letter, registries=clients.registries()
    )
    document, status = manage.import_results_document(items)
    return json_response(document, status)


# --- disable rules ----------------------------------------------------------------------------------------
def _list_rules(req: func.HttpRequest) -> func.HttpResponse:
    del req
    store = clients.store()
    views = rule_admin.list_rules(store, clients.settings().rules)
    usage = rule_admin.rule_usage([v.rule for v in views], store)
    return json_response(rule_admin.rule_list_document(views, usage))


def _get_rule(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("name", "")
    store = clients.store()
    view = rule_admin.get_rule(store, name, clients.settings().rules)
    return json_response(rule_admin.rule_view_document(view, rule_admin.rule_usage([view.rule], store)))


def _create_rule(req: func.HttpRequest) -> func.HttpResponse:
    """A rule in the YAML schema of one rule; the images it may change are re-assessed before the reply."""
    body = _body(req, "rule")
    change = rule_admin.create_rule(body, clients.store(), clients.db(), clients.policy(), clients.settings().rules)
    return json_response(rule_admin.rule_change_document(change), 201)


def _delete_rule(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("name", "")
    change = rule_admin.delete_rule(name, clients.store(), clients.db(), clients.policy(), clients.settings().rules)
    return json_response(rule_admin.rule_change_document(change))


# --- dead letters -----------------------------------------------------------------------------------------
def _list_dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    """The dead letters kept, and how many of each kind were dropped to keep them bounded."""
    del req
    events, scans = clients.dead_letters(), clients.queue()
    letters = manage.list_dead_letters(events, scans)
    dropped = {"event": events.dropped_dead_letters(), "scan": scans.dropped_dead_letters()}
    return json_response({"value": [manage.dead_letter_document(v) for v in letters], "dropped": dropped})


def _requeue_dead_letter(req: func.HttpRequest) -> func.HttpResponse:
    letter_id = req.route_params.get("id", "")
    message_id = manage.requeue_dead_letter(letter_id, clients.dead_letters(), clients.queue())
    return json_response({"requeued": letter_id, "messageId": message_id}, 202)


# --- routes -----------------------------------------------------------------------------------------------
bp.route(route="scans", methods=["POST"])(guarded(_create_scan, write=True))
bp.route(route="import-notifications", methods=["POST"])(guarded(_import_notifications, write=True))
bp.route(route="rules", methods=["GET"])(guarded(_list_rules, write=False))
bp.route(route="rules", methods=["POST"])(guarded(_create_rule, write=True))
bp.route(route="rules/{name}", methods=["GET"])(guarded(_get_rule, write=False))
bp.route(route="rules/{name}", methods=["DELETE"])(guarded(_delete_rule, write=True))
bp.route(route="dead-letters", methods=["GET"])(guarded(_list_dead_letters, write=False))
bp.route(route="dead-letters/{id}/requeue", methods=["POST"])(guarded(_requeue_dead_letter, write=True))
