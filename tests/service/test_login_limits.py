"""The sign-in limiter's arithmetic on a clock the test moves: per address, overall, reset by a success,
the window sliding, the addresses held bounded, and the client address read from X-Forwarded-For."""

from __future__ import annotations

from scanner.service.login_limits import LoginLimiter, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_from_one_address_block_it_for_the_rest_of_the_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_address=5, overall=100, window=60, clock=clock)
    for _ in range(4):
        limiter.failed("198.51.100.7")
        clock.now += 1
    assert limiter.retry_after("198.51.100.7") is None
    limiter.failed("198.51.100.7")  # the fifth, 4 s after the first
    assert limiter.retry_after("198.51.100.7") == 56
    assert limiter.retry_after("203.0.113.9") is None  # another address is not blocked
    clock.now += 55.5
    assert limiter.retry_after("198.51.100.7") == 1  # rounded up, never 0
    clock.now += 0.5
    assert limiter.retry_after("198.51.100.7") is None  # the first failure left the window


def test_a_success_clears_the_address() -> None:
    limiter = LoginLimiter(per_address=2, clock=Clock())
    limiter.failed("a")
    limiter.succeeded("a")
    limiter.failed("a")
    assert limiter.retry_after("a") is None
    limiter.failed("a")
    assert limiter.retry_after("a") == 60


def test_the_overall_limit_blocks_every_address() -> None:
    limiter = LoginLimiter(per_address=5, overall=3, clock=Clock())
    for address in ("a", "b", "c"):
        limiter.failed(address)
    assert limiter.retry_after("never-seen") == 60
    limiter.succeeded("a")  # a success does not reset what everyone failed
    assert limiter.retry_after("a") == 60


def test_addresses_are_held_in_a_bounded_lru() -> None:
    limiter = LoginLimiter(per_address=1, overall=10**6, max_addresses=100, clock=Clock())
    limiter.failed("first")
    for n in range(1000):
        limiter.failed(f"10.0.{n // 256}.{n % 256}")
    assert limiter.tracked() == 100
    assert limiter.retry_after("first") is None  # evicted, the oldest
    assert limiter.retry_after("10.0.3.231") == 60  # the newest is held


def test_client_address_is_the_last_forwarded_entry() -> None:
    assert client_address({}) == "direct"
    assert client_address({"X-Forwarded-For": "203.0.113.1"}) == "203.0.113.1"
    assert client_address({"x-forwarded-for": "6.6.6.6, 198.51.100.7:50123"}) == "198.51.100.7"
    assert client_address({"X-Forwarded-For": "[2001:db8::1]:443"}) == "2001:db8::1"
    assert client_address({"X-Forwarded-For": "2001:db8::2"}) == "2001:db8::2"
    assert len(client_address({"X-Forwarded-For": "x" * 1000})) == 64
