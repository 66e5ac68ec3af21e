"""Push-to-findings latency of `acrguard serve` for a real ~76 MB Debian image, against the push alone.

Builds (or reuses from the test cache) a Debian bookworm image with mmdebstrap + umoci (one gzip layer, about
76 MB), then for each run writes a new image of it whose config carries a run label (a new config blob, hence a
new manifest digest; the layer blob is the cached one, symlinked), pushes it with skopeo to a CNCF distribution
registry whose notifications go to `acrguard serve --runner bubblewrap` (SQLite store and queue, the database of
the bundled vulnerability snapshot), and times from the start of `skopeo copy` until
`GET /api/images/{registry}/{digest}` answers with the image assessed. Two cases:

* cold: a fresh registry and a fresh serve (new store): the layer blob is uploaded and scanned for the first
  time; one such run per stack;
* known layers: further new digests pushed to the same stack: skopeo finds the layer in the repository and
  uploads only config and manifest; acrguard's layer-chain cache (`scanner/inventory/chain_cache.py`) knows the
  layer chain, so the job reads manifest and config only: no layer fetch, no sandbox.

The baseline is the `skopeo copy` of the same run (push alone); the ratio is total / push. The breakdown comes
from the store's scan record: push start → scan started (the push, the registry's notification, event handling
and the queue worker, woken by the event it handled), scan started → finished (sandboxed job, matching,
store writes), with the job's inventory time. Runs are spaced by a random pause of up to 1 s, so a push lands at
a random point of the worker's poll, as real pushes do.
Prints figures; asserts nothing about time. Usage: `.venv/bin/python benchmarks/push_to_findings.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import random
import signal
import subprocess
import sys
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
from scanner.store import open_store  # noqa: E402
from scanner.vulndb.snapshot import default_db_path  # noqa: E402
from tests.integration import realparts  # noqa: E402

# tests/localhost/stack.py imports its neighbours as top-level modules (it puts tests/ on sys.path), which mypy
# cannot resolve from here: loaded at run time, used untyped.
stack: Any = importlib.import_module("tests.localhost.stack")

# About 76 MB of gzip (~225 MB uncompressed), one layer: a typical application base image.
BENCH_SPEC = realparts.DebianSpec(
    name="bench-bookworm-80",
    include=("python3", "perl", "curl", "git", "openssh-client", "ca-certificates", "procps"),
    keep_rootfs=False,
)
SOURCE_TAG = "bookworm"
REPOSITORY = "bench/debian"
RUN_LABEL = "org.acrguard.bench.run"
POLL_SECONDS = 0.05
TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Run:
    kind: str  # "cold" or "known"
    push: float  # skopeo copy alone
    total: float  # push start → image assessed over HTTP
    to_started: float  # push start → scan started (registry notification, event handling, queue poll)
    scan: float  # scan started → finished (the findings are served just before the record is finished)
    inventory: float  # the sandboxed job (fetch + parse), from the scan's timings
    cache_hit: bool  # served from the layer-chain cache (the scan's `layer_cache_hit` timing)
    health: str
    findings: int
    packages: int


def relabel(source: Path, tag: str, dest: Path, label: str) -> tuple[str, str]:
    """An OCI layout at `dest` holding `source:tag` with `RUN_LABEL=label` in its config: a new config blob and
    manifest digest over the same layer blobs (symlinked, not copied). Returns (reference, manifest digest)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    descriptor = realparts.layout_descriptor(source, tag)
    manifest = realparts.layout_document(source, descriptor["digest"])
    config = realparts.layout_document(source, manifest["config"]["digest"])
    config.setdefault("config", {}).setdefault("Labels", {})[RUN_LABEL] = label
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    manifest["config"] = {**manifest["config"], "digest": _put(blobs, config_bytes), "size": len(config_bytes)}
    for layer in manifest["layers"]:
        (blobs / layer["digest"].split(":", 1)[1]).symlink_to(source / "blobs" / "sha256" / layer["digest"][7:])
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


