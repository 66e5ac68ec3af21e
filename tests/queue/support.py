"""Helpers shared by the queue tests and their fixtures."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from scanner.queue import ScanQueue, ScanRequest, open_queue
from scanner.queue.interface import Reason

REPO = Path(__file__).resolve().parents[2]

OpenQueue = Callable[..., ScanQueue]


def make_request(n: int = 0, reason: Reason = "push") -> ScanRequest:
    return ScanRequest.create("myacr.azurecr.io", "team/app", f"sha256:{n:064x}", tag=f"v{n}", reason=reason)


def wait_out_a_lease(location: str, queue_name: str, lease: int, timeout: float = 120) -> None:
    """Returns once a lease of `lease` seconds taken before the call has run out by the queue service's own
    clock (SQLite's machine time, or Azurite's), observed rather than slept on: a witness message in a queue
    of its own is leased for as long now, and received again once it is visible again. A lease taken
    earlier ends no later. `timeout` bounds the wait against a hang; it is no speed requirement."""
    with open_queue(location, f"{queue_name}-w") as witness:
        witness.send(make_request(0))
        (leased,) = witness.receive(1, lease)
        deadline = time.monotonic() + timeout
        while not (again := witness.receive(1, lease)):
            assert time.monotonic() < deadline, f"a {lease} s lease still held after {timeout:.0f} s"
            time.sleep(0.05)
        assert again[0].id == leased.id
        witness.complete(again[0])
