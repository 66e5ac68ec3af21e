"""Push-to-findings latency of a second image on a known base: what the layer-prefix cache buys.

The base is the Debian bookworm image `benchmarks/push_to_findings.py` builds with mmdebstrap + umoci (one gzip
layer, about 76 MB). Each image pushed is that base plus a new application layer of about 5 MB (an
incompressible data file, a Python package's dist-info, a start script; new content every time, so a new layer
chain the layer-chain cache has never seen). For each stack (a fresh CNCF distribution registry whose
notifications go to a fresh `acrguard serve --runner bubblewrap`, its own store, queue and prefix cache):

* cold: the first image: the base layer is uploaded and replayed for the first time (and its state saved);
* second: further images on the same base, each with a new application layer: skopeo uploads only the new
  layer, and the scan job fetches and replays only that layer over the base's state from the prefix cache.

Times from the start of `skopeo copy` until the image's findings are stored: the scan's `finishedAt` (after
its assessment is committed, so `GET /api/images/{registry}/{digest}` answers it from then on), on the same
machine's clock as the push's start. The benchmark polls that API every 50 ms only to learn the scan is done:
a polling delay (25 ms on average, a tenth of a second image's figure) is not the scanner's latency. The figure
is p50 second / p50 cold, both measured in the same run.
Prints figures; asserts nothing about time. Usage: `.venv/bin/python benchmarks/second_image.py`.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import random
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import MB, median_seconds, print_rows, spread  # noqa: E402
from benchmarks.push_to_findings import BENCH_SPEC, SOURCE_TAG, percentile, stack  # noqa: E402
from scanner.store import open_store  # noqa: E402
from scanner.vulndb.snapshot import default_db_path  # noqa: E402
from tests.integration import realparts  # noqa: E402

REPOSITORY = "bench/app"
APP_BYTES = 5 * MB
POLL_SECONDS = 0.05
TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Run:
    kind: str  # "cold" or "second"
    push: float
    total: float  # push start → image assessed over HTTP
    scan: float  # scan started → finished
    inventory: float  # the sandboxed job(s), from the scan's timings
    reused: int  # layers the prefix cache spared (the scan's `layer_prefix_reused` timing)
    packages: int


def app_layer(seed: str) -> tuple[bytes, str]:
    """(gzip blob, diff_id) of a new ~5 MB application layer."""
    rng = random.Random(seed)
    members: list[tuple[str, bytes, int]] = [
        ("app/", b"", 0o755),
        ("app/data.bin", rng.randbytes(APP_BYTES - 64 * 1024), 0o644),
        ("app/main.py", f"print('app {seed}')\n".encode() * 1000, 0o644),
        ("usr/local/bin/start-app", b"#!/bin/sh\nexec python3 /app/main.py\n", 0o755),
        ("usr/local/lib/python3.11/dist-packages/", b"", 0o755),
        (
            "usr/local/lib/python3.11/dist-packages/requests-2.25.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: requests\nVersion: 2.25.0\n",
            0o644,
        ),
    ]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mode = mode
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, compresslevel=1, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def _put(blobs: Path, data: bytes) -> str:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return f"sha256:{hexdigest}"


def app_image(source: Path, dest: Path, seed: str) -> tuple[str, str]:
    """An OCI layout at `dest`: the base image `source:SOURCE_TAG` (its layer blob symlinked) plus a new application
    layer. Returns (reference, manifest digest)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    manifest = realparts.layout_document(source, realparts.layout_descriptor(source, SOURCE_TAG)["digest"])
    config = realparts.layout_document(source, manifest["config"]["digest"])
    for layer in manifest["layers"]:
        (blobs / layer["digest"][7:]).symlink_to(source / "blobs" / "sha256" / layer["digest"][7:])
    blob, diff_id = app_layer(seed)
    manifest["layers"].append({"mediaType": realparts.OCI_LAYER_GZIP, "digest": _put(blobs, blob), "size": len(blob)})
    config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append({"created_by": "COPY app /app"})
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    manifest["config"] = {**manifest["config"], "digest": _put(blobs, config_bytes), "size": len(config_bytes)}
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    digest = _put(blobs, manifest_bytes)
    entry = {
        "mediaType": realparts.OCI_MANIFEST,
        "digest": digest,
        "size": len(manifest_bytes),
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
    }
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return f"oci:{dest}:latest", digest


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def push_and_wait(serve: Any, registry: Any, store_path: Path, reference: str, digest: str, kind: str, n: int) -> Run:
    time.sleep(random.uniform(0, 1))  # not timed: a push lands at a random point of the worker's poll
    argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", reference]
    argv.append(f"docker://{registry.host}/{REPOSITORY}:run-{n}")
    started = time.perf_counter()
    started_wall = time.time()
    push = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pushed_at: float | None = None
    body: Any = None
    while True:
        if pushed_at is None and push.poll() is not None:
            pushed_at = time.perf_counter()
            assert push.stderr is not None
            if push.returncode != 0:
                raise SystemExit(f"benchmark: skopeo copy failed: {push.stderr.read().decode(errors='replace')}")
        status, body = serve.image(registry.host, digest)
        if status == 200 and body.get("health") is not None:
            break
        if status == 200 and (body.get("lastScan") or {}).get("status") == "failed":
            raise SystemExit(f"benchmark: the scan failed: {body['lastScan']}\n{serve.log_tail()}")
        if time.perf_counter() - started > TIMEOUT_SECONDS:
            raise SystemExit(f"benchmark: {digest} not assessed in {TIMEOUT_SECONDS}s\n{serve.log_tail()}")
        time.sleep(POLL_SECONDS)
    if pushed_at is None:
        push.wait()
        pushed_at = time.perf_counter()
    deadline = time.monotonic() + 30
    while not (body.get("lastScan") or {}).get("finishedAt") and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        _, body = serve.image(registry.host, digest)
    scan = body["lastScan"]
    total = _parse_time(scan["finishedAt"]) - started_wall
    with open_store(store_path, migrate=False) as store:
        detail = store.get_image(registry.host, digest)
        stored = store.load_inventory(registry.host, digest)
    assert detail is not None and detail.last_scan is not None and stored is not None
    timings = detail.last_scan.timings
    return Run(
        kind=kind,
        push=pushed_at - started,
        total=total,
        scan=_parse_time(scan["finishedAt"]) - _parse_time(scan["startedAt"]),
        inventory=timings.get("inventory", math.nan),
        reused=int(timings.get("layer_prefix_reused", 0)),
        packages=len(stored.inventory.packages),
    )


