"""How fast acrguard inventories a real ~100 MB image from a registry, against the physical floor.

Builds (or reuses from the test cache) a Debian bookworm image with mmdebstrap + umoci, starts its own
CNCF distribution registry on 127.0.0.1, pushes the image with skopeo, then in the same run:

* `python -m scanner sbom HOST/bench:latest --insecure` in a subprocess, N times (wall time, and peak
  RSS of the child from wait4);
* the floor: the same layer blobs fetched over HTTP (urllib) and streamed into `gzip -dc >/dev/null`,
  N times; also fetch alone and decompression alone, for reference;
* the interpreter's start-up (`python -m scanner --version`), which every run pays.

acrguard runs with its bytecode compiled once into a scratch PYTHONPYCACHEPREFIX (one untimed warm-up
run), as an installed package has it, whatever PYTHONDONTWRITEBYTECODE says in the caller's environment.

Prints figures; asserts nothing about time. `--big` adds an image about three times bigger, to show
that peak RSS does not grow with the image. Usage: `.venv/bin/python benchmarks/inventory_speed.py`.
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
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import MB, median_seconds, print_rows, spread  # noqa: E402
from scanner.image.streams import inflate  # noqa: E402
from tests.integration import realparts  # noqa: E402

# ~110 MB of gzip (~325 MB uncompressed), one layer: a plausible build image.
BENCH_SPEC = realparts.DebianSpec(
    name="bench-bookworm", include=("python3", "perl", "gcc", "make", "curl"), keep_rootfs=False
)
# ~360 MB of gzip (~870 MB uncompressed): three times the above, documentation included.
BIG_SPEC = realparts.DebianSpec(
    name="bench-bookworm-big",
    include=(
        "python3",
        "perl",
        "gcc",
        "g++",
        "make",
        "git",
        "curl",
        "openssh-client",
        "default-jdk-headless",
        "python3-numpy",
    ),
    slim=False,
    keep_rootfs=False,
)

DECOMPRESSORS = {"gzip": ["gzip", "-dc"], "zstd": ["zstd", "-dc"]}

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Layer:
    digest: str
    media_type: str
    size: int

    @property
    def decompressor(self) -> list[str]:
        for suffix, command in DECOMPRESSORS.items():
            if self.media_type.endswith(suffix):
                return command
        raise SystemExit(f"benchmark: no decompressor for layer media type {self.media_type}")


@dataclass(frozen=True)
class ScanRun:
    seconds: float
    max_rss_kib: int
    packages: int


@dataclass(frozen=True)
class Figures:
    name: str
    reference: str
    layers: list[Layer]
    uncompressed: int
    packages: int
    ours: list[ScanRun]
    floor: list[float]
    fetch_only: list[float]
    decompress_only: list[float]
    inflate_only: list[float]
    zlib_only: list[float]
    startup: list[float]


PYCACHE = Path(tempfile.gettempdir()) / "acrguard-bench-pycache"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    # Compiled once, outside the checkout: a deployed acrguard does not compile its modules on every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def timed_child(argv: Sequence[str], stdout_path: Path | None) -> tuple[float, int, str, int]:
    """Run a child; (wall seconds, its peak RSS in KiB from wait4, stderr, exit code)."""
    with open(stdout_path or os.devnull, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.PIPE, env=child_env(), cwd=REPO_ROOT)
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
    return seconds, int(usage.ru_maxrss), stderr, proc.returncode


def scan_once(reference: str, scratch: Path) -> ScanRun:
    output = scratch / "inventory.json"
    argv = [sys.executable, "-m", "scanner", "sbom", reference, "--insecure", "--format", "json"]
    argv += ["--progress", "never", "--scratch-dir", str(scratch)]
    seconds, rss, stderr, code = timed_child(argv, output)
    if code != 0:
        raise SystemExit(f"benchmark: acrguard exited {code}: {stderr.strip()}")
    packages = len(json.loads(output.read_text())["packages"])
    return ScanRun(seconds, rss, packages)


def fetch_blob(registry: realparts.Registry, repo: str, layer: Layer, sink: Callable[[bytes], object]) -> None:
    request = urllib.request.Request(registry.url(f"/v2/{repo}/blobs/{layer.digest}"))
    with _OPENER.open(request, timeout=300) as response:
        while chunk := response.read(1 << 20):
            sink(chunk)


def floor_once(registry: realparts.Registry, repo: str, layers: Sequence[Layer]) -> float:
    """Fetch each layer over HTTP and stream it through the decompressor into /dev/null."""
    started = time.perf_counter()
    for layer in layers:
        with open(os.devnull, "wb") as null:
            proc = subprocess.Popen(layer.decompressor, stdin=subprocess.PIPE, stdout=null)
            assert proc.stdin is not None
            fetch_blob(registry, repo, layer, proc.stdin.write)
            proc.stdin.close()
            if proc.wait() != 0:
                raise SystemExit(f"benchmark: {' '.join(layer.decompressor)} failed on {layer.digest}")
    return time.perf_counter() - started


def fetch_once(registry: realparts.Registry, repo: str, layers: Sequence[Layer]) -> float:
    started = time.perf_counter()
    for layer in layers:
        fetch_blob(registry, repo, layer, lambda chunk: None)
    return time.perf_counter() - started


def decompress_once(files: Sequence[tuple[Layer, Path]]) -> float:
    started = time.perf_counter()
    for layer, path in files:
        with open(os.devnull, "wb") as null:
            subprocess.run([*layer.decompressor, str(path)], stdout=null, check=True)
    return time.perf_counter() - started


def inflate_once(files: Sequence[tuple[Layer, Path]], module: Any = inflate) -> float:
    """Inflating the gzip layers from local files in-process, with the library acrguard uses (ISA-L where its
    wheel installs) or, for reference, Python's zlib."""
    started = time.perf_counter()
    for layer, path in files:
        if not layer.media_type.endswith("gzip"):
            continue
        inflater = module.decompressobj(wbits=31)
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                inflater.decompress(chunk, 1 << 22)
                while inflater.unconsumed_tail:
                    inflater.decompress(inflater.unconsumed_tail, 1 << 22)
    return time.perf_counter() - started


