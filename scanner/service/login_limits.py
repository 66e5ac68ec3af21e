"""How many failed sign-ins the dashboard takes before it refuses to look at more: per client address and
for the whole process, over a sliding window, so that the API key cannot be guessed at line speed.

`PER_ADDRESS` failures within `WINDOW_SECONDS` from one address, or `OVERALL` from all addresses together,
and further attempts are refused (the caller answers 429 with `Retry-After`) until the oldest of those
failures leaves the window. A success clears its address's failures (not the overall count: a guesser who
also holds a key must not reset it). The addresses are kept in an LRU of at most `MAX_ADDRESSES`, so a
flood from many addresses costs bounded memory (it still meets the overall limit).

The address is the client's as the front end saw it: App Service's front end and `acrguard serve` append
the connection's peer to `X-Forwarded-For`, so the last entry is the one no client can write (behind a
further proxy that proxy is the peer, and its clients share one address); without the header every request
counts as one address, "direct". The counts are per process: each instance counts its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

PER_ADDRESS = 5
OVERALL = 50
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000
_MAX_ADDRESS_CHARS = 64


def client_address(headers: Mapping[str, str]) -> str:
    """The last `X-Forwarded-For` entry without its port (IPv4 `a.b.c.d:port`, IPv6 `[…]:port`), bounded;
    "direct" without one."""
    lowered = {k.lower(): v for k, v in headers.items()}
    entry = lowered.get("x-forwarded-for", "").rsplit(",", 1)[-1].strip()
    if entry.startswith("["):
        entry = entry[1:].split("]", 1)[0]
    elif entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    return entry[:_MAX_ADDRESS_CHARS] or "direct"


class LoginLimiter:
    def __init__(
        self,
        per_address: int = PER_ADDRESS,
        overall: int = OVERALL,
        window: float = WINDOW_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_address, self.overall, self.window, self.max_addresses = per_address, overall, window, max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._addresses: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque(maxlen=overall)

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again (at least 1), or None when it may now."""
        with self._lock:
            now = self._clock()
            waits = [self._wait(self._all, self.overall, now)]
            failures = self._addresses.get(address)
            if failures is not None:
                waits.append(self._wait(failures, self.per_address, now))
            longest = max((w for w in waits if w is not None), default=None)
            return None if longest is None else max(1, math.ceil(longest))

    def failed(self, address: str) -> None:
        with self._lock:
            now = self._clock()
            self._all.append(now)
            failures = self._addresses.get(address)
            if failures is None:
                failures = self._addresses[address] = deque(maxlen=self.per_address)
                while len(self._addresses) > self.max_addresses:
                    self._addresses.popitem(last=False)
            self._addresses.move_to_end(address)
            failures.append(now)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._addresses.pop(address, None)

    def tracked(self) -> int:
        """Addresses with failures held (for tests of the bound)."""
        with self._lock:
            return len(self._addresses)

    def _wait(self, failures: deque[float], limit: int, now: float) -> float | None:
        # The deque holds the newest `limit` failures: full and its oldest still in the window means blocked.
        if len(failures) < limit:
            return None
        wait = failures[0] + self.window - now
        return wait if wait > 0 else None


# The process's limiter, shared by the login form and the Entra ID callback.
LIMITER = LoginLimiter()
