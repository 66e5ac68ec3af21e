"""Registry events: ACR's Event Grid / CloudEvents trigger and the distribution registry's HTTP
notifications. Handlers decode and call `scanner.service.pipeline`; nothing else lives here."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from scanner import __version__
from scanner.azure.http import json_response
from scanner.model.client_input import ClientInputError, decode_json
from scanner.service.config import clients
from scanner.service.events import EventError, dead_letter_record, parse_event, parse_notifications
from scanner.service.pipeline import handle_event

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


@bp.event_grid_trigger(arg_name="event")
def acr_events(event: func.EventGridEvent) -> None:
    """One ACR event. A malformed event is dead-lettered (kept with its error) rather than retried: a retry
    cannot fix it. Store or queue failures raise, so Event Grid redelivers the event."""
    try:
        parsed = parse_event(event)
    except EventError as err:
        dead_letter(_event_body(event), str(err))
        return
    handle_event(parsed, clients.store(), clients.queue(), __version__)


@bp.route(route="registry-notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def registry_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """The distribution registry's `{"events": [...]}`: manifest pushes queue scans, manifest GETs are pulls."""
    body = req.get_body()
    try:
        events = parse_notifications(decode_json(body, "notification"))
    except (ClientInputError, EventError) as err:
        dead_letter(body.decode("utf-8", errors="replace"), str(err))
        # 200, not 4xx: the registry retries failed deliveries from memory, and a poison body would loop.
        return json_response({"accepted": 0, "dead_lettered": True}, 200)
    store, queue = clients.store(), clients.queue()
    queued = sum(1 for event in events if handle_event(event, store, queue, __version__) is not None)
    return json_response({"accepted": len(events), "queued": queued, "dead_lettered": False}, 200)


def dead_letter(raw: str, error: str) -> None:
    """Keeps an event nobody could read, with why, in the event dead-letter queue."""
    log.error("registry event dead-lettered: %s", error)
    clients.dead_letters().send_raw(dead_letter_record(raw, error))


def _event_body(event: Any) -> str:
    if isinstance(event, dict):
        return json.dumps(event, sort_keys=True, default=str)
    try:
        data: Any = event.get_json()
    except Exception:  # the data itself may be what is malformed
        data = None
    fields = ("id", "topic", "subject", "event_type", "event_time", "source", "type", "time", "specversion")
    envelope = {name: getattr(event, name, None) for name in fields if getattr(event, name, None) is not None}
    return json.dumps({**envelope, "data": data}, sort_keys=True, default=str)
