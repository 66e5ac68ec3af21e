"""The runner interface and what every local runner shares: the child's environment, resource limits,
the wall-time kill of the whole process group, bounded capture of the child's output.

The child's stdout and stderr go to files the parent created outside the sandbox: RLIMIT_FSIZE then
bounds them like any other file the child writes, and the parent reads back at most `output_bytes`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from scanner.model.limits import Bounds, GiB, MiB
from scanner.model.settings import Settings
from scanner.sandbox.errors import JobError

# Where the layout appears inside a sandbox (bubblewrap, docker).
INPUT_DIR = "/input"


@dataclass(frozen=True)
class JobLimits(Bounds):
    """Bounds on the sandboxed child (the image limits of scanner.model.limits apply inside it as well)."""

    WHAT = "job limit"
    ERROR = JobError

    # Address space (RLIMIT_AS): a Python MemoryError, not the host's OOM killer. Container Apps default: 2Gi.
    memory_bytes: int = 2 * GiB
    # CPU seconds (RLIMIT_CPU, SIGXCPU then SIGKILL 5 s later).
    cpu_seconds: int = 300
    # Wall-clock seconds before the whole process group is killed.
    wall_seconds: int = 600
    # Largest file the child may write (RLIMIT_FSIZE): scratch spills and its own stdout.
    file_size_bytes: int = 1 * GiB
    # Open file descriptors (RLIMIT_NOFILE).
    open_files: int = 256
    # Size of the sandbox's /tmp (tmpfs: counted in memory, not in RLIMIT_AS, so bounded on its own).
    tmp_bytes: int = 2 * GiB
    # Inventory JSON read back from the child.
    output_bytes: int = 64 * MiB

    @classmethod
    def from_settings(cls, settings: Settings) -> JobLimits:
        """The defaults with the configured `ACRGUARD_JOB_LIMIT_<NAME>` overrides."""
        return cls().with_overrides(dict(settings.job_limits))


@dataclass(frozen=True)
class SandboxResult:
    stdout: bytes
    stderr: bytes
    exit_code: int
    duration: float
    killed_by: str | None  # None, or the limit that ended the child: memory, cpu-time, wall-time, ...


class SandboxRunner(ABC):
    """Runs the untrusted parse over a layout directory and hands back what it printed."""

    name: str

    @abstractmethod
    def run(self, layout_dir: Path, limits: JobLimits) -> SandboxResult:
        """Run the child over `layout_dir` (read-only to it) within `limits`."""


CHILD_MODULE = "scanner.sandbox.child"


def scanner_argv(python: str, image: str, scan_args: Sequence[str] = ()) -> list[str]:
    """The child's command (`scanner.sandbox.child`: the exact inventory as JSON). -I: no PYTHON* variables,
    no user site, no current directory on sys.path; -B: no bytecode writes (all it sees is read-only)."""
    return [python, "-I", "-B", "-m", CHILD_MODULE, image, *scan_args]


def minimal_env() -> dict[str, str]:
    """An allow-list, never a copy of the parent's: no credential variable can leak into the child."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def rlimit_preexec(limits: JobLimits) -> Callable[[], None]:
    """Set in the forked child before exec, so bwrap and everything it starts inherit them."""
    prctl = _prctl()  # looked up here, in the parent: dlopen/dlsym between fork and exec could deadlock
    parent = os.getpid()

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        # Soft limit sends SIGXCPU; the hard limit 5 s later is SIGKILL for a child that ignores it.
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # The child dies with the thread that started it: a job process killed mid-scan (its lease then
        # expires and another worker retries) must not leave an orphan parsing on. bwrap also has
        # --die-with-parent; this covers `--runner none` and bwrap's own start-up.
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            # The parent died between fork and prctl: the signal will never come, so go now.
            os._exit(1)
        # Python ignores SIGXFSZ; a C child should get EFBIG too rather than a core-less death.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int]:
    """prctl(2) from the C library already loaded into this process (Linux)."""
    import ctypes

    function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return function


@dataclass
class Started:
    """A child started by `start_limited`, not yet waited for (`finish_limited`)."""

    proc: subprocess.Popen[bytes]
    out: IO[bytes]
    err: IO[bytes]

    def discard(self) -> None:
        """Kill what is left of it and drop its output."""
        _kill_group(self.proc)
        self.close()

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.out.close()
        self.err.close()


