"""Helpers shared by the queue tests and their fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scanner.queue import ScanQueue, ScanRequest
from scanner.queue.interface import Reason

REPO = Path(__file__).resolve().parents[2]

OpenQueue = Callable[..., ScanQueue]


def make_request(n: int = 0, reason: Reason = "push") -> ScanRequest:
    return ScanRequest.create("myacr.azurecr.io", "team/app", f"sha256:{n:064x}", tag=f"v{n}", reason=reason)
