"""Docker runner: the scanner image with no network, a read-only root, no capabilities, nobody's uid and
the layout bind-mounted read-only. UNTESTED against a real engine (none runs where this was written):
only the argument building is unit-tested.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scanner.sandbox.errors import JobError
from scanner.sandbox.runner import (
    CHILD_MODULE,
    INPUT_DIR,
    JobLimits,
    SandboxResult,
    SandboxRunner,
    classify,
    minimal_env,
)

DEFAULT_IMAGE = "acrguard-job:latest"
PIDS_LIMIT = 256


class DockerRunner(SandboxRunner):
    name = "docker"

    def __init__(self, image: str = DEFAULT_IMAGE, *, scan_args: Sequence[str] = (), client: Any = None) -> None:
        self.image = image
        self.scan_args = list(scan_args)
        self._client = client

    def run_kwargs(self, layout_dir: Path, limits: JobLimits) -> dict[str, Any]:
        """Keyword arguments for `containers.run` (pure)."""
        nofile = {"Name": "nofile", "Soft": limits.open_files, "Hard": limits.open_files}
        fsize = {"Name": "fsize", "Soft": limits.file_size_bytes, "Hard": limits.file_size_bytes}
        cpu = {"Name": "cpu", "Soft": limits.cpu_seconds, "Hard": limits.cpu_seconds + 5}
        return {
            "image": self.image,
            "entrypoint": ["python", "-I", "-B", "-m", CHILD_MODULE],
            "command": [f"oci:{INPUT_DIR}", *self.scan_args],
            "network_mode": "none",
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "mem_limit": limits.memory_bytes,
            "memswap_limit": limits.memory_bytes,  # no swap on top of the memory limit
            "pids_limit": PIDS_LIMIT,
            "ulimits": [_ulimit(nofile), _ulimit(fsize), _ulimit(cpu)],
            "user": "65534:65534",
            "environment": minimal_env(),
            "volumes": {str(layout_dir): {"bind": INPUT_DIR, "mode": "ro"}},
            "tmpfs": {"/tmp": f"rw,noexec,nosuid,size={limits.tmp_bytes}"},
            "detach": True,
        }

    def run(self, layout_dir: Path, limits: JobLimits) -> SandboxResult:
        client = self._client or _docker_client()
        started = time.monotonic()
        container = client.containers.run(**self.run_kwargs(layout_dir, limits))
        killed_by = None
        try:
            try:
                status = container.wait(timeout=limits.wall_seconds)
                code = int(status.get("StatusCode", 1))
            except Exception:  # the SDK raises requests' ReadTimeout on the wall-time limit
                container.kill()
                killed_by, code = "wall-time", 137
            stdout = bytes(container.logs(stdout=True, stderr=False))[: limits.output_bytes + 1]
            stderr = bytes(container.logs(stdout=False, stderr=True))[-65536:]
            if killed_by is None and container.attrs.get("State", {}).get("OOMKilled"):
                killed_by = "memory"
        finally:
            container.remove(force=True)
        return SandboxResult(stdout, stderr, code, time.monotonic() - started, killed_by or classify(code, stderr))


def _ulimit(spec: dict[str, Any]) -> Any:
    from docker.types import Ulimit

    return Ulimit(name=spec["Name"], soft=spec["Soft"], hard=spec["Hard"])


def _docker_client() -> Any:
    try:
        import docker

        return docker.from_env()
    except Exception as exc:  # DockerException, missing socket: one line either way
        raise JobError(f"sandbox: cannot reach the Docker engine ({exc})") from None
