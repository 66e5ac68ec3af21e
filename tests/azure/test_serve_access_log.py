"""`acrguard serve` keeps uvicorn's per-request access log off unless `--access-log` asks for it: at the
expected lookup rates a log line per request is a cost paid on every lookup."""

from __future__ import annotations

import argparse

from scanner.cli.serve import add_serve_parser
from scanner.localhost.serve import http_server


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_access_log_is_opt_in() -> None:
    assert _parse().access_log is False
    assert _parse("--access-log").access_log is True


def test_the_uvicorn_server_gets_the_choice() -> None:
    assert http_server(object(), "127.0.0.1", 0).config.access_log is False
    assert http_server(object(), "127.0.0.1", 0, access_log=True).config.access_log is True
