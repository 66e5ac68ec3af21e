"""The production fetch step: the sandboxed scan job (`scanner.jobs.job`) for a queued request. The child
prints the exact inventory (`scanner.codec`'s form), checked key by key on this side, so what the store
keeps re-matches on a rescan exactly like the first scan."""

from __future__ import annotations

from scanner.inventory import ScanOptions
from scanner.jobs.sandbox import JobLimits, SandboxRunner
from scanner.models import Inventory
from scanner.queue.interface import ScanRequest
from scanner.service.pipeline import FetchAndInventory


def request_reference(request: ScanRequest) -> str:
    """Pinned by digest: a tag may have moved since the push."""
    return f"docker://{request.registry}/{request.repository}@{request.digest}"


def sandboxed_fetch(
    runner: SandboxRunner, options: ScanOptions | None = None, limits: JobLimits | None = None
) -> FetchAndInventory:
    options = options or ScanOptions()
    limits = limits or JobLimits()

    def fetch(request: ScanRequest) -> Inventory:
        # Imported here: the job pulls in the registry SDK, which event handling never needs.
        from scanner.jobs.job import scan_job_inventory

        return scan_job_inventory(request_reference(request), options, runner, limits)

    return fetch
