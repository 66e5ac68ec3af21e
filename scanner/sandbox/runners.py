"""Runners by name (`bubblewrap`, `docker`, `none`), and the image limits passed to the child as options."""

from __future__ import annotations

from collections.abc import Sequence

from scanner.model.limits import Limits
from scanner.sandbox.errors import JobError
from scanner.sandbox.runner import SandboxRunner

RUNNERS = ("bubblewrap", "docker", "none")


def make_runner(name: str, scan_args: Sequence[str], docker_image: str, *, warm: bool = False) -> SandboxRunner:
    """`warm`: a long-lived runner (the service's) starts each next bubblewrap child ahead (`scanner.sandbox.warm`)."""
    if name == "bubblewrap":
        from scanner.sandbox.bubblewrap import BubblewrapRunner

        return BubblewrapRunner(scan_args=scan_args, warm=warm)
    if name == "docker":
        from scanner.sandbox.docker_runner import DockerRunner

        return DockerRunner(docker_image, scan_args=scan_args)
    if name == "none":
        from scanner.sandbox.direct import DirectRunner

        return DirectRunner(scan_args=scan_args)
    raise JobError(f"job: unknown runner '{name}' (known: {', '.join(RUNNERS)})")


def limit_args(limits: Limits) -> list[str]:
    """Every image limit as the child's own `--limit` option: its environment carries none of our settings,
    and the values arrive whole rather than as differences from defaults the child's version might not
    share."""
    return [f"--limit={name}={getattr(limits, name)}" for name in Limits.names()]
