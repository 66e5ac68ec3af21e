"""One scan job: fetch (trusted) into a scratch layout, parse in the sandbox, check what comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scanner.inventory.build import ScanOptions
from scanner.inventory.chain_cache import LayerChainCache
from scanner.model.types import Inventory
from scanner.sandbox.errors import JobError
from scanner.sandbox.fetch import copy_image, open_image
from scanner.sandbox.output import parse_inventory
from scanner.sandbox.runner import JobLimits, SandboxResult, SandboxRunner
from scanner.sandbox.scratch import scratch_directory


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
) -> Inventory:
    """The exact inventory of `reference` (nothing dropped, for storage and rescans), parsed in the sandbox.
    With a `cache`, manifest and config are resolved first: on a hit no layer blob is fetched and no
    sandbox started; on a miss the result is saved under the image's chain key."""
    # Removed after the attempt whatever happens; if the process is killed, at the next start-up.
    with scratch_directory(options.scratch_dir) as scratch:
        with open_image(reference, options) as opened:
            key = cache.key(opened.image, options.limits) if cache is not None else None
            found = cache.lookup(key, opened.image) if cache is not None else None
            if found is not None:
                return found
            layout = scratch / "layout"
            layout.mkdir()
            fetched = copy_image(opened, layout)
        # The registry connection is closed before the parse, which may take minutes.
        _read_only(layout)
        result = runner.run(layout, limits)
        check_result(result, limits)
        inventory = parse_inventory(result.stdout, limits.output_bytes, fetched)
    if cache is not None:
        cache.save(key, inventory)
    return inventory


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
