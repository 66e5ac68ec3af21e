"""`--runner none`: no namespaces, but the same allow-listed environment and resource limits.

For development and for the Container Apps job, where the container itself is the isolation boundary
(no network egress but the registry, its own identity) and user namespaces are usually unavailable.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from scanner.sandbox.runner import JobLimits, SandboxResult, SandboxRunner, minimal_env, run_limited, scanner_argv


class DirectRunner(SandboxRunner):
    name = "none"

    def __init__(self, command: Sequence[str] | None = None, *, scan_args: Sequence[str] = ()) -> None:
        self.command = list(command) if command else None
        self.scan_args = list(scan_args)

    def run(self, layout_dir: Path, limits: JobLimits) -> SandboxResult:
        argv = self.command or scanner_argv(sys.executable, f"oci:{layout_dir}", self.scan_args)
        return run_limited(argv, limits, env=minimal_env(), cwd=str(layout_dir))
