"""`acrguard serve`: the function app's handlers in one local process, without the Functions host.

The Azure Functions Core Tools cannot be installed everywhere (their npm postinstall downloads a binary), so
this module plays the host's part for local runs: it serves the app's HTTP functions under `/api/`, answers
the Event Grid webhook like the host's `/runtime/webhooks/eventgrid`, fires the timer functions on their
NCRONTAB schedules and drains the scan queue with the sandboxed job. The handlers are the ones indexed from
`function_app.app`, so what runs here is the code that runs in Azure.

The server is the stdlib `ThreadingHTTPServer`: the handlers are synchronous, the traffic is one developer's
and one registry's, and it adds no dependency to the function app's image.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

# In Azure the host checks function keys; here a key is checked only when this setting holds one.
FUNCTION_KEY_SETTING = "ACRGUARD_FUNCTION_KEY"
EVENTGRID_PATH = "/runtime/webhooks/eventgrid"
API_PREFIX = "/api/"
MAX_BODY = 32 << 20  # Event Grid batches are at most 1 MB; registry notifications are small


# --------------------------------------------------------------------------------------------------
# NCRONTAB


class CronError(ValueError):
    """A schedule that is not a six-field NCRONTAB expression."""


_FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))
_MONTHS = {
    m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


@dataclass(frozen=True)
class Schedule:
    """`{second} {minute} {hour} {day} {month} {day-of-week}`; day of week 0 (or 7) is Sunday."""

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    # Like cron: when both day fields are restricted, a time matching either one fires.
    days_restricted: bool
    weekdays_restricted: bool

    def _day_matches(self, at: datetime) -> bool:
        weekday = (at.weekday() + 1) % 7  # Python: Monday 0; NCRONTAB: Sunday 0
        day_ok, weekday_ok = at.day in self.days, weekday in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def next_after(self, after: datetime) -> datetime:
        """The first matching whole second strictly after `after` (same time zone)."""
        at = after.replace(microsecond=0) + timedelta(seconds=1)
        limit = at + timedelta(days=366 * 5)  # Feb 29 on a Sunday recurs within 28 years; no schedule waits that long
        while at < limit:
            # Skip whole months, days, hours and minutes that cannot match: at most a few thousand steps.
            if at.month not in self.months:
                at = (at.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(at):
                at = at.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0, second=0) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at = at.replace(second=0) + timedelta(minutes=1)
            elif at.second not in self.seconds:
                at += timedelta(seconds=1)
            else:
                return at
        raise CronError("schedule: no matching time within five years")


def parse_ncrontab(text: str) -> Schedule:
    parts = text.split()
    if len(parts) != 6:
        raise CronError(f"schedule {text!r}: expected six fields (second minute hour day month day-of-week)")
    sets: list[frozenset[int]] = []
    for part, (name, low, high) in zip(parts, _FIELDS, strict=True):
        names = _MONTHS if name == "month" else _DAYS if name == "weekday" else {}
        values = _parse_field(part.lower(), name, low, 7 if name == "weekday" else high, names)
        if name == "weekday":
            values = frozenset(v % 7 for v in values)  # 7 is Sunday too
        sets.append(values)
    second, minute, hour, day, month, weekday = sets
    restricted = (parts[3] not in ("*", "?"), parts[5] not in ("*", "?"))
    return Schedule(second, minute, hour, day, month, weekday, *restricted)


def _parse_field(text: str, name: str, low: int, high: int, names: Mapping[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        spec, _, step_text = item.partition("/")
        step = _number(step_text, name, names) if step_text else 1
        if step < 1:
            raise CronError(f"schedule: {name} step must be positive: {item!r}")
        if spec in ("*", "?"):
            start, end = low, high
        elif "-" in spec:
            first, _, last = spec.partition("-")
            start, end = _number(first, name, names), _number(last, name, names)
        else:
            start = _number(spec, name, names)
            end = high if step_text else start  # "5/10" means from 5 to the end in steps of 10
        if not low <= start <= end <= high:
            raise CronError(f"schedule: {name} {item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, name: str, names: Mapping[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise CronError(f"schedule: {name} value {text!r} is not a number")
    return int(text)


# --------------------------------------------------------------------------------------------------
# the function index


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str
    methods: frozenset[str]  # empty: any method
    anonymous: bool
    pattern: re.Pattern[str]
    handler: Callable[..., Any]


@dataclass
class FunctionIndex:
    http: list[HttpFunction] = field(default_factory=list)
    event_grid: dict[str, Callable[..., Any]] = field(default_factory=dict)
    timers: dict[str, tuple[str, Callable[..., Any]]] = field(default_factory=dict)  # name -> (schedule, handler)


def route_pattern(route: str) -> re.Pattern[str]:
    """The host's route template (`images/{registry}/{digest}`, `{name?}`, `{*rest}`, `{id:int}`) as a regex."""
    out: list[str] = []
    for segment in route.strip("/").split("/"):
        match = re.fullmatch(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\??)\}", segment)
        if match is None:
            out.append("/" + re.escape(segment))
        elif match.group(1):
            out.append(f"(?:/(?P<{match.group(2)}>.*))?")
        elif match.group(3):
            out.append(f"(?:/(?P<{match.group(2)}>[^/]+))?")
        else:
            out.append(f"/(?P<{match.group(2)}>[^/]+)")
    return re.compile("".join(out).removeprefix("/") + "/?", re.IGNORECASE)