def uncompressed_size(files: Sequence[tuple[Layer, Path]]) -> int:
    total = 0
    for layer, path in files:
        proc = subprocess.Popen([*layer.decompressor, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            total += len(chunk)
        if proc.wait() != 0:
            raise SystemExit(f"benchmark: cannot decompress {layer.digest}")
    return total


def measure(spec: realparts.DebianSpec, runs: int, workdir: Path) -> Figures:
    print(f"[{spec.name}] image: mmdebstrap {spec.suite} --include={','.join(spec.include)}", flush=True)
    built = realparts.ensure_debian_images(spec, progress=True)
    print(f"[{spec.name}] {'built' if built.built_now else 'cached'} in {built.seconds:.1f}s: {built.path}")
    with realparts.running_registry(workdir / "registry") as registry:
        pushed = realparts.push(registry, built.oci("bookworm"), "bench", "latest")
        layers = [Layer(d["digest"], d["mediaType"], int(d["size"])) for d in pushed.layers()]
        files: list[tuple[Layer, Path]] = []
        for layer in layers:
            path = workdir / layer.digest.replace(":", "-")
            with path.open("wb") as out:
                fetch_blob(registry, "bench", layer, out.write)
            files.append((layer, path))
        uncompressed = uncompressed_size(files)
        scratch = workdir / "scratch"
        scratch.mkdir(exist_ok=True)

        scan_once(pushed.reference, scratch)  # warm-up: bytecode compiled, blob in the registry's page cache
        startup = [timed_child([sys.executable, "-m", "scanner", "--version"], None)[0] for _ in range(runs)]
        ours: list[ScanRun] = []
        floor: list[float] = []
        for i in range(runs):  # interleaved, so both see the same machine state
            ours.append(scan_once(pushed.reference, scratch))
            floor.append(floor_once(registry, "bench", layers))
            print(f"[{spec.name}] run {i + 1}/{runs}: acrguard {ours[-1].seconds:.2f}s, floor {floor[-1]:.2f}s")
        fetch_only = [fetch_once(registry, "bench", layers) for _ in range(runs)]
        decompress_only = [decompress_once(files) for _ in range(runs)]
        inflate_only = [inflate_once(files) for _ in range(runs)]
        zlib_only = [inflate_once(files, zlib) for _ in range(runs)]
        for _, path in files:
            path.unlink()
    return Figures(
        name=spec.name,
        reference=pushed.reference,
        layers=layers,
        uncompressed=uncompressed,
        packages=ours[-1].packages,
        ours=ours,
        floor=floor,
        fetch_only=fetch_only,
        decompress_only=decompress_only,
        inflate_only=inflate_only,
        zlib_only=zlib_only,
        startup=startup,
    )


def report(fig: Figures) -> None:
    compressed = sum(layer.size for layer in fig.layers)
    seconds = [r.seconds for r in fig.ours]
    ours = statistics.median(seconds)
    floor = statistics.median(fig.floor)
    rss = max(r.max_rss_kib for r in fig.ours)
    median_inflate = statistics.median(fig.inflate_only)
    kinds = sorted({layer.media_type.rsplit("+", 1)[-1] for layer in fig.layers})
    rows = [
        ("image", f"{fig.reference} ({fig.name})"),
        ("layers", f"{len(fig.layers)} ({', '.join(kinds)})"),
        ("compressed size", f"{compressed / MB:.1f} MB"),
        ("uncompressed size", f"{fig.uncompressed / MB:.1f} MB"),
        ("packages found", str(fig.packages)),
        ("runs", str(len(fig.ours))),
        ("acrguard wall, median", f"{ours:.2f} s {spread(seconds)}"),
        (
            "acrguard throughput",
            f"{compressed / MB / ours:.1f} MB/s compressed, {fig.uncompressed / MB / ours:.1f} MB/s",
        ),
        ("acrguard peak RSS", f"{rss / 1024:.1f} MiB (max over runs; ru_maxrss of the child)"),
        ("python start-up, median", f"{statistics.median(fig.startup):.2f} s (`python -m scanner --version`)"),
        ("floor: fetch | decompress", f"{floor:.2f} s median (HTTP GET streamed into gzip -dc >/dev/null)"),
        ("  fetch alone", median_seconds(fig.fetch_only)),
        ("  decompress alone", f"{median_seconds(fig.decompress_only)} (local file)"),
        ("  inflate alone", f"{median_seconds(fig.inflate_only)} (in-process, {inflate.__name__}, gzip layers)"),
        ("  zlib inflate alone", f"{median_seconds(fig.zlib_only)} (Python's zlib, for reference)"),
        ("ratio acrguard / floor", f"{ours / floor:.2f}x (target <= 0.75x)"),
        ("ratio acrguard / inflate", f"{ours / median_inflate:.2f}x (a tighter floor; target <= 1.1x)"),
        ("peak RSS target", f"<= 300 MB: {'met' if rss * 1024 <= 300e6 else 'NOT met'}"),
    ]
    print_rows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each measurement (default 5)")
    parser.add_argument("--big", action="store_true", help="also measure an image about 3x bigger")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    specs = [BENCH_SPEC, BIG_SPEC] if args.big else [BENCH_SPEC]
    try:
        realparts.require_tools(["docker-registry", "skopeo", "umoci", "mmdebstrap", "gzip", "zstd"])
        figures = []
        for spec in specs:
            with tempfile.TemporaryDirectory(prefix="acrguard-bench-") as tmp:
                figures.append(measure(spec, args.runs, Path(tmp)))
    except realparts.RealPartsError as err:
        print(f"benchmark: {err}", file=sys.stderr)
        return 2
    for fig in figures:
        report(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
