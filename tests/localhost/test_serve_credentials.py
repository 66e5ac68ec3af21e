"""What serve's front door checks before a handler runs (no server needed): the Event Grid webhook's
credential, media type and batch size; and the key serve makes for itself when none is configured."""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from scanner.cli.serve import add_serve_parser, data_dir, serve_config
from scanner.localhost.keyfile import KeyFileError, load_or_create
from scanner.localhost.serve import Dispatcher, FunctionIndex
from scanner.model.settings import Settings
from scanner.service import access

TARGET = "/runtime/webhooks/eventgrid?functionName=acr_events"
JSON = {"Content-Type": "application/json", "aeg-event-type": "Notification"}
EVENT = b'[{"id": "1"}]'


def _dispatcher(seen: list[Any], function_key: str = "", **settings: Any) -> Dispatcher:
    def handler(event: Any) -> None:
        seen.append((event, access.delivery_checked()))

    return Dispatcher(FunctionIndex(event_grid={"acr_events": handler}), function_key, settings=Settings(**settings))


def test_with_no_credential_configured_every_delivery_is_refused() -> None:
    seen: list[Any] = []
    dispatcher = _dispatcher(seen)
    for method, headers in (("POST", JSON), ("OPTIONS", {"WebHook-Request-Origin": "o"})):
        reply = dispatcher.dispatch(method, TARGET + "&code=", headers, EVENT, "h")
        error = json.loads(reply.body)["error"]
        assert (reply.status, error["code"]) == (401, "Unauthorized")
        assert error["message"].startswith("no credential configured for Event Grid deliveries")
    assert seen == []


def test_each_credential_in_its_own_place() -> None:
    seen: list[Any] = []
    dispatcher = _dispatcher(seen, "fk", api_key="ak", api_token="at", events_token="et")
    accepted = [
        (TARGET + "&code=fk", {}),
        (TARGET, {"x-functions-key": "fk"}),
        (TARGET, {"x-api-key": "ak"}),
        (TARGET, {"Authorization": "Bearer at"}),
        (TARGET, {"authorization": "bearer et"}),
    ]
    refused = [
        (TARGET + "&code=ak", {}),
        (TARGET + "&code=et", {}),
        (TARGET, {"x-api-key": "et"}),
        (TARGET, {"x-api-key": "fk"}),
        (TARGET, {"Authorization": "Bearer ak"}),
        (TARGET, {"Authorization": "Bearer fk"}),
        (TARGET, {"Authorization": "Basic et"}),
        (TARGET, {"x-functions-key": "et"}),
    ]
    for target, headers in accepted:
        assert dispatcher.dispatch("POST", target, {**JSON, **headers}, EVENT, "h").status == 200, headers
    for target, headers in refused:
        reply = dispatcher.dispatch("POST", target, {**JSON, **headers}, EVENT, "h")
        assert reply.status == 401 and reply.headers["WWW-Authenticate"], (target, headers)
    # The handlers ran knowing that the delivery was checked; outside a delivery nothing says so.
    assert seen == [({"id": "1"}, True)] * len(accepted)
    assert not access.delivery_checked()


def test_media_type_and_batch_size_are_checked_before_anything_is_read() -> None:
    seen: list[Any] = []
    dispatcher = _dispatcher(seen, "fk", max_events_per_request=2)
    target = TARGET + "&code=fk"
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b", ""):
        reply = dispatcher.dispatch("POST", target, {"Content-Type": content_type}, EVENT, "h")
        assert (reply.status, json.loads(reply.body)["error"]["code"]) == (415, "UnsupportedMediaType")
    for content_type in (
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "Application/JSON; charset=utf-8",
    ):
        assert dispatcher.dispatch("POST", target, {"Content-Type": content_type}, EVENT, "h").status == 200
    three = json.dumps([{"id": str(n)} for n in range(3)]).encode()
    reply = dispatcher.dispatch("POST", target, JSON, three, "h")
    error = json.loads(reply.body)["error"]
    assert (reply.status, error["code"]) == (413, "PayloadTooLarge")
    assert "3 events in one request, over the limit of 2 (ACRGUARD_MAX_EVENTS_PER_REQUEST)" in error["message"]
    assert len(seen) == 3  # the three accepted media types, one event each; nothing of the refused ones


# --------------------------------------------------------------------------------------------------
# serve's own key


def test_the_key_is_made_once_with_mode_600_and_read_back(tmp_path: Path) -> None:
    made = load_or_create(tmp_path / "data")
    assert made.new and len(made.key) >= 32 and made.path == tmp_path / "data" / "api-key"
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    again = load_or_create(tmp_path / "data")
    assert (again.key, again.new) == (made.key, False)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["api-key"]  # nothing left aside


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda p: (p.write_text("k" * 40), p.chmod(0o640)), "readable by others (mode 640); chmod 600 it"),
        (lambda p: (p.write_text(""), p.chmod(0o600)), "holds no key"),
        (lambda p: p.symlink_to(p.parent / "elsewhere"), "Too many levels of symbolic links"),
        (lambda p: p.mkdir(), "not a regular file"),
        (lambda p: os.mkfifo(p, 0o600), "not a regular file"),
    ],
)
def test_a_key_file_that_cannot_be_trusted_is_an_error(tmp_path: Path, prepare: Any, message: str) -> None:
    (tmp_path / "elsewhere").write_text("k" * 40)
    prepare(tmp_path / "api-key")
    with pytest.raises(KeyFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_or_create(tmp_path)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_serve_without_key_or_token_uses_its_own_key_and_says_so_once(tmp_path: Path) -> None:
    said: list[str] = []
    store = tmp_path / "state" / "store.sqlite"
    args = _args("--store", str(store), "--queue", str(tmp_path / "q.sqlite"))
    first = serve_config(args, Settings(), announce=said.append)
    key = first.settings.api_key
    assert key and (store.parent / "api-key").read_text().strip() == key
    assert said == [
        "acrguard serve: no ACRGUARD_API_KEY or ACRGUARD_API_TOKEN set; generated an API key, send it as "
        f"x-api-key: {key} (kept in {store.parent / 'api-key'}, mode 600, and used again on the next start)"
    ]
    second = serve_config(args, Settings(), announce=said.append)
    assert second.settings.api_key == key
    assert said[1] == f"acrguard serve: API key (x-api-key) from {store.parent / 'api-key'}"
    # A configured key or token is used as it is: nothing is made.
    other = tmp_path / "other" / "store.sqlite"
    for configured in (Settings(api_key="mine"), Settings(api_token="tok")):
        config = serve_config(_args("--store", str(other), "--queue", "q"), configured, announce=said.append)
        assert (config.settings.api_key, config.settings.api_token) == (configured.api_key, configured.api_token)
    assert not (other.parent / "api-key").exists() and len(said) == 2


def test_the_data_directory(tmp_path: Path) -> None:
    from scanner.cli.serve import DEFAULT_DIR

    assert data_dir(str(tmp_path / "s.sqlite")) == tmp_path
    assert data_dir(f"sqlite:///{tmp_path}/s.sqlite") == tmp_path
    assert data_dir("postgresql://u@127.0.0.1/db") == DEFAULT_DIR
    assert data_dir(None) == DEFAULT_DIR


def test_the_key_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        made = load_or_create(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