def index_functions(functions: Iterable[Any]) -> FunctionIndex:
    """From `FunctionApp.get_functions()` (which may be called once per app: the caller indexes once)."""
    index = FunctionIndex()
    for fn in functions:
        bindings = json.loads(fn.get_function_json())["bindings"]
        trigger = next((b for b in bindings if b.get("direction") == "IN" and "Trigger" in b["type"]), None)
        if trigger is None:
            continue
        name, handler = fn.get_function_name(), fn.get_user_function()
        if trigger["type"] == "httpTrigger":
            route = trigger.get("route") or name
            methods = frozenset(m.upper() for m in trigger.get("methods") or ())
            anonymous = str(trigger.get("authLevel", "FUNCTION")).upper() == "ANONYMOUS"
            index.http.append(HttpFunction(name, route, methods, anonymous, route_pattern(route), handler))
        elif trigger["type"] == "eventGridTrigger":
            index.event_grid[name] = handler
        elif trigger["type"] == "timerTrigger":
            index.timers[name] = (trigger["schedule"], handler)
        else:
            log.warning("serve: function %s has a %s, which serve does not run", name, trigger["type"])
    # Literal routes before templated ones, as the host orders them (`images/x` before `images/{id}`).
    index.http.sort(key=lambda f: (f.route.count("{"), -len(f.route)))
    return index


# --------------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _json_reply(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode())


def _error(status: int, message: str) -> Reply:
    return _json_reply(status, {"error": {"code": str(status), "message": message}})


