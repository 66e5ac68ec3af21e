"""Helpers shared by the service tests (a unique module name: other test folders have a `support.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.models import Inventory
from scanner.queue import ScanRequest

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "azure-events"


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


@dataclass
class CountingFetch:
    """The injected fetch step: inventories the local archive and records what it was asked for."""

    result: Inventory
    calls: list[ScanRequest] = field(default_factory=list)
    error: Exception | None = None

    def __call__(self, request: ScanRequest) -> Inventory:
        self.calls.append(request)
        if self.error is not None:
            raise self.error
        return self.result
