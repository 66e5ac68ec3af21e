"""Guessing the API key through the login form, routed as serve routes it: five failures from one address
and the sixth attempt (even with the right key) is a 429 in the API's error shape with Retry-After; other
addresses still sign in; a success clears the address's failures; everyone together is limited too."""

from __future__ import annotations

import json
from pathlib import Path

from scanner.service import login_limits
from tests.azure.manage_support import KEY
from tests.dashboard.support import Browser


def attempt(key: str, address: str) -> tuple[int, dict[str, str], bytes]:
    reply = Browser().post(
        "/api/dashboard/login", {"key": key, "next": "/api/dashboard"}, **{"X-Forwarded-For": address}
    )
    return reply.status, dict(reply.headers), reply.body


def test_five_failures_then_429_with_retry_after(manage_env: Path) -> None:
    for _ in range(login_limits.PER_ADDRESS):
        assert attempt("guess", "198.51.100.7")[0] == 401
    status, headers, body = attempt(KEY, "198.51.100.7")  # the right key, too late
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= login_limits.WINDOW_SECONDS
    error = json.loads(body)["error"]
    assert error["code"] == "TooManyRequests" and "try again in" in error["message"]
    assert attempt(KEY, "203.0.113.9")[0] == 303  # another address is not held back


def test_a_success_resets_the_address(manage_env: Path) -> None:
    for _ in range(login_limits.PER_ADDRESS - 1):
        assert attempt("guess", "198.51.100.8")[0] == 401
    assert attempt(KEY, "198.51.100.8")[0] == 303
    for _ in range(login_limits.PER_ADDRESS - 1):
        assert attempt("guess", "198.51.100.8")[0] == 401
    assert attempt(KEY, "198.51.100.8")[0] == 303


def test_failures_from_many_addresses_meet_the_overall_limit(manage_env: Path) -> None:
    for n in range(login_limits.OVERALL):
        assert attempt("guess", f"192.0.2.{n}")[0] == 401
    assert attempt(KEY, "192.0.2.250")[0] == 429
