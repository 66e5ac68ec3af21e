"""`acrguard serve`: the function app's handlers in one local process, without the Functions host.

The Azure Functions Core Tools cannot be installed everywhere (their npm postinstall downloads a binary), so
this module plays the host's part for local runs: it serves the app's HTTP functions under `/api/`, answers
the Event Grid webhook like the host's `/runtime/webhooks/eventgrid`, fires the timer functions on their
NCRONTAB schedules and drains the scan queue with the sandboxed job. The handlers are the ones indexed from
`function_app.app`, so what runs here is the code that runs in Azure.

HTTP is uvicorn (h11) around `Dispatcher` (`scanner.localhost.asgi`): keep-alive for the registry's notifier,
graceful shutdown that lets requests in flight finish, and the synchronous handlers in a thread pool as
Azure's Python worker runs them.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from scanner.localhost.ncrontab import CronError, Schedule, parse_ncrontab
from scanner.model.client_input import ClientInputError, decode_json
from scanner.model.errors import AcrguardError
from scanner.model.settings import Settings, env_name
from scanner.service import access
from scanner.service.events import EVENT_GRID_MEDIA_TYPES, TooManyEvents, check_batch, media_type_refusal

__all__ = ["CronError", "Dispatcher", "FunctionIndex", "HttpFunction", "Schedule", "ServeConfig", "parse_ncrontab"]

log = logging.getLogger(__name__)

EVENTGRID_PATH = "/runtime/webhooks/eventgrid"
API_PREFIX = "/api/"
MAX_BODY = 32 << 20  # Event Grid batches are at most 1 MB; registry notifications are small
HTTP_THREADS = 16  # handlers in flight at once; a request beyond that waits for a thread
GRACEFUL_SHUTDOWN = 10  # seconds requests in flight get to finish after SIGINT/SIGTERM


class ServeError(AcrguardError):
    """serve cannot start (the address is taken, the host cannot be bound)."""


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


# The one error body of the API (`scanner.azure.http`): {"error": {"code", "message"}}, the code named.
_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    500: "InternalError",
    503: "Unavailable",
}
# A Host header is copied into the request's URL as the Functions host does; one that is not a host[:port]
# (a `/`, `?`, `#` or `@` would move the URL's path) is replaced by serve's own address.
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    return _json_reply(status, {"error": {"code": _CODES[status], "message": message}}, headers)


def _unauthorized(message: str) -> Reply:
    return _error(401, message, {"WWW-Authenticate": 'Bearer realm="acrguard"'})


def _denied(denial: access.Denial) -> Reply:
    challenge = {"WWW-Authenticate": 'Bearer realm="acrguard"'} if denial.status == 401 else None
    return _json_reply(denial.status, {"error": {"code": denial.code, "message": denial.message}}, challenge)


def _not_allowed(method: str, allowed: Iterable[str]) -> Reply:
    methods = ", ".join(sorted(allowed))
    return _error(405, f"method {method} is not allowed here; use {methods}", {"Allow": methods})


_READS = frozenset(("GET", "HEAD", "OPTIONS"))
_FUNCTION_KEY_REFUSAL = "missing or wrong function key (code or x-functions-key)"


class Dispatcher:
    """Requests in, replies out; separate from the socket server so that it is testable without one.

    It plays the Functions host: `function_key` (when set) is required on every route that is not
    anonymous, in `?code=` or `x-functions-key`. The Event Grid webhook, whose handler gets no request to
    check, always requires a credential: the function key, or one of `settings`' event credentials
    (`x-api-key`, `Authorization: Bearer` with the API token or the events token, which an Event Grid
    subscription sends as delivery headers, or an Entra ID token with the Events.Send or Findings.Write
    role, which a subscription with Entra ID authentication sends); with none configured, every delivery is
    refused. Entra ID settings that cannot be used are a SettingsError here, before anything is served."""

    def __init__(
        self,
        index: FunctionIndex,
        function_key: str = "",
        on_write: Callable[[], None] | None = None,
        settings: Settings | None = None,
        dead_letter: Callable[[bytes, str], None] | None = None,
    ) -> None:
        self.index = index
        self.function_key = function_key
        # Keeps an Event Grid delivery refused as a whole (raw body, error), as the handler keeps a bad event.
        self.dead_letter = dead_letter
        # Called after a write request succeeded (an event delivered, a notification, a manual scan): it may
        # have queued a scan, so serve wakes its queue workers instead of leaving it to their next poll.
        self.on_write = on_write
        settings = settings if settings is not None else Settings()
        self.settings = settings
        self.event_credentials = access.credentials(settings, "events")
        self.entra = access.entra_verifier(settings) is not None
        self.max_events = settings.max_events_per_request

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> Reply:
        reply = self._dispatch(method, target, headers, body, host)
        if self.on_write is not None and method not in _READS and reply.status < 400:
            self.on_write()  # a wake-up with nothing queued costs the worker one empty receive
        return reply

    def _dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> Reply:
        parts = urllib.parse.urlsplit(target)
        try:
            params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True, errors="strict"))
        except UnicodeDecodeError:
            return _error(400, "the query string is not UTF-8 once percent-decoded")
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            if parts.path.rstrip("/") == EVENTGRID_PATH:
                denial = self._delivery_denial(params, lowered)
                if denial is not None:
                    return _denied(denial)
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
        return access.same(params.get("code") or headers.get("x-functions-key", ""), self.function_key)

    def _delivery_denial(self, params: Mapping[str, str], headers: Mapping[str, str]) -> access.Denial | None:
        """An Event Grid delivery's credential: the function key, or an event credential (all compared)."""
        key_ok = self._key_ok(params, headers) if self.function_key else False
        configured = access.configured(self.settings, "events")
        denial = access.check(headers, self.settings, "events") if configured else None
        if key_ok or (configured and denial is None):
            return None
        if denial is not None and denial.token_read:
            return denial  # a token was read and refused: say what was wrong with it
        return access.unauthorized(self._delivery_refusal())

    def _delivery_refusal(self) -> str:
        offered = ["function key (code or x-functions-key)"] if self.function_key else []
        if self.event_credentials or self.entra:
            offered.append(access.wanted(self.event_credentials, self.entra))
        if not offered:
            wanted = f"{env_name('function_key')} or {env_name('events_token')}"
            return f"no credential configured for Event Grid deliveries: set {wanted}"
        return "missing or wrong " + ", or ".join(offered)

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

        try:
            path = urllib.parse.unquote(parts.path[len(API_PREFIX) :], errors="strict")
        except UnicodeDecodeError:
            return _error(400, "the path is not UTF-8 once percent-decoded")
        allowed: set[str] = set()
        for fn in self.index.http:
            match = fn.pattern.fullmatch(path)
            if match is None:
                continue
            if fn.methods and method not in fn.methods:
                allowed |= fn.methods
                continue
            if not fn.anonymous and not self._key_ok(params, lowered):
                return _unauthorized(_FUNCTION_KEY_REFUSAL)
            route_params = {k: v for k, v in match.groupdict().items() if v is not None}
            host = host if _HOST.fullmatch(host) else "localhost"
            url = f"http://{host}{parts.path}" + (f"?{parts.query}" if parts.query else "")
            request = func.HttpRequest(
                method, url, headers=dict(headers), params=params, route_params=route_params, body=body
            )
            response = fn.handler(request)
            return _from_http_response(response)
        if allowed:
            return _not_allowed(method, allowed)
        return _error(404, f"no function at {parts.path}")

    def _event_grid(self, method: str, params: Mapping[str, str], headers: Mapping[str, str], body: bytes) -> Reply:
        """A delivery whose credential was checked: the handshakes, then the events, each to the handler."""
        name = params.get("functionName", "")
        handler = self.index.event_grid.get(name)
        if handler is None:
            return _error(404, f"no Event Grid function named {name!r}")
        if method == "OPTIONS":
            # CloudEvents abuse-protection handshake: allow the origin that asked.
            origin = headers.get("webhook-request-origin", "*")
            return Reply(200, {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"}, b"")
        if method != "POST":
            return _not_allowed(method, ("OPTIONS", "POST"))
        refused = media_type_refusal(headers.get("content-type"), EVENT_GRID_MEDIA_TYPES)
        if refused is not None:
            return _error(415, refused)
        # A delivery that cannot be read (not JSON, out of bounds, NUL) is refused whole, kept as a dead letter,
        # and answered 4xx, which Event Grid does not retry: a 5xx would bring it back for ever.
        try:
            payload = decode_json(body or b"null", "Event Grid delivery")
        except ClientInputError as err:
            return self._refused(body, err.status, str(err))
        events = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(e, dict) for e in events):
            return self._refused(body, 400, "Event Grid delivery: expected an event object or an array of them")
        try:
            check_batch(len(events), self.max_events, "Event Grid delivery")
        except TooManyEvents as err:
            return _error(413, str(err))
        kind = headers.get("aeg-event-type", "")
        if kind.lower() == "subscriptionvalidation":
            for event in events:
                data = event.get("data")
                if isinstance(data, dict) and data.get("validationCode"):
                    return _json_reply(200, {"validationResponse": data["validationCode"]})
            return _error(400, "SubscriptionValidation without data.validationCode")
        # The handler takes the raw envelope (Event Grid schema or CloudEvents 1.0): it reads both. A store or
        # queue failure raises out of it, and the 500 makes Event Grid redeliver.
        with access.checked_delivery():
            for event in events:
                handler(event)
        return Reply(200, {}, b"")

    def _refused(self, body: bytes, status: int, message: str) -> Reply:
        if self.dead_letter is not None:
            self.dead_letter(body, message)
        return _error(status, message)


def _from_http_response(response: Any) -> Reply:
    headers = {k: v for k, v in dict(response.headers).items()}
    if response.mimetype and not any(k.lower() == "content-type" for k in headers):
        charset = f"; charset={response.charset}" if response.charset else ""
        headers["Content-Type"] = f"{response.mimetype}{charset}"
    return Reply(int(response.status_code), headers, response.get_body() or b"")


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


class WorkSignal:
    """Wakes the queue workers as soon as a request handled in this process may have queued a scan. Without
    it a push waited for the workers' next poll; they still poll, for messages other processes queue."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def notify(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        # set() wakes every waiting worker; clearing after waking loses nothing: a notify that comes while
        # a worker drains leaves the event set, so its next wait returns at once and it drains again.
        self._event.wait(timeout)
        self._event.clear()


def run_worker(
    drain_once: Callable[[], int], stop: threading.Event, idle_sleep: float = 0.5, wake: WorkSignal | None = None
) -> None:
    """Calls `drain_once` (messages handled) until stopped; while the queue is empty it waits `idle_sleep`
    seconds or until `wake` is notified."""
    while not stop.is_set():
        try:
            handled = drain_once()
        except Exception:  # the store or queue may be briefly unavailable; try again shortly
            log.exception("serve: queue worker failed")
            handled = 0
        if not handled:
            if wake is None:
                stop.wait(idle_sleep)
            else:
                wake.wait(idle_sleep)


@dataclass(frozen=True)
class ServeConfig:
    host: str
    port: int
    runner: str
    schedules: Mapping[str, str]  # timer name -> schedule overriding the app's
    # What the handlers, timers and workers run with (`clients`): the environment's, with serve's store, queue,
    # database, insecure registries and (none configured) its generated API key. The function key, when
    # `settings.function_key` holds one, is checked as the Functions host would; the handlers check their own.
    settings: Settings
    workers: int = 1  # queue worker threads, each running one sandboxed scan at a time
    # uvicorn's access log is one INFO line per request, formatted and written on the event loop's thread
    # (lookups are expected at 200 requests/s): opt-in.
    access_log: bool = False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts so that a taken port is a one-line error
    (uvicorn would log it and call sys.exit)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ServeError(f"--host {host}: cannot resolve it ({err.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart right after a stop (TIME_WAIT)
        # Accepted connections inherit it (asyncio sets it only on sockets it makes): an answer is written as
        # headers then body, and with Nagle's algorithm the body waited ~40 ms for the client's delayed ACK
        # on every request after the first of a kept-alive connection (a browser's, the notifier's).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise ServeError(f"{host}:{port} is already in use by another process; choose another --port") from None
        raise ServeError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    return sock


def serve(config: ServeConfig, stop: threading.Event) -> None:
    """Runs until `stop` is set (the CLI sets it on SIGINT/SIGTERM; under uvicorn its own handlers catch the
    signal, shut HTTP down gracefully and pass the signal on), then stops every thread it started."""
    sock = bind(config.host, config.port)
    try:
        _serve_on(sock, config, stop)
    finally:
        sock.close()


def _serve_on(sock: socket.socket, config: ServeConfig, stop: threading.Event) -> None:
    from scanner.localhost.asgi import AsgiApp
    from scanner.service.config import clients
    from scanner.service.events import dead_letter_record

    port = sock.getsockname()[1]  # the one the system chose for --port 0
    settings = config.settings
    if not settings.public_url:  # the links handed out name the address serve listens on
        settings = replace(settings, public_url=listening_url(config.host, port))
    # The handlers take their settings from `clients`, as in Azure; here they are serve's.
    clients.configure(settings)
    from function_app import app  # installed with the package (pyproject's py-modules)
    from scanner.sandbox.scratch import sweep_abandoned
    from scanner.service.sandboxed import make_sandboxed_fetch

    def dead_letter(body: bytes, error: str) -> None:
        log.error("serve: Event Grid delivery refused: %s", error)
        clients.dead_letters().dead_letter(dead_letter_record(body.decode("utf-8", errors="replace"), error), error)

    index = index_functions(app.get_functions())
    schedules = {name: parse_ncrontab(config.schedules.get(name, text)) for name, (text, _) in index.timers.items()}
    fetch = make_sandboxed_fetch(config.runner, config.settings)
    sweep_abandoned()  # the scratch layouts of scans killed with an earlier serve or worker

    def drain_once() -> int:
        counts = clients.drain(fetch, max_messages=4)
        return counts.processed + counts.failed

    wake = WorkSignal()
    executor = ThreadPoolExecutor(max_workers=HTTP_THREADS, thread_name_prefix="http")
    dispatcher = Dispatcher(
        index, config.settings.function_key, on_write=wake.notify, settings=config.settings, dead_letter=dead_letter
    )
    asgi = AsgiApp(dispatcher, executor, MAX_BODY)
    server = http_server(asgi, config.host, config.port, access_log=config.access_log)
    # Daemons: a scan in progress may take long, and the process need not wait for it on exit.
    threads = [
        threading.Thread(target=run_worker, args=(drain_once, stop, 0.5, wake), name=f"queue-worker-{n}", daemon=True)
        for n in range(1, config.workers + 1)
    ]
    for name, (_, handler) in index.timers.items():
        threads.append(
            threading.Thread(target=run_timer, args=(name, schedules[name], handler, stop), name=name, daemon=True)
        )
    threads.append(threading.Thread(target=_exit_on, args=(stop, server), name="stop-watch", daemon=True))
    for thread in threads:
        thread.start()
    log.info("serve: listening on http://%s:%d (functions: %s)", config.host, port, _names(index))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        stop.set()
        wake.notify()  # workers waiting for work notice the stop now, not at their next poll
        deadline = time.monotonic() + 5
        for thread in threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0))
        executor.shutdown(wait=False, cancel_futures=True)
        clients.close()
        log.info("serve: stopped")


def listening_url(host: str, port: int) -> str:
    """`http://host:port` for the address serve listens on; a wildcard address names this machine instead."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def http_server(app: Any, host: str, port: int, access_log: bool = False) -> Any:
    """uvicorn on h11 without websockets; `serve(sockets=[...])` runs it on an already bound socket."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            http="h11",
            loop="asyncio",
            ws="none",
            lifespan="on",
            log_config=None,  # the CLI's logging configuration, not uvicorn's own
            access_log=access_log,  # uvicorn.access at INFO, one line per request
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        )
    )


def _exit_on(stop: threading.Event, server: Any) -> None:
    """Ends uvicorn's loop when `stop` is set from elsewhere (a caller, or a signal before uvicorn started)."""
    stop.wait()
    server.should_exit = True


def _names(index: FunctionIndex) -> str:
    return ", ".join(sorted([f.name for f in index.http] + list(index.event_grid) + list(index.timers)))
