"""The pieces of `acrguard serve` that need no server: NCRONTAB, route templates, the Event Grid handshake."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from scanner.localhost.serve import CronError, Dispatcher, FunctionIndex, parse_ncrontab, route_pattern

T0 = datetime(2026, 11, 24, 16, 30, 15, tzinfo=UTC)  # a Tuesday


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("0 0 3 * * *", datetime(2026, 11, 25, 3, 0, 0, tzinfo=UTC)),
        ("*/10 * * * * *", datetime(2026, 11, 24, 16, 30, 20, tzinfo=UTC)),
        ("0 */30 * * * *", datetime(2026, 11, 24, 17, 0, 0, tzinfo=UTC)),
        ("0 0 9-17 * * mon-fri", datetime(2026, 11, 24, 17, 0, 0, tzinfo=UTC)),
        ("0 0 0 * * 0", datetime(2026, 11, 29, 0, 0, 0, tzinfo=UTC)),  # Sunday
        ("0 0 0 * * 7", datetime(2026, 11, 29, 0, 0, 0, tzinfo=UTC)),  # 7 is Sunday too
        ("0 0 0 1 jan *", datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC)),
        ("0 0 0 29 2 *", datetime(2028, 2, 29, 0, 0, 0, tzinfo=UTC)),
        ("5,45 30 16 * * *", datetime(2026, 11, 24, 16, 30, 45, tzinfo=UTC)),
        ("0 0 12 1 * fri", datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)),  # day OR weekday, as in cron
    ],
)
def test_next_run(schedule: str, expected: datetime) -> None:
    assert parse_ncrontab(schedule).next_after(T0) == expected


@pytest.mark.parametrize("bad", ["0 3 * * *", "60 * * * * *", "* * * 0 * *", "a * * * * *", "*/0 * * * * *"])
def test_bad_schedules(bad: str) -> None:
    with pytest.raises(CronError):
        parse_ncrontab(bad)


def test_next_run_is_strictly_after() -> None:
    assert parse_ncrontab("* * * * * *").next_after(T0) == datetime(2026, 11, 24, 16, 30, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("route", "path", "params"),
    [
        ("images/{registry}/{digest}", "images/r.io:5000/sha256:ab", {"registry": "r.io:5000", "digest": "sha256:ab"}),
        ("images/{registry}/{digest}/findings", "images/r/d/findings", {"registry": "r", "digest": "d"}),
        ("health", "health/", {}),
        ("items/{id:int}", "items/7", {"id": "7"}),
        ("files/{*rest}", "files/a/b/c", {"rest": "a/b/c"}),
        ("opt/{name?}", "opt", {}),
    ],
)
def test_route_templates(route: str, path: str, params: dict[str, str]) -> None:
    match = route_pattern(route).fullmatch(path)
    assert match is not None
    assert {k: v for k, v in match.groupdict().items() if v is not None} == params


def test_route_templates_do_not_overmatch() -> None:
    assert route_pattern("images/{registry}/{digest}").fullmatch("images/r/d/findings") is None
    assert route_pattern("health").fullmatch("healthz") is None


def _dispatcher(seen: list[Any]) -> Dispatcher:
    return Dispatcher(FunctionIndex(event_grid={"acr_events": seen.append}), function_key="k")


def test_event_grid_validation_and_options_handshake() -> None:
    seen: list[Any] = []
    body = json.dumps(
        [{"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "v1"}}]
    )
    target = "/runtime/webhooks/eventgrid?functionName=acr_events&code=k"
    handshake = {"aeg-event-type": "SubscriptionValidation", "Content-Type": "application/json"}
    reply = _dispatcher(seen).dispatch("POST", target, handshake, body.encode(), "h")
    assert (reply.status, json.loads(reply.body)) == (200, {"validationResponse": "v1"})
    options = _dispatcher(seen).dispatch("OPTIONS", target, {"WebHook-Request-Origin": "eventgrid.azure.net"}, b"", "h")
    assert options.status == 200 and options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert seen == []


def test_event_grid_notifications_reach_the_handler_and_need_the_key() -> None:
    seen: list[Any] = []
    cloud = {"specversion": "1.0", "id": "1", "type": "t", "source": "s", "data": {}}
    target = "/runtime/webhooks/eventgrid?functionName=acr_events"
    json_type = {"Content-Type": "application/cloudevents-batch+json"}
    assert _dispatcher(seen).dispatch("POST", target, json_type, json.dumps(cloud).encode(), "h").status == 401
    reply = _dispatcher(seen).dispatch("POST", target + "&code=k", json_type, json.dumps([cloud, cloud]).encode(), "h")
    assert reply.status == 200 and seen == [cloud, cloud]
    missing = _dispatcher(seen).dispatch(
        "POST", target.replace("acr_events", "other") + "&code=k", json_type, b"[]", "h"
    )
    assert missing.status == 404


def _echo(req: Any) -> Any:
    import azure.functions as func

    body = {"method": req.method, "route": dict(req.route_params), "params": dict(req.params), "url": req.url}
    return func.HttpResponse(json.dumps(body), status_code=201, mimetype="application/json")


def _http_dispatcher(anonymous: bool = False) -> Dispatcher:
    from scanner.localhost.serve import HttpFunction

    route = "images/{registry}/{digest}"
    fn = HttpFunction("get_image", route, frozenset({"GET"}), anonymous, route_pattern(route), _echo)
    return Dispatcher(FunctionIndex(http=[fn]), function_key="k")


def test_http_functions_get_the_hosts_request_and_answer_with_theirs() -> None:
    reply = _http_dispatcher().dispatch("GET", "/api/images/r.io%3A5000/sha256:ab?code=k&x=1", {}, b"", "h:1")
    assert reply.status == 201 and reply.headers["Content-Type"].startswith("application/json")
    assert json.loads(reply.body) == {
        "method": "GET",
        "route": {"registry": "r.io:5000", "digest": "sha256:ab"},
        "params": {"code": "k", "x": "1"},
        "url": "http://h:1/api/images/r.io%3A5000/sha256:ab?code=k&x=1",
    }


def test_http_method_key_and_path_errors() -> None:
    dispatcher = _http_dispatcher()
    assert dispatcher.dispatch("GET", "/api/images/r/d", {}, b"", "h").status == 401
    assert dispatcher.dispatch("GET", "/api/images/r/d", {"X-Functions-Key": "k"}, b"", "h").status == 201
    assert dispatcher.dispatch("POST", "/api/images/r/d?code=k", {}, b"", "h").status == 405
    assert dispatcher.dispatch("GET", "/api/nothing?code=k", {}, b"", "h").status == 404
    assert dispatcher.dispatch("GET", "/elsewhere", {}, b"", "h").status == 404
    assert _http_dispatcher(anonymous=True).dispatch("GET", "/api/images/r/d", {}, b"", "h").status == 201


def test_a_failing_handler_is_a_500_not_the_servers_end() -> None:
    def boom(event: Any) -> None:
        raise RuntimeError("store down")

    dispatcher = Dispatcher(FunctionIndex(event_grid={"acr_events": boom}), function_key="k")
    target = "/runtime/webhooks/eventgrid?functionName=acr_events&code=k"
    headers = {"aeg-event-type": "Notification", "Content-Type": "application/json"}
    assert dispatcher.dispatch("POST", target, headers, b"[{}]", "h").status == 500


def test_worker_drains_until_stopped() -> None:
    import threading

    from scanner.localhost.serve import run_worker

    stop = threading.Event()
    calls: list[int] = []

    def drain_once() -> int:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("queue briefly unavailable")  # logged, and the worker carries on
        if len(calls) >= 5:
            stop.set()
        return 1 if len(calls) < 3 else 0

    run_worker(drain_once, stop, idle_sleep=0.01)
    assert len(calls) == 5


def test_settings_for_the_handlers() -> None:
    """serve's options reach the handlers through the settings it configures (never the environment)."""
    import argparse

    from scanner.cli.serve import add_serve_parser, serve_config
    from scanner.model.settings import Settings

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            *("serve", "--store", "postgresql://acrguard@127.0.0.1:5432/postgres"),
            *("--queue", "UseDevelopmentStorage=true", "--db", "/data/vulndb.sqlite", "--runner", "none"),
            *("--insecure-registries", "registry.lan:5000,127.0.0.1:5001"),
        ]
    )
    environ = {"ACRGUARD_STORE": "/elsewhere.sqlite", "ACRGUARD_FUNCTION_KEY": "fk", "ACRGUARD_API_KEY": "ak"}
    config = serve_config(args, Settings.from_environ(environ))
    settings = config.settings
    assert settings.store == "postgresql://acrguard@127.0.0.1:5432/postgres"
    assert settings.queue == "UseDevelopmentStorage=true"
    assert settings.db == "/data/vulndb.sqlite"
    assert ",".join(sorted(settings.insecure_registries)) == "127.0.0.1:5001,registry.lan:5000"
    assert (settings.function_key, settings.api_key, config.runner) == ("fk", "ak", "none")


def test_cli_options() -> None:
    import argparse

    from scanner.cli.serve import add_serve_parser

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--workers", "3", "--insecure-registries", "a:1, b:2"])
    assert (args.workers, args.port, args.runner) == (3, 7071, "bubblewrap")
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["serve", "--workers", bad])


def test_binding_a_taken_port_is_a_serve_error() -> None:
    import socket

    from scanner.localhost.serve import ServeError, bind

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServeError, match=re.escape(f"127.0.0.1:{port} is already in use")):
            bind("127.0.0.1", port)
    with pytest.raises(ServeError, match=re.escape("--host no-such-host.invalid: cannot resolve")):
        bind("no-such-host.invalid", 0)
    bound = bind("127.0.0.1", 0)
    try:
        assert bound.getsockname()[0] == "127.0.0.1"
    finally:
        bound.close()
