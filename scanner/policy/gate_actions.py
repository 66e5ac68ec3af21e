"""Gate actions: lock / unlock, quarantine and health-changed publication, behind `ActionsAdapter`.

`apply_verdicts` turns gate verdicts into adapter calls and never raises: an action that fails is
reported (one line each) so a registry that is not an ACR, or a dead webhook, cannot fail the scan.

Quarantine is a raw `PATCH /acr/v1/{repo}/_manifests/{digest}` (azure-containerregistry has no quarantine
field). It is sent through the same azure-core pipeline as the SDK's own calls, not urllib: that
pipeline already does ACR's challenge → AAD → refresh/access token exchange, the plain-HTTP policy and the
retries, and `make_client` applies the same registry rules as for scans: only an allowed registry, its own
credential sent to it alone and only after it challenged, connections through the address checks.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import requests

from scanner.image.reference import RegistryReference
from scanner.image.registry_options import RegistryOptions
from scanner.model.errors import RegistryError
from scanner.policy.gates import GateError, GateVerdict
from scanner.policy.image_context import ImageContext
from scanner.store.records import AssessmentChange

QuarantineState = Literal["Passed", "Failed"]
EVENT_TYPE = "Acrguard.ImageHealthChanged"
EVENT_SOURCE = "acrguard"


class ActionsAdapter(Protocol):
    """What gates can do to an image. Implementations raise `GateError` (one line) on failure."""

    def lock(self, image: ImageContext) -> None: ...

    def unlock(self, image: ImageContext) -> None: ...

    def quarantine(self, image: ImageContext, state: QuarantineState, details: Mapping[str, Any]) -> None: ...

    def publish(self, event: Mapping[str, Any]) -> None: ...


@dataclass
class ActionReport:
    done: list[str] = field(default_factory=list)  # e.g. "lock", "quarantine Failed", "notify"
    errors: list[str] = field(default_factory=list)  # one line each
    outcomes: dict[str, str] = field(default_factory=dict)  # each action run: "" when done, else its error

    @property
    def ok(self) -> bool:
        return not self.errors


def apply_verdicts(
    verdicts: Sequence[GateVerdict],
    image: ImageContext,
    adapter: ActionsAdapter,
    change: AssessmentChange | None = None,
    *,
    summary: Mapping[str, Any] | None = None,
    notify: bool = True,
) -> ActionReport:
    """Carry out the actions of the gates that judged `image`; never raises.

    lock: locked while any gate with `lock` fails, unlocked once every such gate passes (so one gate
    passing does not lift another's lock). quarantine: the same, as Failed / Passed with the failing
    gates and reasons as details. notify: the health-changed event is published when `change` says the
    assessment changed and some gate with `notify` judged the image; `notify=False` leaves that to a caller
    that publishes every health change itself (the service, when a publisher is configured).
    """
    report = ActionReport()

    def run(label: str, call: Callable[[], None]) -> None:
        try:
            call()
            report.done.append(label)
            report.outcomes[label] = ""
        except GateError as exc:
            report.errors.append(str(exc))
            report.outcomes[label] = str(exc)
        except Exception as exc:  # an adapter bug must not fail the scan either; keep it to one line
            report.errors.append(f"{label}: {type(exc).__name__}: {' '.join(str(exc).split())}")
            report.outcomes[label] = report.errors[-1]

    lockers = [v for v in verdicts if "lock" in v.gate.actions]
    if lockers:
        if any(v.failed for v in lockers):
            run("lock", lambda: adapter.lock(image))
        else:
            run("unlock", lambda: adapter.unlock(image))
    quarantiners = [v for v in verdicts if "quarantine" in v.gate.actions]
    if quarantiners:
        state: QuarantineState = "Failed" if any(v.failed for v in quarantiners) else "Passed"
        details = {
            "scanner": EVENT_SOURCE,
            "result": state,
            "gates": [{"name": v.gate.name, "reasons": list(v.reasons)} for v in quarantiners if v.failed],
        }
        run(f"quarantine {state}", lambda: adapter.quarantine(image, state, details))
    notifiers = [v for v in verdicts if "notify" in v.gate.actions]
    if notify and notifiers and change is not None and change.changed:
        event = health_changed_event(image, change, summary=summary, gates=verdicts)
        run("notify", lambda: adapter.publish(event))
    return report


# --------------------------------------------------------------------------------------------------
# events


def _event_data(
    image: ImageContext,
    change: AssessmentChange,
    summary: Mapping[str, Any] | None,
    gates: Sequence[GateVerdict],
) -> dict[str, Any]:
    return {
        "registry": image.registry,
        "repository": image.repository,
        "digest": image.digest,
        "tags": list(image.tags),
        "previousHealth": change.previous_health,
        "health": change.health,
        "summary": dict(summary or {}),
        "addedFindings": list(change.added),
        "removedFindings": list(change.removed),
        "gates": [{"name": v.gate.name, "failed": v.failed, "reasons": list(v.reasons)} for v in gates],
    }


def _subject(image: ImageContext) -> str:
    return f"{image.repository}@{image.digest}"


def _now(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")


def health_changed_event(
    image: ImageContext,
    change: AssessmentChange,
    *,
    summary: Mapping[str, Any] | None = None,
    gates: Sequence[GateVerdict] = (),
    event_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The health-changed event in the Event Grid schema (no `topic`: Event Grid sets it on a topic)."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "subject": _subject(image),
        "eventType": EVENT_TYPE,
        "eventTime": _now(now),
        "dataVersion": "1.0",
        "data": _event_data(image, change, summary, gates),
    }


def health_changed_cloud_event(
    image: ImageContext,
    change: AssessmentChange,
    *,
    summary: Mapping[str, Any] | None = None,
    gates: Sequence[GateVerdict] = (),
    event_id: str | None = None,
    now: datetime | None = None,
    source: str = EVENT_SOURCE,
) -> dict[str, Any]:
    """The same event as a CloudEvents 1.0 structured-mode JSON object."""
    event = health_changed_event(image, change, summary=summary, gates=gates, event_id=event_id, now=now)
    return {
        "specversion": "1.0",
        "id": event["id"],
        "source": source,
        "type": event["eventType"],
        "subject": event["subject"],
        "time": event["eventTime"],
        "datacontenttype": "application/json",
        "data": event["data"],
    }


# --------------------------------------------------------------------------------------------------
# publishers


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    attempts: int
    status: int | None = None  # last HTTP status, None when no answer came
    error: str = ""


# Worth another try: the endpoint may be restarting or throttling. Other 4xx are the caller's fault.
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def _reason(exc: requests.RequestException) -> str:
    """A failed request's reason on one line, bounded (requests names the pool, the URL and the cause)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


class _HttpPublisher:
    """JSON POST with bounded retries; `send` never raises, it returns what happened."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.url = url
        self.headers = dict(headers or {})
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._sleep = sleep
        self._local = threading.local()

    def _session(self) -> tuple[requests.Session, dict[str, Any]]:
        # One kept-alive connection per thread: a rescan after an update publishes an event per changed
        # image, and a new TCP (and TLS) connection for each cost more than the assessment itself. The
        # proxy and CA settings of the environment are read once per session, not per request (requests
        # walks the whole environment for them on every request: half the cost of a local POST).
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.environment = session.merge_environment_settings(self.url, {}, None, None, None)
            session.trust_env = False
            self._local.session = session
        return session, self._local.environment

    def _post(self, body: bytes, content_type: str) -> PublishResult:
        headers = {"Content-Type": content_type, **self.headers}
        status: int | None = None
        error = ""
        session, environment = self._session()
        for attempt in range(1, self.attempts + 1):
            try:
                # No redirects: the endpoint is configured, and a redirect would carry its key elsewhere.
                with session.post(
                    self.url,
                    data=body,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    **environment,
                ) as response:
                    if response.status_code < 300:
                        return PublishResult(True, attempt, response.status_code)
                    status, error = response.status_code, f"HTTP {response.status_code} {response.reason}"
                    if status not in _RETRYABLE:
                        return PublishResult(False, attempt, status, f"POST {self.url}: {error}")
            except requests.RequestException as exc:
                status, error = None, _reason(exc)
            if attempt < self.attempts:
                self._sleep(self.backoff * 2 ** (attempt - 1))
        return PublishResult(False, self.attempts, status, f"POST {self.url}: {error} (after {self.attempts} attempts)")

    def publish(self, event: Mapping[str, Any]) -> None:
        """The `ActionsAdapter.publish` shape: a failure (after the retries) is a one-line GateError."""
        result = self.send(event)
        if not result.ok:
            raise GateError(f"notify: {result.error}")

    def send(self, event: Mapping[str, Any]) -> PublishResult:
        raise NotImplementedError

    def send_many(self, events: Sequence[Mapping[str, Any]]) -> list[PublishResult]:
        """Each of `events` sent, in order: what happened to each (a receiver takes one event per POST)."""
        return [self.send(event) for event in events]


class WebhookPublisher(_HttpPublisher):
    """POSTs the event object as JSON (CloudEvents structured mode when it is a CloudEvent)."""

    def send(self, event: Mapping[str, Any]) -> PublishResult:
        content_type = "application/cloudevents+json" if "specversion" in event else "application/json"
        return self._post(json.dumps(event).encode(), content_type)


class EventGridPublisher(_HttpPublisher):
    """POSTs Event Grid schema events to a custom topic endpoint (`https://…/api/events`), key auth."""

    def __init__(self, topic_endpoint: str, key: str, **kwargs: Any) -> None:
        super().__init__(topic_endpoint, {"aeg-sas-key": key}, **kwargs)

    def send(self, event: Mapping[str, Any]) -> PublishResult:
        # A topic takes an array of events even for one.
        return self._post(json.dumps([event]).encode(), "application/json")

    def send_many(self, events: Sequence[Mapping[str, Any]]) -> list[PublishResult]:
        """`events` in as few POSTs as the topic takes: arrays of at most EVENTGRID_BATCH_BYTES (an event
        larger than that goes alone, and the topic's answer says so)."""
        results: list[PublishResult] = []
        for body, count in _arrays((json.dumps(event).encode() for event in events), EVENTGRID_BATCH_BYTES):
            results += [self._post(body, "application/json")] * count
        return results


# What one POST to an Event Grid topic may carry: the array's whole body is limited to 1 MB.
EVENTGRID_BATCH_BYTES = 1_000_000


def _arrays(encoded: Iterable[bytes], limit: int) -> Iterator[tuple[bytes, int]]:
    """JSON arrays of the encoded items, each at most `limit` bytes unless one item alone is larger; with
    how many items each holds."""
    batch: list[bytes] = []
    size = 2
    for item in encoded:
        if batch and size + len(item) + 1 > limit:
            yield b"[" + b",".join(batch) + b"]", len(batch)
            batch, size = [], 2
        batch.append(item)
        size += len(item) + (1 if len(batch) > 1 else 0)
    if batch:
        yield b"[" + b",".join(batch) + b"]", len(batch)


class Publisher(Protocol):
    def publish(self, event: Mapping[str, Any]) -> None: ...


# --------------------------------------------------------------------------------------------------
# Azure Container Registry


class AcrActions:
    """`ActionsAdapter` for an ACR: lock through azure-containerregistry, quarantine through a raw PATCH.

    Both use ACR-only `/acr/v1/` endpoints; on a plain distribution registry they answer 404, which is
    reported as a GateError naming the call rather than as a registry failure.
    """

    def __init__(self, registry: str, options: RegistryOptions, publisher: Publisher | None = None) -> None:
        from scanner.image.registry import make_client  # the Azure SDK only when gates act on a registry

        self.registry = registry
        self.options = options
        self.publisher = publisher
        self._client = make_client(RegistryReference(registry, "acrguard"), options)

    def close(self) -> None:
        self._client.close()

    def lock(self, image: ImageContext) -> None:
        self._set_can_read(image, False)

    def unlock(self, image: ImageContext) -> None:
        self._set_can_read(image, True)

    def _set_can_read(self, image: ImageContext, can_read: bool) -> None:
        what = "lock" if not can_read else "unlock"
        call = f"update_manifest_properties(can_read={can_read})"
        try:
            self._client.update_manifest_properties(image.repository, image.digest, can_read=can_read)
        except Exception as exc:
            raise self._error(exc, what, call, image) from None

    def quarantine(self, image: ImageContext, state: QuarantineState, details: Mapping[str, Any]) -> None:
        from azure.core.rest import HttpRequest

        path = f"/acr/v1/{image.repository}/_manifests/{image.digest}"
        # quarantineDetails is a JSON *string* inside the JSON body (§2 of the interface notes).
        body = {"quarantineState": state, "quarantineDetails": json.dumps(dict(details), sort_keys=True)}
        call = f"PATCH {path}"
        try:
            # The generated client's send_request formats "{url}" + path and runs the SDK's policies.
            response = self._client._client.send_request(HttpRequest("PATCH", "{url}" + path, json=body))
            response.raise_for_status()
        except Exception as exc:
            raise self._error(exc, f"quarantine {state}", call, image) from None

    def publish(self, event: Mapping[str, Any]) -> None:
        if self.publisher is None:
            raise GateError("notify: no publisher configured (webhook URL or Event Grid topic)")
        self.publisher.publish(event)

    def _error(self, exc: Exception, what: str, call: str, image: ImageContext) -> GateError:
        from scanner.image.registry import translate_error

        where = f"{self.registry}/{image.repository}@{image.digest}: {what}"
        if getattr(exc, "status_code", None) == 404:
            return GateError(
                f"{where}: {call} is an ACR-only /acr/v1/ call and the registry answered 404 "
                "(not an Azure Container Registry, or the manifest is gone)"
            )
        translated = translate_error(exc, f"{where}: {call}") if not isinstance(exc, RegistryError) else exc
        return GateError(str(translated))
