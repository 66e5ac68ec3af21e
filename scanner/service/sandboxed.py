"""The production fetch step: the sandboxed scan job (`scanner.sandbox.job`) for a queued request. The child
prints the exact inventory (`scanner.model.codec`'s form), checked key by key on this side, so what the store
keeps re-matches on a rescan exactly like the first scan. With the layer-chain cache `process_scan` passes
(`scanner.inventory.chain_cache`), an image whose full layer chain was scanned before is neither fetched nor
parsed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
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
    """The sandboxed job per request; plain HTTP only for the registries named insecure."""

    def __init__(
        self, runner: SandboxRunner, options: ScanOptions, limits: JobLimits, insecure_registries: Iterable[str] = ()
    ) -> None:
        self.runner = runner
        self.options = options
        self.insecure = replace(options, registry=replace(options.registry, insecure=True))
        self.limits = limits
        self.insecure_registries = frozenset(insecure_registries)

    def with_cache(self, request: ScanRequest, cache: LayerChainCache | None) -> Inventory:
        # Imported here: the job pulls in the registry SDK, which event handling never needs.
        from scanner.sandbox.job import scan_job_inventory

        options = self.insecure if request.registry in self.insecure_registries else self.options
        return scan_job_inventory(request_reference(request), options, self.runner, self.limits, cache)


def sandboxed_fetch(
    runner: SandboxRunner,
    options: ScanOptions | None = None,
    limits: JobLimits | None = None,
    insecure_registries: Iterable[str] = (),
) -> SandboxedFetch:
    return SandboxedFetch(runner, options or ScanOptions(), limits or JobLimits(), insecure_registries)


def make_sandboxed_fetch(runner_name: str, settings: Settings) -> SandboxedFetch:
    """The sandboxed job as the fetch step (`process_scan` gives it the layer-chain cache over the store)
    with the configured image and job limits and registry credentials, plain HTTP only for the registries
    named insecure."""
    runner = make_runner(runner_name, limit_args(settings.limits), "acrguard-job:latest")
    options = ScanOptions(limits=settings.limits, registry=RegistryOptions().with_settings(settings))
    return sandboxed_fetch(runner, options, JobLimits.from_settings(settings), settings.insecure_registries)
