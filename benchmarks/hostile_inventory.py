"""What hostile images cost now that acrguard fails closed on them: wall time and peak RSS.

Builds, in a temporary directory:

* the two-million-package archive: an 11 MB oci-archive whose dpkg `status` lists 2,000,000 packages (180 MB);
* the padded-apk image: the Alpine sample (`samples/alpine-3.10-app.tar`) plus a layer carrying a 109 MiB apk
  database (the original one, then packages owning a thousand files each);

then runs `python -m scanner sbom IMAGE --format json` on each in a subprocess, N times (default 5), with
the default limits (the byte bound `max_package_db_bytes` refuses both databases unparsed) and with that
bound raised to 1 GiB (the streamed parse then stops at `max_packages` or `max_owned_files`). Prints for
each: the exit code and the one-line reason (the bound hit), the output size, the median wall time (min,
max) and the peak RSS of the child (`ru_maxrss` from `wait4`, the largest over the runs). It asserts
nothing about time: the tests assert the bounds. Usage: `.venv/bin/python benchmarks/hostile_inventory.py`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import MB, median_seconds, print_rows, spread  # noqa: E402
from tests.security.padded import dpkg_two_million, padded_apk_layout  # noqa: E402

RAISED = f"max_package_db_bytes={2**30}"


@dataclass(frozen=True)
class Case:
    name: str
    reference: str
    limits: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_kib: int
    code: int
    stderr: str
    output_bytes: int


def run_once(case: Case, scratch: Path) -> Run:
    """`acrguard sbom` in a child; its wall time and peak RSS (KiB, from wait4)."""
    output = scratch / "sbom.json"
    argv = [sys.executable, "-m", "scanner", "sbom", case.reference, "--progress", "never", "-o", str(output)]
    for limit in case.limits:
        argv += ["--limit", limit]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace").strip()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.stderr.close()
    size = output.stat().st_size if output.exists() else 0
    output.unlink(missing_ok=True)
    return Run(seconds, int(usage.ru_maxrss), os.waitstatus_to_exitcode(status), stderr, size)


def measure(case: Case, runs: int, scratch: Path) -> list[tuple[str, str]]:
    results = [run_once(case, scratch) for _ in range(runs)]
    seconds = [r.seconds for r in results]
    last = results[-1]
    return [
        (f"{case.name}: exit", f"{last.code}: {last.stderr}"),
        (f"{case.name}: output", f"{last.output_bytes / MB:.1f} MB"),
        (f"{case.name}: wall time", f"{median_seconds(seconds)} {spread(seconds)} over {runs} runs"),
        (f"{case.name}: peak RSS", f"{max(r.rss_kib for r in results) / 1024:.0f} MiB (max over runs)"),
    ]


def build(scratch: Path) -> tuple[Path, str]:
    """The two images, built in a child process: building them takes hundreds of MiB, which a child forked
    from this process would otherwise count in its peak RSS."""
    subprocess.run([sys.executable, __file__, "--build", str(scratch)], check=True, cwd=REPO_ROOT)
    return scratch / "dpkg-2m.tar", f"oci:{scratch / 'padded_apk'}:latest"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each case (default 5)")
    parser.add_argument("--build", metavar="DIR", help=argparse.SUPPRESS)  # the child of `build`
    args = parser.parse_args(argv)
    if args.build:
        dpkg_two_million(Path(args.build) / "dpkg-2m.tar")
        padded_apk_layout(Path(args.build) / "padded_apk")
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="acrguard-bench-hostile-") as tmp:
        scratch = Path(tmp)
        started = time.perf_counter()
        two_million, padded_apk = build(scratch)
        rows = [
            ("two-million-package archive", f"{two_million.stat().st_size / MB:.1f} MB (2,000,000 dpkg packages)"),
            ("images built in", f"{time.perf_counter() - started:.1f} s"),
        ]
        cases = [
            Case("two million packages, default limits", f"oci-archive:{two_million}", ()),
            Case("two million packages, db bound raised", f"oci-archive:{two_million}", (RAISED,)),
            Case("padded apk, default limits", padded_apk, ()),
            Case("padded apk, db bound raised", padded_apk, (RAISED,)),
        ]
        for case in cases:
            rows += measure(case, args.runs, scratch)
    print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
