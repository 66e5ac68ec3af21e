"""Registry events in, `RegistryEvent`s out: ACR's Event Grid and CloudEvents envelopes, and the CNCF
distribution registry's notification envelope; and what one delivery may be (its media type, how many
events). Pure parsing, no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from scanner.model.client_input import ClientInputError, check_json
from scanner.model.errors import AcrguardError
from scanner.model.settings import env_name

Kind = Literal["push", "delete", "chart", "import", "pull"]

_ACR_TYPES: dict[str, Kind] = {
    "Microsoft.ContainerRegistry.ImagePushed": "push",
    "Microsoft.ContainerRegistry.ImageDeleted": "delete",
    "Microsoft.ContainerRegistry.ChartPushed": "chart",
    "Microsoft.ContainerRegistry.ChartDeleted": "chart",
    # This project's own explicit import event: ACR does not say whether `az acr import` raises ImagePushed.
    "Acrguard.ImageImported": "import",
}

# Manifests (and indexes) are images; everything else the distribution registry reports is a blob.
MANIFEST_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)


MAX_KEPT_BODY = 16 << 10  # characters of a refused body kept with its error (an Azure queue message is 64 KiB)


def dead_letter_record(raw: str, error: str) -> str:
    """The body an event nobody could read is kept as, with why (`scanner.service.manage` reads it back); the
    raw text is cut to MAX_KEPT_BODY characters (`truncated_from` says how long it was), so a refused body
    cannot fill the queue."""
    kept: dict[str, Any] = {"error": error, "event": raw[:MAX_KEPT_BODY], "dead_at": datetime.now(UTC).isoformat()}
    if len(raw) > MAX_KEPT_BODY:
        kept["truncated_from"] = len(raw)
    return json.dumps(kept, sort_keys=True)


class EventError(AcrguardError):
    """A registry event that cannot be understood; the message names the missing or bad field."""


class TooManyEvents(EventError):
    """A delivery carrying more events than one request may: refused whole (413), nothing handled or kept."""


@dataclass(frozen=True)
class RegistryEvent:
    kind: Kind
    registry: str  # login server, e.g. myreg.azurecr.io
    repository: str
    digest: str
    tag: str | None
    media_type: str
    at: datetime
    event_id: str


def parse_event(event: Any) -> RegistryEvent:
    """One Event Grid or CloudEvents 1.0 event: a dict, or an object with `get_json()` (EventGridEvent)."""
    envelope = _envelope(event)
    _within_bounds(envelope, "event")
    if "specversion" in envelope:
        event_type = _text(envelope, "type", "event")
        topic = str(envelope.get("source") or "")
        when = envelope.get("time")
    else:
        event_type = _text(envelope, "eventType", "event")
        topic = str(envelope.get("topic") or "")
        when = envelope.get("eventTime")
    kind = _ACR_TYPES.get(event_type)
    if kind is None:
        raise EventError(f"event: unsupported event type {event_type!r:.80}")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise EventError("event: field 'data' is missing or not an object")
    event_id = str(envelope.get("id") or data.get("id") or "")
    if not event_id:
        raise EventError("event: field 'id' is missing")
    if kind == "chart":
        # Charts are not images: recognised so that they are not dead-lettered, then ignored.
        return RegistryEvent("chart", _registry(data, topic), "", "", None, "", _time(when, data), event_id)
    return _from_data(kind, data, topic, when, event_id)


def parse_notifications(body: Any, max_events: int | None = None) -> list[RegistryEvent]:
    """The distribution registry's `{"events": [...]}`: manifest pushes and manifest GET pulls (by digest).
    Blob events, HEAD requests (existence checks) and other actions are dropped. More than `max_events`
    events raise TooManyEvents before any is read."""
    _within_bounds(body, "notification")
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise EventError("notification: field 'events' is missing or not a list")
    if max_events is not None:
        check_batch(len(body["events"]), max_events, "notification")
    out: list[RegistryEvent] = []
    for index, item in enumerate(body["events"]):
        if not isinstance(item, dict):
            raise EventError(f"notification: events[{index}] is not an object")
        action = item.get("action")
        target = item.get("target")
        if not isinstance(target, dict):
            raise EventError(f"notification: events[{index}]: field 'target' is missing")
        if target.get("mediaType") not in MANIFEST_MEDIA_TYPES or action not in ("push", "pull"):
            continue
        if action == "pull":
            request = item.get("request")
            if not isinstance(request, dict) or str(request.get("method", "")).upper() != "GET":
                continue
        event_id = str(item.get("id") or "")
        if not event_id:
            raise EventError(f"notification: events[{index}]: field 'id' is missing")
        event = _from_data("push" if action == "push" else "pull", item, "", None, event_id)
        # Pulls are keyed by digest: a tag in a pull only says how the client asked.
        out.append(event if action == "push" else _untagged(event))
    return out


def _within_bounds(value: Any, what: str) -> None:
    """The client-input bounds (depth, no NUL, no lone surrogate) on an event however it was decoded: in Azure
    the Functions worker decodes it, and a NUL must be dead-lettered here, not refused by PostgreSQL later."""
    try:
        check_json(value, what)
    except ClientInputError as err:
        raise EventError(str(err)) from None


def _untagged(event: RegistryEvent) -> RegistryEvent:
    return RegistryEvent(
        event.kind, event.registry, event.repository, event.digest, None, event.media_type, event.at, event.event_id
    )


def _envelope(event: Any) -> dict[str, Any]:
    if isinstance(event, dict):
        return event
    get_json = getattr(event, "get_json", None)
    if get_json is None:
        raise EventError(f"event: expected an object, not {type(event).__name__}")
    if getattr(event, "specversion", None):
        # func.CloudEvent (azure-functions >= 1.25 detects CloudEvents deliveries itself).
        return {
            "specversion": event.specversion,
            "id": getattr(event, "id", None),
            "source": getattr(event, "source", None),
            "subject": getattr(event, "subject", None),
            "type": getattr(event, "type", None),
            "time": getattr(event, "time", None),
            "data": get_json(),
        }
    # func.EventGridEvent exposes the envelope as attributes and only `data` through get_json().
    return {
        "id": getattr(event, "id", None),
        "topic": getattr(event, "topic", None),
        "subject": getattr(event, "subject", None),
        "eventType": getattr(event, "event_type", None),
        "eventTime": getattr(event, "event_time", None),
        "data": get_json(),
    }


def _from_data(kind: Kind, data: dict[str, Any], topic: str, when: Any, event_id: str) -> RegistryEvent:
    target = data.get("target")
    if not isinstance(target, dict):
        raise EventError("event: field 'data.target' is missing")
    repository = _text(target, "repository", "data.target")
    digest = _text(target, "digest", "data.target")
    tag = target.get("tag") or None
    if tag is not None and not isinstance(tag, str):
        raise EventError("event: field 'data.target.tag' must be a string")
    media_type = str(target.get("mediaType") or "")
    return RegistryEvent(kind, _registry(data, topic), repository, digest, tag, media_type, _time(when, data), event_id)


def _registry(data: dict[str, Any], topic: str) -> str:
    request = data.get("request")
    if isinstance(request, dict) and isinstance(request.get("host"), str) and request["host"]:
        return str(request["host"]).lower()
    # Deletes and charts may lack `request`: the topic (ARM id) ends with the registry's name.
    marker = "/registries/"
    if marker in topic.lower():
        name = topic[topic.lower().rindex(marker) + len(marker) :].split("/")[0]
        if name:
            return f"{name.lower()}.azurecr.io"
    raise EventError("event: field 'data.request.host' is missing and the topic names no registry")


def _time(when: Any, data: dict[str, Any]) -> datetime:
    value = data.get("timestamp") or when
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        parsed = _parse_time(value)
    else:
        raise EventError("event: field 'data.timestamp' (or the envelope's time) is missing")
    if parsed.utcoffset() is None:
        raise EventError("event: field 'data.timestamp' has no time zone")
    return parsed


def _parse_time(value: str) -> datetime:
    try:
        return iso_time(value.strip())
    except ValueError as err:
        raise EventError(f"event: field 'data.timestamp' is not an ISO 8601 time: {value!r:.60}") from err


def iso_time(text: str) -> datetime:
    """An ISO 8601 time as registries and Log Analytics write it: `Z` (or `z`) for UTC, and more fractional
    digits (nanoseconds, Kusto's seven) than the microseconds Python takes, which are dropped. Raises ValueError."""
    text = text.replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    return datetime.fromisoformat(text)


def _text(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise EventError(f"event: field '{where}.{name}' is missing")
    return value


# --------------------------------------------------------------------------------------------------
# what one delivery may be

# Event Grid delivers its own schema as application/json and CloudEvents 1.0 in structured mode, one event
# or a batch; the distribution registry posts its envelope with a media type of its own. Anything else
# (text/plain, forms: what a web page may POST without a CORS preflight) is refused before it is read.
EVENT_GRID_MEDIA_TYPES = frozenset(
    {"application/json", "application/cloudevents+json", "application/cloudevents-batch+json"}
)
NOTIFICATION_MEDIA_TYPES = frozenset({"application/json", "application/vnd.docker.distribution.events.v1+json"})


def media_type_refusal(content_type: str | None, accepted: frozenset[str]) -> str | None:
    """None when `content_type` (parameters such as charset aside) is one of `accepted`, else the one-line
    reason for a 415."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in accepted:
        return None
    shown = f"{media_type[:80]!r}" if media_type else "none"
    return f"Content-Type {shown} is not accepted here: send {', '.join(sorted(accepted))}"


def check_batch(count: int, max_events: int, what: str) -> None:
    """Raises TooManyEvents when one delivery carries more than `max_events` events."""
    if count > max_events:
        raise TooManyEvents(
            f"{what}: {count} events in one request, over the limit of {max_events} "
            f"({env_name('max_events_per_request')}); nothing was handled"
        )
