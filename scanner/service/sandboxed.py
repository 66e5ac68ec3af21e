"""The production fetch step: the sandboxed scan job (`scanner.sandbox.job`) for a queued request. The child
prints the exact inventory (`scanner.model.codec`'s form), checked key by key on this side, so what the store
keeps re-matches on a rescan exactly like the first scan. With the layer-chain cache `process_scan` passes
(`scanner.inventory.chain_cache`), an image whose full layer chain was scanned before is neither fetched nor
parsed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scanner.image.registry_options import RegistryOptions
from scanner.inventory.build import ScanOptions
from scanner.model.settings import Settings
from scanner.model.types import Inventory
from scanner.queue.interface import ScanRequest
from scanner.sandbox.runner import JobLimits, SandboxRunner
from scanner.sandbox.runners import limit_args, make_runner
from scanner.service.pipeline import CachingFetch

if TYPE_CHECKING:
    from scanner.inventory.chain_cache import LayerChainCache


def request_reference(request: ScanRequest) -> str:
    """Pinned by digest: a tag may have moved since the push."""
    return f"docker://{request.registry}/{request.repository}@{request.digest}"


class SandboxedFetch(CachingFetch):
    """The sandboxed job per request, reaching only the registries `options.registry` allows (each with its
    own credential and scheme)."""

    def __init__(self, runner: SandboxRunner, options: ScanOptions, limits: JobLimits) -> None:
        self.runner = runner
        self.options = options
        self.limits = limits

    def with_cache(self, request: ScanRequest, cache: LayerChainCache | None) -> Inventory:
        # Imported here: the job pulls in the registry SDK, which event handling never needs.
        from scanner.sandbox.job import scan_job_inventory

        return scan_job_inventory(request_reference(request), self.options, self.runner, self.limits, cache)


def sandboxed_fetch(
    runner: SandboxRunner, options: ScanOptions | None = None, limits: JobLimits | None = None
) -> SandboxedFetch:
    return SandboxedFetch(runner, options or ScanOptions(), limits or JobLimits())


def make_sandboxed_fetch(runner_name: str, settings: Settings) -> SandboxedFetch:
    """The sandboxed job as the fetch step (`process_scan` gives it the layer-chain cache over the store)
    with the configured image and job limits (the child gets every image limit as an argument) and the
    configured registries with their credentials; no other registry is reached."""
    runner = make_runner(runner_name, limit_args(settings.limits), "acrguard-job:latest")
    options = ScanOptions(limits=settings.limits, registry=RegistryOptions().with_settings(settings))
    return sandboxed_fetch(runner, options, JobLimits.from_settings(settings))
