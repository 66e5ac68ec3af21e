"""Bubblewrap runner: the child in fresh namespaces (user, pid, net, ipc, uts, cgroup) on a root made of
read-only binds of only what the interpreter needs, the layout read-only at /input, a bounded tmpfs /tmp.

Verified on Debian 12 with bubblewrap 0.8.0 as root: `--uid 65534` maps the sandbox's nobody onto the
caller's uid (root outside, without any capability inside: `--cap-drop ALL`), so root-only files of the
Python installation stay readable while every bind is read-only and no capability is left.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from scanner.sandbox import seccomp
from scanner.sandbox.errors import JobError
from scanner.sandbox.runner import (
    INPUT_DIR,
    JobLimits,
    SandboxResult,
    SandboxRunner,
    Started,
    finish_limited,
    minimal_env,
    python_paths,
    scanner_argv,
    start_limited,
)
from scanner.sandbox.warm import LAYOUT_NAME, WarmChildren

INSTALL_HINT = "install bubblewrap (apt-get install bubblewrap, or scripts/install-system-deps.sh)"
SANDBOX_UID = 65534  # nobody
# Top-level names merged-/usr systems keep as links into /usr; bound or linked as on the host.
_ROOT_NAMES = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")


class BubblewrapRunner(SandboxRunner):
    name = "bubblewrap"

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        scan_args: Sequence[str] = (),
        extra_ro_binds: Sequence[Path] = (),
        use_seccomp: bool = True,
        bwrap: str | None = None,
        warm: bool = False,
    ) -> None:
        """`command` replaces the scanner (tests run probe scripts); `scan_args` are appended to the
        scanner's own (`--limit NAME=VALUE`); `extra_ro_binds` are more host paths made visible read-only;
        `warm` starts each next child ahead, waiting for its job (`scanner.sandbox.warm`: long-lived runners)."""
        self.command = list(command) if command else None
        self.scan_args = list(scan_args)
        self.extra_ro_binds = [Path(p) for p in extra_ro_binds]
        self.use_seccomp = use_seccomp
        self.bwrap = bwrap or shutil.which("bwrap")
        self.warm = WarmChildren(self._spawn_warm) if warm and command is None else None

    def argv(
        self, layout_dir: Path, limits: JobLimits, seccomp_fd: int | None, *, image: str = "", wait: bool = False
    ) -> list[str]:
        """The full bwrap command line (pure: no files are touched). `image` is the scanner's argument (default
        the layout at /input); `wait` makes the scanner wait for its go on stdin (a warm child)."""
        if self.bwrap is None:
            raise JobError(f"sandbox: bwrap not found; {INSTALL_HINT}")
        args = [
            self.bwrap,
            "--unshare-all",  # user, ipc, pid, net (only a down loopback), uts, cgroup
            "--unshare-user",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--disable-userns",  # no nested user namespace from inside (where the kernel allows it)
            "--cap-drop",
            "ALL",
            "--die-with-parent",
            "--new-session",  # no TIOCSTI into the caller's terminal
            "--hostname",
            "acrguard-sandbox",
            "--clearenv",
        ]
        for key, value in minimal_env().items():
            args += ["--setenv", key, value]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in _ROOT_NAMES:
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
        for path in _ETC_FILES:
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        # The tmpfs comes before the interpreter's binds: bwrap applies mounts in order, and a checkout or
        # virtualenv that lives under the host's /tmp must stay visible on top of the sandbox's own /tmp.
        args += ["--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
        for bind in _outermost([*python_paths(), *self.extra_ro_binds]):
            if not bind.is_relative_to("/usr"):
                args += ["--ro-bind", str(bind), str(bind)]
        args += ["--ro-bind", str(layout_dir), INPUT_DIR]
        args += ["--dev", "/dev", "--proc", "/proc", "--chdir", "/tmp"]
        # bwrap builds the root on a scratch tmpfs: made read-only last, so /tmp stays the only writable place.
        args += ["--remount-ro", "/"]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        scan_args = [*self.scan_args, *(["--wait"] if wait else [])]
        args += ["--", *(self.command or scanner_argv(sys.executable, image or f"oci:{INPUT_DIR}", scan_args))]
        return args

    def run(self, layout_dir: Path, limits: JobLimits) -> SandboxResult:
        result = self.warm.run(layout_dir, limits) if self.warm is not None else None
        if result is None:
            result = finish_limited(self._start(layout_dir, limits), limits)
        if result.exit_code == 1 and result.stderr.startswith(b"bwrap:"):
            # bwrap's own failures (no user namespaces, a bind that cannot be made) are set-up errors.
            line = result.stderr.decode(errors="replace").strip().splitlines()[0]
            raise JobError(f"sandbox: bubblewrap could not start: {line}")
        return result

    def _start(self, layout_dir: Path, limits: JobLimits, *, image: str = "", wait: bool = False) -> Started:
        program = seccomp.bpf_program() if self.use_seccomp else None
        if self.use_seccomp and program is None:
            raise JobError("sandbox: libseccomp is not installed (apt-get install libseccomp2)")
        fd = -1
        try:
            if program is not None:
                # bwrap reads the program from this descriptor; a memfd needs no file on disk.
                fd = os.memfd_create("acrguard-seccomp", 0)
                os.write(fd, program)
                os.lseek(fd, 0, os.SEEK_SET)
            argv = self.argv(layout_dir, limits, fd if fd >= 0 else None, image=image, wait=wait)
            return start_limited(argv, limits, env=minimal_env(), pass_fds=[fd] if fd >= 0 else [], stdin_pipe=wait)
        finally:
            if fd >= 0:
                os.close(fd)  # the child has its own copy

    def _spawn_warm(self, inbox: Path, limits: JobLimits) -> Started:
        return self._start(inbox, limits, image=f"oci:{INPUT_DIR}/{LAYOUT_NAME}", wait=True)


def _outermost(paths: Sequence[Path]) -> list[Path]:
    """Drop paths inside another listed path; a later bind of a parent would hide an earlier child."""
    unique = sorted({p for p in paths if p.exists()}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path.is_relative_to(parent) for parent in kept):
            kept.append(path)
    return kept
