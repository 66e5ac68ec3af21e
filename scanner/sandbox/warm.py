"""Warm children: the next scan's sandboxed child started ahead, its interpreter up and its modules imported,
blocked on its stdin until a job arrives. A long-lived runner (the service's) then pays for starting the
sandbox and the interpreter between scans instead of on the push-to-findings path.

Each warm child is still single-use: it is started over an inbox directory of its own (bound read-only at the
sandbox's /input), the job's layout is renamed into that inbox only when the job arrives, and a child that
served (or failed) one job is never used again. The inbox holds one thing before the job: the prefix state the
last job started from (`segment.PRELOAD_FILE`, from the layer-prefix cache, as the parent wrote it for that
job), which the child decodes while it waits; if the job starts from that same state (a CI registry pushes
image after image on one base), the child skips decoding it again. That state is all a child may see of
another scan: a base image's replay (its tree, the package databases detectors read, their results), which
every reader of acrguard's findings can read as that image's inventory anyway; the sandbox keeps the rest
(network, host files, other scans' layers) out of reach. The inbox is a scratch directory
(`scanner.sandbox.scratch`): locked while it lives, swept at start-up if the process died.
A child started with other job limits than the job's, or one that has exited, is discarded and the job
starts a child of its own as before.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from scanner.sandbox.runner import JobLimits, SandboxResult, Started, finish_limited
from scanner.sandbox.scratch import scratch_directory
from scanner.sandbox.segment import PRELOAD_FILE, STATE_FILE

log = logging.getLogger(__name__)

LAYOUT_NAME = "layout"
GO = b"go\n"

# spawn(inbox, limits): start a child that waits on its stdin and then reads the layout `inbox`/LAYOUT_NAME.
Spawn = Callable[[Path, JobLimits], Started]


class _Warm:
    def __init__(self, spawn: Spawn, limits: JobLimits, preload: bytes | None = None) -> None:
        self.limits = limits
        self._scratch = contextlib.ExitStack()
        self.inbox = self._scratch.enter_context(scratch_directory())
        try:
            if preload is not None:
                (self.inbox / PRELOAD_FILE).write_bytes(preload)
            self.started = spawn(self.inbox, limits)
        except BaseException:
            self._scratch.close()
            raise

    def alive(self) -> bool:
        return self.started.proc.poll() is None

    def close(self) -> None:
        """Kill the child if it still runs and remove its inbox."""
        if self.started.proc.poll() is None or not self.started.out.closed:
            self.started.discard()
        self._scratch.close()


class WarmChildren:
    """At most one warm child, made after each run for the next one. Thread-safe: a job takes the warm child
    or, if there is none yet, starts its own.

    Warm children are started by one long-lived thread of their own: a child is killed when the thread that
    started it ends (PR_SET_PDEATHSIG, `scanner.sandbox.runner.rlimit_preexec`), and a scan's thread may not
    outlive its scan. That thread waits `delay` seconds after a run before starting the next child, so that
    the interpreter's start-up does not compete for the CPU with the end of the scan that just ran (matching,
    store writes)."""

    def __init__(self, spawn: Spawn, delay: float = 0.2) -> None:
        self._spawn = spawn
        self._delay = delay
        self._lock = threading.Lock()
        self._ready: _Warm | None = None
        self._requests: queue.SimpleQueue[tuple[JobLimits, bytes | None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        atexit.register(self.close)  # the waiting child and its inbox go with the process

    def run(self, layout_dir: Path, limits: JobLimits) -> SandboxResult | None:
        """The child's result over `layout_dir`; None when the layout cannot be renamed into an inbox (another
        file system): the caller starts a child over it as before."""
        with self._lock:
            warm, self._ready = self._ready, None
        if warm is not None and (warm.limits != limits or not warm.alive()):
            warm.close()
            warm = None
        if warm is None:
            warm = _Warm(self._spawn, limits)
        state = layout_dir / STATE_FILE
        preload = state.read_bytes() if state.is_file() else None  # the parent's own file, bounded by the cache
        try:
            result = self._serve(warm, layout_dir, limits)
        finally:
            warm.close()
        self._prepare(limits, preload)
        return result

    def _serve(self, warm: _Warm, layout_dir: Path, limits: JobLimits) -> SandboxResult | None:
        target = warm.inbox / LAYOUT_NAME
        try:
            # The inbox is bound as a directory, not copied: what is renamed into it is there for the child.
            _move(layout_dir, target)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return None
            raise
        try:
            stdin = warm.started.proc.stdin
            assert stdin is not None
            with contextlib.suppress(BrokenPipeError):  # a child that died while waiting: its status says why
                stdin.write(GO)
                stdin.close()
            return finish_limited(warm.started, limits)
        finally:
            _move(target, layout_dir)

    def _prepare(self, limits: JobLimits, preload: bytes | None) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._starter, name="acrguard-warm-child", daemon=True)
                self._thread.start()
        self._requests.put((limits, preload))

    def _starter(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            time.sleep(self._delay)
            with contextlib.suppress(queue.Empty):
                while True:  # only the latest request matters
                    newer = self._requests.get_nowait()
                    if newer is None:
                        return
                    request = newer
            limits, preload = request
            try:
                warm = _Warm(self._spawn, limits, preload)
            except Exception as exc:  # the next job starts its own child, and says why if that fails too
                log.warning("sandbox: no warm child for the next scan: %s", exc)
                continue
            with self._lock:
                old, self._ready = self._ready, warm
            if old is not None:
                old.close()

    def close(self) -> None:
        """Stop the starter thread and discard the waiting child."""
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._requests.put(None)
            thread.join(timeout=10)
        with self._lock:
            warm, self._ready = self._ready, None
        if warm is not None:
            warm.close()

    def wait_ready(self, timeout: float) -> _Warm | None:
        """The waiting child once the starter has made it (tests), None if none within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._ready is not None:
                    return self._ready
            time.sleep(0.01)
        return None


def _move(source: Path, dest: Path) -> None:
    """Rename the read-only layout directory (moving a directory rewrites its `..`: it must be writable then)."""
    mode = source.stat().st_mode & 0o777
    source.chmod(mode | 0o200)
    try:
        os.rename(source, dest)
    except OSError:
        source.chmod(mode)
        raise
    dest.chmod(mode)