def start_limited(
    argv: Sequence[str],
    limits: JobLimits,
    *,
    env: Mapping[str, str],
    pass_fds: Sequence[int] = (),
    cwd: str | None = None,
    stdin_pipe: bool = False,
) -> Started:
    """Start `argv` in a new process group with the rlimits; `stdin_pipe` gives it a pipe to wait on (a warm
    child, `scanner.sandbox.warm`), else /dev/null."""
    # Closed by `Started` (or below): they outlive this function while the child runs.
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env),
            cwd=cwd,
            pass_fds=tuple(pass_fds),
            start_new_session=True,  # its own process group: one killpg reaches every descendant
            preexec_fn=rlimit_preexec(limits),  # rlimits go between fork and exec
        )
    except OSError as exc:
        out.close()
        err.close()
        raise JobError(f"sandbox: cannot start {argv[0]}: {exc}") from None
    return Started(proc, out, err)


def finish_limited(started: Started, limits: JobLimits) -> SandboxResult:
    """Wait for a started child (killing its group at the wall-time limit) and read back its bounded output."""
    proc = started.proc
    begun = time.monotonic()
    timed_out = False
    try:
        timed_out = not _exited_within(proc, limits.wall_seconds)
    finally:
        _kill_group(proc)
    duration = time.monotonic() - begun
    try:
        stdout = _read_bounded(started.out, limits.output_bytes)
        stderr = _read_bounded(started.err, 64 * 1024)
    finally:
        started.close()
    code = proc.returncode
    killed_by = "wall-time" if timed_out else classify(code, stderr)
    if killed_by is None and len(stdout) > limits.output_bytes:
        killed_by = "output-size"
    return SandboxResult(stdout[: limits.output_bytes], stderr, code, duration, killed_by)


def run_limited(
    argv: Sequence[str],
    limits: JobLimits,
    *,
    env: Mapping[str, str],
    pass_fds: Sequence[int] = (),
    cwd: str | None = None,
) -> SandboxResult:
    """Start `argv` in a new process group with the rlimits; kill the group at the wall-time limit."""
    return finish_limited(start_limited(argv, limits, env=env, pass_fds=pass_fds, cwd=cwd), limits)


def _exited_within(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether the child exits within `seconds`, noticed the moment it does: `Popen.wait(timeout=…)` polls with
    sleeps doubling up to 50 ms, so a 32 ms scan was seen done at 63 ms about half the time. A pidfd becomes
    readable when its process exits; without one (an old kernel), the polling wait."""
    if proc.returncode is not None:
        return True  # reaped already: its pid may be another process's by now
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        watch = select.poll()
        watch.register(pidfd, select.POLLIN)
        if not watch.poll(max(seconds, 0) * 1000):
            return False
    finally:
        os.close(pidfd)
    proc.wait()
    return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the group (also after a normal exit: no stray grandchildren)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _read_bounded(handle: IO[bytes], limit: int) -> bytes:
    handle.seek(0)
    return handle.read(limit + 1)


# SIGKILL that the parent did not send: the RLIMIT_CPU hard limit or the kernel's out-of-memory killer.
_SIGNAL_LIMITS = {signal.SIGXCPU: "cpu-time", signal.SIGXFSZ: "file-size", signal.SIGKILL: "sigkill"}
_STDERR_LIMITS = (
    (b"MemoryError", "memory"),
    (b"Cannot allocate memory", "memory"),
    (b"out of memory", "memory"),
    # The dynamic loader's words when RLIMIT_AS leaves no room to map a shared library (an ImportError).
    (b"failed to map segment from shared object", "memory"),
    (b"File too large", "file-size"),
    (b"Too many open files", "open-files"),
)


def classify(code: int, stderr: bytes) -> str | None:
    """Which limit ended the child, from its exit status and last words; None for an ordinary exit."""
    # Popen reports a signal as -N; bwrap (and a shell) report a signalled child as 128+N.
    signum = -code if code < 0 else code - 128 if 128 < code < 160 else 0
    if signum in _SIGNAL_LIMITS:
        return _SIGNAL_LIMITS[signal.Signals(signum)]
    if code != 0:
        tail = stderr[-4096:]
        for marker, limit in _STDERR_LIMITS:
            if marker in tail:
                return limit
    return None


def python_paths() -> list[Path]:
    """Directories the child's interpreter needs: the environment, the base installation and the
    scanner package itself (an editable install lives outside site-packages)."""
    import scanner

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.base_exec_prefix)}
    paths.add(Path(scanner.__file__).resolve().parent)
    paths.add(Path(os.path.realpath(sys.executable)).parent)
    return sorted({Path(os.path.realpath(p)) for p in paths} | paths)
