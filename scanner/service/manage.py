"""The management operations behind the HTTP API: manual scan requests, explicit import
notifications and the dead letters (disable rules over HTTP: `scanner.service.rule_admin`).

Adapters (store, queues, database, policy, tag resolution, the event dead-letter step) are passed in; the
handlers in `scanner.azure.manage` decode requests and map `ManageError` to HTTP. Request bodies are
checked here, each refusal one line naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from scanner.image.reference import parse_registry_reference
from scanner.image.registry_options import RegistryAccess, RegistryNotAllowed, RegistryOptions
from scanner.model.client_input import ClientInputError, decode_json
from scanner.model.errors import AcrguardError, ReferenceError_, RegistryError
from scanner.policy.yaml_checks import kind, unknown_key
from scanner.queue import ScanQueue, ScanRequest
from scanner.queue.interface import DeadLetter
from scanner.service.events import RegistryEvent
from scanner.service.pipeline import handle_event
from scanner.store.ports import EventIntake, ManualScans

MAX_IMPORT_ITEMS = 1000
_FLAGS = ("force",)  # the one non-text field of a request body
# (registry, repository, tag) → (digest, media type), on the trusted side; raises RegistryError.
ResolveTag = Callable[[str, str, str], tuple[str, str]]
DeadLetterStep = Callable[[str, str], None]  # (raw body, one-line error), e.g. functions.events.dead_letter


class ManageError(AcrguardError):
    """A request the service refuses: `status` is the HTTP status, the message one line naming the field."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _bad(message: str) -> ManageError:
    return ManageError(400, "BadRequest", message)


