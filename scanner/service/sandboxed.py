"""The production fetch step: the sandboxed scan job (`scanner.sandbox.job`) for a queued request. The child
prints the exact inventory (`scanner.model.codec`'s form), checked key by key on this side, so what the store
keeps re-matches on a rescan exactly like the first scan. With the layer-chain cache `process_scan` passes
(`scanner.inventory.chain_cache`), an image whose full layer chain was scanned before is neither fetched nor
parsed; with the layer-prefix cache (`scanner.inventory.prefix_cache`, on disk), an image sharing its first
layers with one scanned before fetches and parses only the layers above them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from scanner import __version__
from scanner.image.registry_options import RegistryOptions
from scanner.inventory.build import ScanOptions
from scanner.inventory.prefix_cache import LayerPrefixCache, PrefixStore
from scanner.model.settings import Settings
from scanner.model.types import Inventory
from scanner.queue.interface import ScanRequest
from scanner.sandbox.runner import JobLimits, SandboxRunner
from scanner.sandbox.runners import limit_args, make_runner
from scanner.service.pipeline import CachingFetch, current_detector_versions

if TYPE_CHECKING:
    from scanner.inventory.chain_cache import LayerChainCache


def request_reference(request: ScanRequest) -> str:
    """Pinned by digest: a tag may have moved since the push."""
    return f"docker://{request.registry}/{request.repository}@{request.digest}"


class SandboxedFetch(CachingFetch):
    """The sandboxed job per request, reaching only the registries `options.registry` allows (each with its
    own credential and scheme)."""

    def __init__(
        self, runner: SandboxRunner, options: ScanOptions, limits: JobLimits, prefixes: PrefixStore | None = None
    ) -> None:
        self.runner = runner
        self.options = options
        self.limits = limits
        self.prefixes = prefixes
        # Each worker thread's last scan's use of the prefix cache (how many layers it reused), for that
        # scan's timings: the service's workers share this object.
        self._last = threading.local()

    def with_cache(self, request: ScanRequest, cache: LayerChainCache | None) -> Inventory:
        # Imported here: the job pulls in the registry SDK, which event handling never needs.
        from scanner.sandbox.job import scan_job_inventory

        prefixes = None
        if self.prefixes is not None:
            # The versions that make a stored inventory current make a stored prefix state current too.
            if cache is not None:
                prefixes = LayerPrefixCache(self.prefixes, cache.scanner_version, cache.detector_versions)
            else:
                prefixes = LayerPrefixCache(self.prefixes, __version__, current_detector_versions())
        self._last.prefix = prefixes
        reference = request_reference(request)
        return scan_job_inventory(reference, self.options, self.runner, self.limits, cache, prefixes)

    def cache_timings(self) -> dict[str, float]:
        # The layers of the longest cached prefix: neither fetched nor parsed by the last scan.
        prefixes: LayerPrefixCache | None = getattr(self._last, "prefix", None)
        return {"layer_prefix_reused": float(prefixes.reused)} if prefixes is not None else {}


def sandboxed_fetch(
    runner: SandboxRunner,
    options: ScanOptions | None = None,
    limits: JobLimits | None = None,
    prefixes: PrefixStore | None = None,
) -> SandboxedFetch:
    return SandboxedFetch(runner, options or ScanOptions(), limits or JobLimits(), prefixes)


def prefix_store(settings: Settings) -> PrefixStore | None:
    """The configured layer-prefix cache directory, None when it is off (ACRGUARD_PREFIX_CACHE_MB=0)."""
    if settings.prefix_cache_mb <= 0:
        return None
    directory = Path(settings.prefix_cache_dir) if settings.prefix_cache_dir else _default_prefix_dir()
    return PrefixStore(directory, settings.prefix_cache_mb * 1024 * 1024)


def _default_prefix_dir() -> Path:
    return Path.home() / ".cache" / "acrguard" / "layer-prefixes"


def make_sandboxed_fetch(runner_name: str, settings: Settings) -> SandboxedFetch:
    """The sandboxed job as the fetch step (`process_scan` gives it the layer-chain cache over the store)
    with the configured image and job limits (the child gets every image limit as an argument) and the
    configured registries with their credentials; no other registry is reached."""
    # Warm: the service scans one image after another, so the next child starts while it waits for a push.
    runner = make_runner(runner_name, limit_args(settings.limits), "acrguard-job:latest", warm=True)
    options = ScanOptions(limits=settings.limits, registry=RegistryOptions().with_settings(settings))
    return sandboxed_fetch(runner, options, JobLimits.from_settings(settings), prefix_store(settings))
