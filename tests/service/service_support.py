"""Helpers shared by the service tests (a unique module name: other test folders have a `support.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func

from scanner.image.registry_options import Registry, RegistryAccess
from scanner.model.types import Inventory
from scanner.queue import ScanRequest

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "azure-events"


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def grid_event(raw: dict[str, Any]) -> func.EventGridEvent:
    """An Event Grid sample (`load_event`) as the Functions host hands it to an Event Grid trigger."""
    return func.EventGridEvent(
        id=raw["id"],
        data=raw["data"],
        topic=raw["topic"],
        subject=raw["subject"],
        event_type=raw["eventType"],
        event_time=datetime(2021, 9, 8, 6, 37, 45, tzinfo=UTC),
        data_version=raw["dataVersion"],
    )


def allowing(*hosts: str) -> RegistryAccess:
    """The allow-list of a test whose events name `hosts` (anonymous, over plain HTTP as the local registry)."""
    return RegistryAccess(tuple(Registry(host, insecure=True) for host in hosts))


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