def measure(
    stacks: int, second_per_stack: int, workdir: Path, db: Path, prefix_cache: bool = True
) -> tuple[list[Run], dict[str, Any]]:
    built = realparts.ensure_debian_images(BENCH_SPEC, progress=True)
    print(f"[{BENCH_SPEC.name}] {'built' if built.built_now else 'cached'} in {built.seconds:.1f}s: {built.path}")
    manifest = realparts.layout_document(built.layout, realparts.layout_descriptor(built.layout, SOURCE_TAG)["digest"])
    image = {"layers": len(manifest["layers"]), "compressed": sum(int(x["size"]) for x in manifest["layers"])}
    runs: list[Run] = []
    for i in range(stacks):
        stack_dir = workdir / f"stack-{i}"
        env = {"ACRGUARD_PREFIX_CACHE_DIR": str(stack_dir / "prefixes")}
        if not prefix_cache:
            env["ACRGUARD_PREFIX_CACHE_MB"] = "0"
        with stack.serve_with_registry(stack_dir, db, runner="bubblewrap", env=env) as (serve, registry):
            store_path = stack_dir / "serve" / "store.sqlite"
            for j in range(1 + second_per_stack):
                kind = "cold" if j == 0 else "second"
                seed = f"{i}-{j}-{time.time_ns()}"
                reference, digest = app_image(built.layout, stack_dir / f"layout-{j}", seed)
                run = push_and_wait(serve, registry, store_path, reference, digest, kind, j)
                runs.append(run)
                print(
                    f"stack {i + 1}/{stacks} {kind:<6}: total {run.total:.2f}s, push {run.push:.2f}s, "
                    f"scan {run.scan:.2f}s (job {run.inventory:.2f}s, {run.reused} layer(s) from the prefix cache), "
                    f"{run.packages} packages",
                    flush=True,
                )
    return runs, image


def report(runs: Sequence[Run], image: dict[str, Any]) -> None:
    rows: list[tuple[str, str]] = [
        ("base", f"{BENCH_SPEC.name}: {image['layers']} gzip layer, {image['compressed'] / MB:.1f} MB compressed"),
        ("application layer", f"about {APP_BYTES / MB:.0f} MB, new content per image"),
    ]
    p50s: dict[str, float] = {}
    for kind, title in (("cold", "cold (first image)"), ("second", "second image (same base)")):
        chosen = [r for r in runs if r.kind == kind]
        if not chosen:
            continue
        total = [r.total for r in chosen]
        p50s[kind] = percentile(total, 50)
        rows += [
            (f"{title}: runs", str(len(chosen))),
            ("  push → findings p50 / p95", f"{p50s[kind]:.2f} s / {percentile(total, 95):.2f} s {spread(total)}"),
            ("  skopeo push p50", f"{percentile([r.push for r in chosen], 50):.2f} s"),
            ("  scan started → finished", median_seconds(r.scan for r in chosen)),
            ("    of which sandboxed job", median_seconds(r.inventory for r in chosen)),
            ("  layers from the prefix cache", f"{sum(r.reused for r in chosen)} in {len(chosen)} scans"),
        ]
    if "cold" in p50s and "second" in p50s:
        rows.append(("second / cold p50", f"{p50s['second'] / p50s['cold'] * 100:.1f} % (target: at most 10 %)"))
    print_rows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", type=int, default=5, help="fresh registry + serve stacks: one cold run each")
    parser.add_argument("--second", type=int, default=3, help="second images (same base) per stack")
    parser.add_argument("--db", type=Path, help="vulnerability database (default: the bundled snapshot's)")
    parser.add_argument("--no-prefix-cache", action="store_true", help="the same runs without the prefix cache")
    args = parser.parse_args(argv)
    if args.stacks < 1 or args.second < 1:
        parser.error("--stacks and --second must be at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        realparts.require_tools(["docker-registry", "skopeo", "umoci", "mmdebstrap", "bwrap"])
        with tempfile.TemporaryDirectory(prefix="acrguard-bench-") as tmp:
            db = args.db or default_db_path()
            runs, image = measure(args.stacks, args.second, Path(tmp), db, not args.no_prefix_cache)
    except realparts.RealPartsError as err:
        print(f"benchmark: {err}", file=sys.stderr)
        return 2
    report(runs, image)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