def _fields(body: object, what: str, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    """The object's fields: no unknown ones, the required ones present, every text field a non-empty string."""
    if not isinstance(body, dict):
        raise _bad(f"{what}: expected a JSON object, got {kind(body)}")
    unknown = unknown_key(body, (*required, *optional), "field")
    if unknown is not None:
        raise _bad(f"{what}: field '{unknown[0]}': {unknown[1]}")
    for name in required:
        if name not in body:
            raise _bad(f"{what}: field '{name}' is missing")
    for name, value in body.items():
        if name not in _FLAGS and (not isinstance(value, str) or not value.strip()):
            raise _bad(f"{what}: field '{name}' must be a non-empty string, got {kind(value)}")
    return body


def _image_name(what: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    """The distribution reference grammar, field by field (registry host, repository, tag, digest)."""
    text = f"{registry}/{repository}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    try:
        ref = parse_registry_reference(text)
    except ReferenceError_ as err:
        message = str(err)
        field = next((f for f in ("digest", "tag") if f"invalid {f}" in message), "repository")
        raise _bad(f"{what}: field '{field}': {message.split(': ', 1)[-1]}") from None
    if ref.registry != registry:
        raise _bad(f"{what}: field 'registry': '{registry}' is not a registry host such as myreg.azurecr.io")


# --- manual scans ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanOrder:
    registry: str  # login server, lower case
    repository: str
    digest: str | None
    tag: str | None
    force: bool = False


@dataclass(frozen=True)
class ScanOutcome:
    status: Literal["queued", "current", "pending"]
    registry: str
    repository: str
    digest: str
    tag: str | None
    request: ScanRequest | None = None  # set when queued
    message_id: str = ""


def parse_scan_order(body: object) -> ScanOrder:
    what = "scan request"
    fields = _fields(body, what, ("registry", "repository"), ("digest", "tag", "force"))
    digest, tag = fields.get("digest"), fields.get("tag")
    if (digest is None) == (tag is None):
        raise _bad(f"{what}: field 'digest': give either 'digest' or 'tag' (resolved to a digest), not both or none")
    force = fields.get("force", False)
    if not isinstance(force, bool):
        raise _bad(f"{what}: field 'force' must be true or false, got {kind(force)}")
    registry = fields["registry"].strip().lower()
    _image_name(what, registry, fields["repository"], tag, digest)
    return ScanOrder(registry, fields["repository"], digest, tag, force)


def registry_resolver(options: RegistryOptions) -> ResolveTag:
    """Tag → digest through the registry adapter (one manifest GET) with `options`: the allowed registries
    with their credentials and schemes (`make_client` refuses any other host before connecting)."""

    def resolve(registry: str, repository: str, tag: str) -> tuple[str, str]:
        # Imported here: the Azure SDK is needed only when a tag is resolved.
        from scanner.image.reference import RegistryReference
        from scanner.image.registry import RegistrySource

        source = RegistrySource(RegistryReference(registry, repository, tag), options)
        try:
            _, media_type, digest = source.root()
        finally:
            source.close()
        return digest, media_type

    return resolve


def request_scan(
    order: ScanOrder,
    store: ManualScans,
    queue: ScanQueue,
    scanner_version: str,
    resolve: ResolveTag,
    *,
    registries: RegistryAccess,
) -> ScanOutcome:
    """Records the image (and the tag) and queues one "manual" scan, unless this scanner version already
    scanned the digest (and `force` is not set) or a scan of it is already pending. A registry `registries`
    does not allow is a 403 before anything is resolved, recorded or queued."""
    try:
        registries.require(order.registry)
    except RegistryNotAllowed as err:
        raise ManageError(403, "RegistryNotAllowed", f"scan request: field 'registry': {err}") from None
    digest, media_type = order.digest, ""
    if order.tag is not None:
        reference = f"{order.registry}/{order.repository}:{order.tag}"
        try:
            digest, media_type = resolve(order.registry, order.repository, order.tag)
        except RegistryError as err:
            http_status = 404 if "not found" in str(err) else 502  # an unknown tag, or a registry down or refusing
            raise ManageError(http_status, "ResolutionFailed", f"cannot resolve {reference}: {err}") from None
    assert digest is not None
    detail = store.get_image(order.registry, digest)
    known = detail is not None and any(r.key.repository == order.repository for r in detail.repositories)
    if order.tag is not None or not known:
        # A manual request is not a push, but the image needs its row (and the tag its history) to be listed;
        # an image already known by digest is left as it is, its push times untouched.
        store.record_push(order.registry, order.repository, digest, order.tag, media_type, datetime.now(UTC))
    if not order.force and store.has_current_scan(order.registry, digest, scanner_version):
        return ScanOutcome("current", order.registry, order.repository, digest, order.tag)
    request = ScanRequest.create(order.registry, order.repository, digest, tag=order.tag, reason="manual")
    sent = queue.send(request, request.dedupe_key(scanner_version))
    if sent.refused:
        raise ManageError(503, "QueueFull", f"{sent.refused} (dead letter {sent.message_id})")
    status: Literal["queued", "pending"] = "pending" if sent.deduplicated else "queued"
    return ScanOutcome(status, order.registry, order.repository, digest, order.tag, request, sent.message_id)


# --- import notifications -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportItem:
    index: int
    status: Literal["queued", "unchanged", "dead-lettered"]  # unchanged: already scanned or already pending
    digest: str = ""
    error: str = ""


def parse_import(item: object, index: int, now: datetime) -> RegistryEvent:
    what = f"import notification [{index}]"
    fields = _fields(item, what, ("registry", "repository", "digest"), ("tag", "timestamp"))
    registry = fields["registry"].strip().lower()
    _image_name(what, registry, fields["repository"], fields.get("tag"), fields["digest"])
    at = now
    if "timestamp" in fields:
        try:
            at = datetime.fromisoformat(fields["timestamp"].replace("Z", "+00:00"))
        except ValueError:
            raise _bad(f"{what}: field 'timestamp' is not an ISO 8601 time") from None
        if at.utcoffset() is None:
            raise _bad(f"{what}: field 'timestamp' has no time zone")
    event_id = f"import:{registry}/{fields['repository']}@{fields['digest']}"
    return RegistryEvent(
        "import", registry, fields["repository"], fields["digest"], fields.get("tag"), "", at, event_id
    )


def import_notifications(
    body: object,
    store: EventIntake,
    queue: ScanQueue,
    scanner_version: str,
    dead_letter: DeadLetterStep,
    *,
    registries: RegistryAccess,
) -> list[ImportItem]:
    """One notification or a list: each good one is handled like an ImagePushed event (one scan per digest,
    none when already scanned or pending); each malformed one, and each naming a registry `registries` does
    not allow, is dead-lettered with its error."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise _bad("import notifications: the list is empty")
    if len(items) > MAX_IMPORT_ITEMS:
        raise _bad(f"import notifications: {len(items)} items, over the limit of {MAX_IMPORT_ITEMS} per request")
    now = datetime.now(UTC)
    out: list[ImportItem] = []
    for index, item in enumerate(items):
        try:
            event = parse_import(item, index, now)
        except ManageError as err:
            dead_letter(json.dumps(item, sort_keys=True, default=str), str(err))
            out.append(ImportItem(index, "dead-lettered", error=str(err)))
            continue
        try:
            queued = handle_event(event, store, queue, scanner_version, registries=registries)
        except RegistryNotAllowed as err:
            message = f"import notification [{index}]: field 'registry': {err}"
            dead_letter(json.dumps(item, sort_keys=True, default=str), message)
            out.append(ImportItem(index, "dead-lettered", error=message))
            continue
        out.append(ImportItem(index, "queued" if queued is not None else "unchanged", event.digest))
    return out


# --- dead letters ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeadLetterView:
    id: str
    kind: Literal["event", "scan"]
    error: str
    dead_at: datetime
    attempts: int
    body: Any  # the event or scan request as received (parsed JSON when it is JSON)


def _parsed(raw: str) -> Any:
    # Bounded: a dead letter may be a body refused for its depth, which json.loads would recurse into.
    try:
        return decode_json(raw.encode("utf-8", errors="replace"), "dead letter")
    except ClientInputError:
        return raw


def _event_letter(letter: DeadLetter) -> DeadLetterView:
    # Event dead letters are sent as {"error", "event", "dead_at"} (functions.events.dead_letter).
    wrapped = _parsed(letter.raw)
    if not isinstance(wrapped, dict) or "error" not in wrapped:
        return DeadLetterView(letter.id, "event", letter.error, letter.dead_at, letter.attempts, wrapped)
    try:
        at = datetime.fromisoformat(str(wrapped.get("dead_at")))
    except ValueError:
        at = letter.dead_at
    return DeadLetterView(
        letter.id, "event", str(wrapped["error"]), at, letter.attempts, _parsed(str(wrapped.get("event")))
    )


def settle_event_letters(events: ScanQueue, rounds: int = 100) -> list[DeadLetter]:
    """The event dead letters. They are sent as messages to a queue of their own that nothing consumes;
    receiving them moves each (not being a scan request) into that queue's dead-letter store, the one
    place the queue interface lists. Azure returns at most 32 per receive, hence rounds until none move."""
    letters = events.dead_letters()
    for _ in range(rounds):
        events.receive(32, 1)
        after = events.dead_letters()
        if len(after) == len(letters):
            return after
        letters = after
    return letters


def list_dead_letters(events: ScanQueue, scans: ScanQueue) -> list[DeadLetterView]:
    views = [_event_letter(letter) for letter in settle_event_letters(events)]
    views += [
        DeadLetterView(d.id, "scan", d.error, d.dead_at, d.attempts, _parsed(d.raw)) for d in scans.dead_letters()
    ]
    return sorted(views, key=lambda v: v.dead_at)


def requeue_dead_letter(letter_id: str, events: ScanQueue, scans: ScanQueue) -> str:
    """Moves a scan dead letter back to the scan queue; returns the new message id. Queue trouble raises
    QueueError (the handler's 503); an id that is not a scan dead letter is a ManageError."""
    if any(d.id == letter_id for d in scans.dead_letters()):
        return scans.requeue_dead_letter(letter_id).message_id
    if any(d.id == letter_id for d in settle_event_letters(events)):
        raise ManageError(409, "Conflict", f"dead letter '{letter_id}' is an event nobody could read: resend the event")
    raise ManageError(404, "NotFound", f"no scan dead letter '{letter_id}'")


# --- response documents -------------------------------------------------------------------------------
def iso_or_none(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def scan_outcome_document(outcome: ScanOutcome) -> dict[str, Any]:
    """The answer to a manual scan request."""
    body: dict[str, Any] = {
        "status": outcome.status,
        "registry": outcome.registry,
        "repository": outcome.repository,
        "digest": outcome.digest,
        "tag": outcome.tag,
    }
    if outcome.request is not None:
        body |= {"requestId": outcome.request.request_id, "reason": outcome.request.reason}
        body |= {"requestedAt": outcome.request.requested_at.isoformat(), "messageId": outcome.message_id}
    return body


def import_results_document(items: Sequence[ImportItem]) -> tuple[dict[str, Any], int]:
    """The answer to explicit import notifications and its status: 400 when every item was malformed, 202 when
    one was queued, else 200."""
    results = [
        {"index": i.index, "status": i.status} | ({"digest": i.digest} if i.digest else {"error": i.error})
        for i in items
    ]
    queued = sum(1 for i in items if i.status == "queued")
    bad = sum(1 for i in items if i.status == "dead-lettered")
    status = 400 if bad == len(items) else 202 if queued else 200
    return {"accepted": len(items) - bad, "queued": queued, "deadLettered": bad, "results": results}, status


def dead_letter_document(view: DeadLetterView) -> dict[str, Any]:
    """One dead letter as the management API lists it."""
    return {
        "id": view.id,
        "kind": view.kind,
        "error": view.error,
        "deadAt": iso_or_none(view.dead_at),
        "attempts": view.attempts,
        "body": view.body,
    }