def _put(blobs: Path, data: bytes) -> str:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return f"sha256:{hexdigest}"


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def push_and_wait(serve: Any, registry: Any, store_path: Path, source: Path, workdir: Path, kind: str, n: int) -> Run:
    time.sleep(random.uniform(0, 1))  # not timed: see the module docstring
    reference, digest = relabel(source, SOURCE_TAG, workdir / f"layout-{n}", f"{kind}-{n}-{time.time_ns()}")
    argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", reference, f"docker://{registry.host}/{REPOSITORY}"]
    argv[-1] += f":run-{n}"
    started_wall, started = time.time(), time.perf_counter()
    push = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pushed_at: float | None = None
    body: Any = None
    # Polled while skopeo runs too: the digest is known before the push (skopeo keeps the manifest bytes).
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
    total = time.perf_counter() - started
    if pushed_at is None:  # assessed while skopeo was still exiting (the registry notifies on the manifest PUT)
        push.wait()
        pushed_at = time.perf_counter()
    push_seconds = pushed_at - started
    # The assessment is stored before the scan record is finished: wait for the record (not timed).
    deadline = time.monotonic() + 30
    while not (body.get("lastScan") or {}).get("finishedAt") and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        _, body = serve.image(registry.host, digest)
    scan = body["lastScan"]
    with open_store(store_path, migrate=False) as store:
        detail = store.get_image(registry.host, digest)
        stored = store.load_inventory(registry.host, digest)
    assert detail is not None and detail.last_scan is not None and stored is not None
    return Run(
        kind=kind,
        push=push_seconds,
        total=total,
        to_started=_parse_time(scan["startedAt"]) - started_wall,
        scan=_parse_time(scan["finishedAt"]) - _parse_time(scan["startedAt"]),
        inventory=detail.last_scan.timings.get("inventory", math.nan),
        cache_hit=detail.last_scan.timings.get("layer_cache_hit") == 1.0,
        health=str(body["health"]),
        findings=len(body["findings"]),
        packages=len(stored.inventory.packages),
    )


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def measure(stacks: int, known_per_stack: int, workdir: Path, db: Path) -> tuple[list[Run], dict[str, Any]]:
    print(f"[{BENCH_SPEC.name}] image: mmdebstrap {BENCH_SPEC.suite} --include={','.join(BENCH_SPEC.include)}")
    built = realparts.ensure_debian_images(BENCH_SPEC, progress=True)
    print(f"[{BENCH_SPEC.name}] {'built' if built.built_now else 'cached'} in {built.seconds:.1f}s: {built.path}")
    manifest = realparts.layout_document(built.layout, realparts.layout_descriptor(built.layout, SOURCE_TAG)["digest"])
    image = {"layers": len(manifest["layers"]), "compressed": sum(int(x["size"]) for x in manifest["layers"])}
    runs: list[Run] = []
    for i in range(stacks):
        stack_dir = workdir / f"stack-{i}"
        with stack.serve_with_registry(stack_dir, db, runner="bubblewrap") as (serve, registry):
            store_path = stack_dir / "serve" / "store.sqlite"
            for j in range(1 + known_per_stack):
                kind = "cold" if j == 0 else "known"
                run = push_and_wait(serve, registry, store_path, built.layout, stack_dir, kind, j)
                runs.append(run)
                print(
                    f"stack {i + 1}/{stacks} {kind:<5}: total {run.total:.2f}s, push {run.push:.2f}s, "
                    f"scan started at {run.to_started:.2f}s, scan {run.scan:.2f}s "
                    f"(job {run.inventory:.2f}s{', layer cache hit' if run.cache_hit else ''}), {run.health}, "
                    f"{run.packages} packages",
                    flush=True,
                )
    return runs, image


def report(runs: Sequence[Run], image: dict[str, Any]) -> None:
    rows: list[tuple[str, str]] = [
        ("image", f"{BENCH_SPEC.name}: {image['layers']} gzip layer, {image['compressed'] / MB:.1f} MB compressed"),
        ("packages / health", f"{runs[0].packages} / {runs[0].health}, {runs[0].findings} findings"),
    ]
    for kind, title in (("cold", "cold (new layer)"), ("known", "known layers (new digest)")):
        chosen = [r for r in runs if r.kind == kind]
        if not chosen:
            continue
        total = [r.total for r in chosen]
        push = [r.push for r in chosen]
        p50, p95 = percentile(total, 50), percentile(total, 95)
        rows += [
            (f"{title}: runs", str(len(chosen))),
            ("  push → findings p50 / p95", f"{p50:.2f} s / {p95:.2f} s {spread(total)}"),
            ("  baseline: skopeo push p50", f"{percentile(push, 50):.2f} s"),
            ("  ratio p50 total / push", f"{p50 / percentile(push, 50):.1f}x"),
            ("  push start → scan started", median_seconds(r.to_started for r in chosen)),
            ("  scan started → finished", median_seconds(r.scan for r in chosen)),
            ("    of which sandboxed job", median_seconds(r.inventory for r in chosen)),
            ("  layer-chain cache hits", f"{sum(r.cache_hit for r in chosen)} of {len(chosen)}"),
        ]
    print_rows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", type=int, default=8, help="fresh registry + serve stacks: one cold run each")
    parser.add_argument("--known", type=int, default=3, help="known-layer runs (new digests) per stack")
    parser.add_argument("--db", type=Path, help="vulnerability database (default: the bundled snapshot's)")
    args = parser.parse_args(argv)
    if args.stacks < 1 or args.known < 0:
        parser.error("--stacks must be at least 1 and --known at least 0")
    # SIGTERM unwinds like Ctrl-C, so the registry and serve processes of the current stack are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        realparts.require_tools(["docker-registry", "skopeo", "umoci", "mmdebstrap", "bwrap"])
        with tempfile.TemporaryDirectory(prefix="acrguard-bench-") as tmp:
            runs, image = measure(args.stacks, args.known, Path(tmp), args.db or default_db_path())
    except realparts.RealPartsError as err:
        print(f"benchmark: {err}", file=sys.stderr)
        return 2
    report(runs, image)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
