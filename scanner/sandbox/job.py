"""One scan job: fetch (trusted) into a scratch layout, parse in the sandbox, check what comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scanner.image.resolve import ResolvedImage
from scanner.image.tree_state import StateError
from scanner.inventory.build import ScanOptions, Segment
from scanner.inventory.chain_cache import LayerChainCache
from scanner.inventory.detectors.plugins import default_registry
from scanner.inventory.prefix_cache import LayerPrefixCache, Plan
from scanner.inventory.prefix_state import MAGIC
from scanner.model.types import Inventory
from scanner.sandbox.errors import JobError
from scanner.sandbox.fetch import FetchedImage, copy_image, open_image
from scanner.sandbox.output import parse_inventory
from scanner.sandbox.runner import JobLimits, SandboxResult, SandboxRunner
from scanner.sandbox.scratch import scratch_directory
from scanner.sandbox.segment import EXIT_PREFIX_MISSING, clear_segment, write_segment


def run_scan_job(reference: str, options: ScanOptions, runner: SandboxRunner, limits: JobLimits) -> dict[str, Any]:
    """The inventory document of `reference` (what `acrguard sbom --format json` prints), produced without
    this process parsing any layer."""
    from scanner.report.inventory_json import inventory_dict

    return inventory_dict(scan_job_inventory(reference, options, runner, limits))


def scan_job_inventory(
    reference: str,
    options: ScanOptions,
    runner: SandboxRunner,
    limits: JobLimits,
    cache: LayerChainCache | None = None,
    prefixes: LayerPrefixCache | None = None,
) -> Inventory:
    """The exact inventory of `reference` (nothing dropped, for storage and rescans), parsed in the sandbox.
    With a `cache`, manifest and config are resolved first: on a hit no layer blob is fetched and no
    sandbox started; on a miss the result is saved under the image's chain key. With `prefixes` (the
    layer-prefix cache), the layers of the longest cached prefix are neither fetched nor parsed, and the
    states at the plan's boundaries are saved (one sandboxed child per segment)."""
    # Removed after the attempt whatever happens; if the process is killed, at the next start-up.
    with scratch_directory(options.scratch_dir) as scratch:
        with open_image(reference, options) as opened:
            key = cache.key(opened.image, options.limits) if cache is not None else None
            found = cache.lookup(key, opened.image) if cache is not None else None
            if found is not None:
                return found
            image = opened.image
            plan = prefixes.plan(image, options.limits) if prefixes is not None else None
            layout = scratch / "layout"
            layout.mkdir()
            fetched = copy_image(opened, layout, plan.start if plan is not None else 0)
        # The registry connection is closed before the parse, which may take minutes.
        inventory: Inventory | None = None
        if plan is not None and prefixes is not None and (plan.start or plan.stops):
            inventory = _segments(layout, runner, limits, plan, prefixes, image, options, fetched)
        if inventory is None:
            if plan is not None and plan.start:
                # The restored state could not replay this image: every layer, as without the cache.
                layout = scratch / "layout-full"
                layout.mkdir()
                with open_image(reference, options) as opened:
                    fetched = copy_image(opened, layout)
                if prefixes is not None:
                    prefixes.reused = 0
            elif plan is not None:
                layout.chmod(0o755)
                clear_segment(layout)  # every layer is there: replay them in one child, from no state
            inventory = _whole(layout, runner, limits, fetched)
    if cache is not None:
        cache.save(key, inventory)
    return inventory


def _whole(layout: Path, runner: SandboxRunner, limits: JobLimits, fetched: FetchedImage) -> Inventory:
    _read_only(layout)
    result = runner.run(layout, limits)
    check_result(result, limits)
    return parse_inventory(result.stdout, limits.output_bytes, fetched)


def _segments(
    layout: Path,
    runner: SandboxRunner,
    limits: JobLimits,
    plan: Plan,
    prefixes: LayerPrefixCache,
    image: ResolvedImage,
    options: ScanOptions,
    fetched: FetchedImage,
) -> Inventory | None:
    """The replay in segments, one child each: from the plan's start to each boundary (its state checked and
    kept), then to the end. None when a restored state cannot replay this image (replay it whole instead)."""
    registry = default_registry()
    max_state = min(prefixes.store.max_entry_bytes, limits.output_bytes)
    start, state = plan.start, plan.state
    for stop in [*plan.stops, None]:
        layout.chmod(0o755)
        write_segment(layout, Segment(start, state, stop, max_state))
        _read_only(layout)
        result = runner.run(layout, limits)
        if result.exit_code == EXIT_PREFIX_MISSING and result.killed_by is None and state is not None:
            return None
        check_result(result, limits)
        if not result.stdout.startswith(MAGIC):
            # The inventory: the last segment, or a state too large to keep (the child went on to the end).
            return parse_inventory(result.stdout, limits.output_bytes, fetched)
        if stop is None:
            raise JobError("sandbox output: a prefix state where the inventory was expected")
        try:
            prefixes.check(stop, result.stdout, image, registry, options.limits)
        except StateError as exc:
            raise JobError(f"sandbox output: prefix state: {exc}") from None
        prefixes.save(plan, stop, result.stdout)
        start, state = stop, result.stdout
    raise AssertionError("unreachable: the last segment has no stop")


def check_result(result: SandboxResult, limits: JobLimits) -> None:
    """A kill names its limit; any other failure passes on the child's last line (its own one-line error)."""
    if result.killed_by == "sigkill":
        raise JobError(
            f"sandbox: the scan was killed by SIGKILL (cpu_seconds={limits.cpu_seconds} hard limit, out of memory,"
            " or killed from outside)"
        )
    if result.killed_by is not None:
        setting = _LIMIT_SETTING.get(result.killed_by, "")
        detail = f" (limit {setting}={getattr(limits, setting)})" if setting else ""
        raise JobError(f"sandbox: the scan was stopped by the {result.killed_by} limit{detail}")
    if result.exit_code != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        last = lines[-1][:500] if lines else f"exit status {result.exit_code}"
        raise JobError(f"sandbox: the scan failed: {last.removeprefix('acrguard: ')}")


_LIMIT_SETTING = {
    "memory": "memory_bytes",
    "cpu-time": "cpu_seconds",
    "wall-time": "wall_seconds",
    "file-size": "file_size_bytes",
    "open-files": "open_files",
    "output-size": "output_bytes",
}


def _read_only(root: Path) -> None:
    """Mode 0444/0555 as well as the read-only mount: a runner without mounts (`none`) still cannot write. The
    layout holds only what `copy_image` wrote (regular files and directories, no links)."""
    for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        path.chmod(0o555 if path.is_dir() else 0o444)
    root.chmod(0o555)