class Dispatcher:
    """Requests in, replies out; separate from the socket server so that it is testable without one."""

    def __init__(self, index: FunctionIndex, function_key: str = "") -> None:
        self.index = index
        self.function_key = function_key

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> Reply:
        parts = urllib.parse.urlsplit(target)
        params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            if parts.path.rstrip("/") == EVENTGRID_PATH:
                if not self._key_ok(params, lowered):
                    return _error(401, "missing or wrong function key (code or x-functions-key)")
                return self._event_grid(method, params, lowered, body)
            if parts.path.startswith(API_PREFIX):
                return self._http(method, parts, params, headers, lowered, body, host)
        except Exception:  # a handler's bug is a 500 for this request, never the server's end
            log.exception("serve: %s %s failed", method, parts.path)
            return _error(500, "internal error; see the serve log")
        return _error(404, f"no function at {parts.path}")

    def _key_ok(self, params: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        if not self.function_key:
            return True
        offered = params.get("code") or headers.get("x-functions-key", "")
        return hmac.compare_digest(offered.encode(), self.function_key.encode())

    def _http(
        self,
        method: str,
        parts: urllib.parse.SplitResult,
        params: dict[str, str],
        headers: Mapping[str, str],
        lowered: Mapping[str, str],
        body: bytes,
        host: str,
    ) -> Reply:
        import azure.functions as func

        path = urllib.parse.unquote(parts.path[len(API_PREFIX) :])
        allowed: set[str] = set()
        for fn in self.index.http:
            match = fn.pattern.fullmatch(path)
            if match is None:
                continue
            if fn.methods and method not in fn.methods:
                allowed |= fn.methods
                continue
            if not fn.anonymous and not self._key_ok(params, lowered):
                return _error(401, "missing or wrong function key (code or x-functions-key)")
            route_params = {k: v for k, v in match.groupdict().items() if v is not None}
            url = f"http://{host}{parts.path}" + (f"?{parts.query}" if parts.query else "")
            request = func.HttpRequest(
                method, url, headers=dict(headers), params=params, route_params=route_params, body=body
            )
            response = fn.handler(request)
            return _from_http_response(response)
        if allowed:
            return Reply(405, {"Allow": ", ".join(sorted(allowed))}, b"")
        return _error(404, f"no function at {parts.path}")

    def _event_grid(self, method: str, params: Mapping[str, str], headers: Mapping[str, str], body: bytes) -> Reply:
        name = params.get("functionName", "")
        handler = self.index.event_grid.get(name)
        if handler is None:
            return _error(404, f"no Event Grid function named {name!r}")
        if method == "OPTIONS":
            # CloudEvents abuse-protection handshake: allow the origin that asked.
            origin = headers.get("webhook-request-origin", "*")
            return Reply(200, {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"}, b"")
        if method != "POST":
            return Reply(405, {"Allow": "OPTIONS, POST"}, b"")
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return _error(400, "body is not JSON")
        events = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(e, dict) for e in events):
            return _error(400, "expected an event object or an array of them")
        kind = headers.get("aeg-event-type", "")
        if kind.lower() == "subscriptionvalidation":
            for event in events:
                data = event.get("data")
                if isinstance(data, dict) and data.get("validationCode"):
                    return _json_reply(200, {"validationResponse": data["validationCode"]})
            return _error(400, "SubscriptionValidation without data.validationCode")
        # The handler takes the raw envelope (Event Grid schema or CloudEvents 1.0): it reads both. A store or
        # queue failure raises out of it, and the 500 makes Event Grid redeliver.
        for event in events:
            handler(event)
        return Reply(200, {}, b"")


def _from_http_response(response: Any) -> Reply:
    headers = {k: v for k, v in dict(response.headers).items()}
    if response.mimetype and not any(k.lower() == "content-type" for k in headers):
        charset = f"; charset={response.charset}" if response.charset else ""
        headers["Content-Type"] = f"{response.mimetype}{charset}"
    return Reply(int(response.status_code), headers, response.get_body() or b"")


def make_server(host: str, port: int, dispatcher: Dispatcher) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the registry's notifier keeps connections alive

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(_error(413, f"body larger than {MAX_BODY} bytes"))
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items()}
            self._send(dispatcher.dispatch(self.command, self.path, headers, body, f"{host}:{port}"))

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True  # an open keep-alive connection must not hold up the shutdown
    return server


# --------------------------------------------------------------------------------------------------
# background work


def run_timer(name: str, schedule: Schedule, handler: Callable[..., Any], stop: threading.Event) -> None:
    from azure.functions.timer import TimerRequest

    while not stop.is_set():
        due = schedule.next_after(datetime.now(UTC))
        if stop.wait(max((due - datetime.now(UTC)).total_seconds(), 0)):
            return
        log.info("serve: timer %s firing", name)
        try:
            handler(TimerRequest(past_due=False))
        except Exception:  # one failed run must not end the schedule
            log.exception("serve: timer %s failed", name)


def run_worker(drain_once: Callable[[], int], stop: threading.Event, idle_sleep: float = 0.5) -> None:
    """Calls `drain_once` (messages handled) until stopped, sleeping briefly while the queue is empty."""
    while not stop.is_set():
        try:
            handled = drain_once()
        except Exception:  # the store or queue may be briefly unavailable; try again shortly
            log.exception("serve: queue worker failed")
            handled = 0
        if not handled:
            stop.wait(idle_sleep)


@dataclass(frozen=True)
class ServeConfig:
    host: str
    port: int
    store: str
    queue: str
    db: str | None
    runner: str
    schedules: Mapping[str, str]  # timer name -> schedule overriding the app's
    insecure_registries: frozenset[str]
    function_key: str = ""


def configure_environment(config: ServeConfig) -> None:
    """The handlers read their adapters' settings from the environment, as in Azure."""
    from scanner.service.config import QUEUE_ENV, STORE_ENV

    os.environ[STORE_ENV] = config.store
    os.environ[QUEUE_ENV] = config.queue
    if config.db:
        os.environ["ACRGUARD_DB"] = config.db


def make_fetch(runner_name: str, insecure_registries: frozenset[str]) -> Callable[[Any], Any]:
    """The sandboxed job as the fetch step, with plain HTTP only for the registries named insecure."""
    from scanner.image.registry_options import RegistryOptions
    from scanner.inventory import ScanOptions
    from scanner.job_cli import make_runner
    from scanner.queue.interface import ScanRequest
    from scanner.service.sandboxed import sandboxed_fetch

    runner = make_runner(runner_name, [], "acrguard-job:latest")
    secure = sandboxed_fetch(runner, ScanOptions())
    insecure = sandboxed_fetch(runner, ScanOptions(registry=RegistryOptions(insecure=True)))

    def fetch(request: ScanRequest) -> Any:
        return (insecure if request.registry in insecure_registries else secure)(request)

    return fetch


def serve(config: ServeConfig, stop: threading.Event) -> None:
    """Runs until `stop` is set (the CLI sets it on SIGINT/SIGTERM), then stops every thread it started."""
    configure_environment(config)
    from function_app import app
    from scanner import __version__
    from scanner.service.config import clients
    from scanner.service.pipeline import drain_queue

    index = index_functions(app.get_functions())
    schedules = {name: parse_ncrontab(config.schedules.get(name, text)) for name, (text, _) in index.timers.items()}
    fetch = make_fetch(config.runner, config.insecure_registries)

    def drain_once() -> int:
        counts = drain_queue(
            clients.queue(), clients.store(), clients.db(), fetch, __version__, max_messages=4, policy=clients.policy()
        )
        return counts.processed + counts.failed

    server = make_server(config.host, config.port, Dispatcher(index, config.function_key))
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http")]
    threads.append(threading.Thread(target=run_worker, args=(drain_once, stop), name="queue-worker", daemon=True))
    for name, (_, handler) in index.timers.items():
        threads.append(
            threading.Thread(target=run_timer, args=(name, schedules[name], handler, stop), name=name, daemon=True)
        )
    for thread in threads:
        thread.start()
    log.info("serve: listening on http://%s:%d (functions: %s)", config.host, config.port, _names(index))
    try:
        stop.wait()
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        for thread in threads:
            # A scan in progress may take long; the worker is a daemon, so the process need not wait for it.
            thread.join(timeout=5)
        clients.close()
        log.info("serve: stopped")


def _names(index: FunctionIndex) -> str:
    return ", ".join(sorted([f.name for f in index.http] + list(index.event_grid) + list(index.timers)))
