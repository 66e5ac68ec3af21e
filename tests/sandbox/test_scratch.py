"""Scratch directories of the scan job: removed after each attempt, and those of attempts killed midway removed
at the next start-up; never one of a scan still running, never one that is a link, never another user's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scanner.sandbox.scratch import PREFIX, remove_tree, scratch_directory, sweep_abandoned
from scanner.vulndb.osv_import import import_sources
from tests.localhost.stack import (
    ROOT,
    alpine_layout,
    many_files_alpine_layout,
    realparts,
    serve_with_registry,
    start_serve,
    wait_for,
)

# A scan attempt in another process: its scratch directory with a read-only layout in it (as the job leaves
# it for the sandbox), held until its stdin closes.
ATTEMPT = """
import sys
from scanner.sandbox.scratch import scratch_directory
with scratch_directory(sys.argv[1]) as scratch:
    layout = scratch / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "blobs" / "sha256" / "ab").write_bytes(b"layer")
    for path in (layout / "blobs" / "sha256" / "ab", layout / "blobs" / "sha256", layout / "blobs", layout):
        path.chmod(0o444 if path.is_file() else 0o555)
    print(scratch, flush=True)
    sys.stdin.read()
"""


@contextmanager
def attempt(parent: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    process = subprocess.Popen(
        [sys.executable, "-c", ATTEMPT, str(parent)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield process, Path(process.stdout.readline().strip())
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def test_an_attempt_leaves_nothing_whatever_happens(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), scratch_directory(str(tmp_path)) as scratch:
        (scratch / "layout").mkdir()
        (scratch / "layout" / "blob").write_bytes(b"x")
        (scratch / "layout").chmod(0o555)
        raise RuntimeError("the scan failed")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_attempts_directory_is_swept_and_a_running_ones_kept(tmp_path: Path) -> None:
    with attempt(tmp_path) as (killed, abandoned), attempt(tmp_path) as (running, kept):
        assert abandoned.name.startswith(PREFIX) and abandoned.is_dir() and kept.is_dir()
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert abandoned.is_dir(), "a SIGKILLed attempt cannot clean up after itself"
        assert sweep_abandoned(str(tmp_path)) == 1
        assert not abandoned.exists() and (kept / "layout" / "blobs" / "sha256" / "ab").is_file()
        assert running.stdin is not None
        running.stdin.close()  # the attempt finishes: it removes its own
        assert running.wait(timeout=30) == 0
    assert list(tmp_path.iterdir()) == []


def test_the_sweep_touches_only_its_own_directories(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "keep").mkdir(parents=True)
    (elsewhere / "keep" / "file").write_text("precious")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / f"{PREFIX}link").symlink_to(elsewhere)  # a link carrying the prefix
    (scratch / f"{PREFIX}file").write_text("not a directory")
    (scratch / "other-dir").mkdir()  # no prefix
    inner = scratch / f"{PREFIX}abandoned"
    (inner / "layout").mkdir(parents=True)
    (inner / "layout" / "escape").symlink_to(elsewhere / "keep")  # a link inside is removed, not followed
    assert sweep_abandoned(str(scratch)) == 1
    assert sorted(p.name for p in scratch.iterdir()) == [f"{PREFIX}file", f"{PREFIX}link", "other-dir"]
    assert (elsewhere / "keep" / "file").read_text() == "precious"


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_the_sweep_leaves_another_users_directories(tmp_path: Path) -> None:
    theirs = tmp_path / f"{PREFIX}theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    assert sweep_abandoned(str(tmp_path)) == 0 and theirs.is_dir()


def test_remove_tree_does_not_follow_a_link_it_is_given(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "file").write_text("x")
    (tmp_path / "link").symlink_to(target)
    remove_tree(tmp_path / "link")
    assert (target / "file").exists()


# --------------------------------------------------------------------------------------------------
# through serve: after each attempt, and after a SIGKILL at the next start


def scratch_dirs(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.name.startswith(PREFIX))


def test_serve_removes_each_attempts_scratch_and_a_killed_ones_at_restart(tmp_path: Path) -> None:
    db = tmp_path / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch)}  # where the scan job makes its scratch layout
    with serve_with_registry(tmp_path / "stack", db, env=env) as (serve, registry):
        small = realparts.push(registry, f"oci:{alpine_layout(tmp_path / 'small')}:latest", "scratch/small", "1")

        def scanned() -> bool:
            status, body = serve.image(registry.host, small.digest)
            return status == 200 and (body.get("lastScan") or {}).get("status") == "succeeded"

        wait_for("the small image scanned", scanned, timeout=120, context=serve.log_tail)
        assert scratch_dirs(scratch) == [], "a finished attempt removed its scratch directory"

        # A scan whose parse takes seconds: serve is killed while it runs.
        slow = many_files_alpine_layout(tmp_path / "slow")
        realparts.push(registry, f"oci:{slow}:latest", "scratch/slow", "1")
        wait_for("the slow scan's scratch directory", lambda: scratch_dirs(scratch), timeout=120, interval=0.02)
        serve.process.send_signal(signal.SIGKILL)
        serve.process.wait(timeout=30)
        (abandoned,) = scratch_dirs(scratch)
        assert abandoned.is_dir(), "nothing could remove it: its process was killed"

        restarted = start_serve(
            tmp_path / "restarted",
            db=db,
            insecure_registries=[registry.host],
            env=env,
            store=str(serve.workdir / "store.sqlite"),
            queue=str(serve.workdir / "queue.sqlite"),
        )
        try:
            # The sweep runs before serve listens: once it answers, the abandoned directory is gone.
            assert scratch_dirs(scratch) == [], restarted.log_tail()
            assert "removed 1 directories of scans that did not finish" in restarted.log_tail(200)
        finally:
            restarted.stop()
