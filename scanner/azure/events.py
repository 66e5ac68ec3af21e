"""Registry events: ACR's Event Grid / CloudEvents trigger and the distribution registry's HTTP
notifications. Handlers check the sender (`scanner.azure.auth`), decode and call `scanner.service.pipeline`;
nothing else lives here."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from scanner import __version__
from scanner.azure.auth import authorize, authorize_delivery
from scanner.azure.http import denied_response, error_response, json_response
from scanner.image.registry_options import RegistryNotAllowed
from scanner.model.client_input import ClientInputError, decode_json
from scanner.model.errors import AcrguardError
from scanner.service.config import clients
from scanner.service.events import (
    NOTIFICATION_MEDIA_TYPES,
    EventError,
    TooManyEvents,
    dead_letter_record,
    media_type_refusal,
    parse_event,
    parse_notifications,
)
from scanner.service.pipeline import handle_event, refused_event_body

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)

# An event dead letter keeps this much of what was received: enough to see what it was (an ACR event or a
# registry envelope is 1-2 KiB), and the dead letters stay bounded in bytes as well as in number.


class DeliveryRefused(AcrguardError):
    """An Event Grid delivery whose key no host checked: nothing is handled."""


@bp.event_grid_trigger(arg_name="event")
def acr_events(event: func.EventGridEvent) -> None:
    """One ACR event. A malformed event is dead-lettered (kept with its error) rather than retried: a retry
    cannot fix it. Store or queue failures raise, so Event Grid redelivers the event."""
    denied = authorize_delivery()
    if denied is not None:
        log.error("acr_events: %s", denied)
        raise DeliveryRefused(denied)
    try:
        parsed = parse_event(event)
        handle_event(parsed, clients.store(), clients.queue(), __version__, registries=clients.registries())
    except (EventError, RegistryNotAllowed) as err:
        dead_letter(_event_body(event), str(err))


@bp.route(route="registry-notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def registry_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """The distribution registry's `{"events": [...]}`: manifest pushes queue scans, manifest GETs are pulls.
    The sender is checked first (the `Authorization` header its `notifications.endpoints[].headers` send),
    then the media type and the number of events; a refused request is neither handled nor kept."""
    denied = authorize(req, events=True)
    if denied is not None:
        return denied_response(denied)
    refused = media_type_refusal(req.headers.get("content-type"), NOTIFICATION_MEDIA_TYPES)
    if refused is not None:
        return error_response(415, "UnsupportedMediaType", refused)
    body = req.get_body()
    try:
        events = parse_notifications(decode_json(body, "notification"), clients.settings().max_events_per_request)
    except TooManyEvents as err:
        return error_response(413, "TooManyEvents", str(err))
    except (ClientInputError, EventError) as err:
        dead_letter(body.decode("utf-8", errors="replace"), str(err))
        # 200, not 4xx: the registry retries failed deliveries from memory, and a poison body would loop.
        return json_response({"accepted": 0, "dead_lettered": True}, 200)
    store, queue, registries = clients.store(), clients.queue(), clients.registries()
    queued = not_allowed = 0
    for event in events:
        try:
            if handle_event(event, store, queue, __version__, registries=registries) is not None:
                queued += 1
        except RegistryNotAllowed as err:
            dead_letter(refused_event_body(event), str(err))
            not_allowed += 1
    accepted = len(events) - not_allowed
    return json_response({"accepted": accepted, "queued": queued, "dead_lettered": not_allowed > 0}, 200)


def dead_letter(raw: str, error: str) -> None:
    """Keeps an event nobody could read, with why, in the event dead-letter queue (its first MAX_KEPT_BODY
    characters; the queue keeps at most ACRGUARD_MAX_DEAD_LETTERS, dropping the oldest)."""
    log.error("registry event dead-lettered: %s", error)
    clients.dead_letters().dead_letter(dead_letter_record(raw, error), error)


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
