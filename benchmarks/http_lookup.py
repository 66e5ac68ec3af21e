"""HTTP lookup latency of `acrguard serve` under a fixed request rate from `wrk`, against `/api/health`.

Seeds a SQLite findings store with N images (default 10,000) as scans leave them: spread over several registries
(`benchN.azurecr.io`) and repositories, each with a tag, a finished scan and an assessment. A share of them carry
findings: the real findings of the Alpine 3.10 sample image in `samples/` against the bundled vulnerability
snapshot, each image a random subset of them; the others are Healthy. Starts `acrguard serve` on that store and
drives it with wrk (`benchmarks/http_lookup.lua`) at a fixed offered rate (default 200 requests per second for
30 s: wrk has no rate flag, so each of C connections waits C/rate seconds before each request) over a mix of:

* one image by digest (`GET /api/images/{registry}/{digest}`: health, summary, findings), 40%;
* the images of a repository (`GET /api/images?registry=&repository=`), 25%;
* the sub-assessments of a registry, a page of 50 (`…/subAssessments?$top=50`, first page or a `$skipToken`
  taken from a real `nextLink`), 15%;
* the images carrying a CVE (`GET /api/vulnerabilities/{id}/images`), 20%.

Reports wrk's p50/p90/p99 and the achieved rate; the baseline is the same load on `/api/health` (the server and
the host's dispatch, no store). Then each kind of lookup alone at the same rate, to show which one makes the tail.
When the mix misses the target (p99 50 ms) or with `--profile`, each kind is profiled in process with cProfile:
the function app's handlers called through `scanner.localhost.serve.Dispatcher` on the same store.
Prints figures; asserts nothing about time. Needs wrk: `bash scripts/install-bench-deps.sh`.
Usage: `.venv/bin/python benchmarks/http_lookup.py [--images N] [--rate R] [--seconds S]`.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import importlib
import io
import json
import os
import pstats
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scanner import __version__  # noqa: E402
from scanner.assess.assessment import assess  # noqa: E402
from scanner.assess.image_health import health_of, summarise  # noqa: E402
from scanner.inventory.build import inventory  # noqa: E402
from scanner.model.types import Coverage, Finding, Inventory  # noqa: E402
from scanner.report.subassessments import QUALYS_KEY  # noqa: E402
from scanner.store import FindingsStore, open_store  # noqa: E402
from scanner.vulndb.snapshot import default_db_path  # noqa: E402
from scanner.vulndb.sqlite_db import SqliteVulnDatabase  # noqa: E402
from tests.integration import realparts  # noqa: E402

# tests/localhost/stack.py imports its neighbours as top-level modules (it puts tests/ on sys.path), which mypy
# cannot resolve from here: loaded at run time, used untyped.
stack: Any = importlib.import_module("tests.localhost.stack")

LUA = Path(__file__).with_name("http_lookup.lua")
SAMPLE = REPO_ROOT / "samples" / "alpine-3.10-app.tar"
TARGET_P99_MS = 50.0
SUB_PREFIX = "/api/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/bench/providers/"
MIX = {"image": 40, "repository": 25, "subassessments": 15, "cve": 20}
PAGE = 50


@dataclass(frozen=True)
class Seeded:
    images: list[tuple[str, str, str]]  # (registry, repository, digest)
    repositories: list[tuple[str, str]]
    registries: list[str]
    vulnerabilities: list[str]
    unhealthy: int
    findings: int
    seconds: float


@dataclass(frozen=True)
class WrkResult:
    label: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    bytes: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def image_digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(f"acrguard-bench-lookup-{i}".encode()).hexdigest()


def sample() -> tuple[Inventory, list[Finding], tuple[Coverage, ...]]:
    inv = inventory(f"docker-archive:{SAMPLE}")[0]
    db = SqliteVulnDatabase.open(default_db_path())
    try:
        result = assess(inv, db)
        return inv, list(result.findings), result.coverage
    finally:
        db.close()


def seed(store: FindingsStore, count: int, registries: int, vulnerable: float, rng: random.Random) -> Seeded:
    """What pushes and scans leave in the store; one transaction per call, as the service makes them."""
    started = time.perf_counter()
    inv, found, coverage = sample()
    if not found:
        raise SystemExit(f"benchmark: {SAMPLE} has no findings against the bundled database")
    now = datetime.now(UTC)
    images: list[tuple[str, str, str]] = []
    unhealthy = findings = 0
    for i in range(count):
        registry = f"bench{i % registries}.azurecr.io"
        j = i // registries  # 20 repositories per registry: 50 images each at the defaults
        repository = f"team-{j % 4}/app-{(j // 4) % 5}"
        digest = image_digest(i)
        at = now - timedelta(days=2, seconds=i)
        store.record_push(registry, repository, digest, f"v{i}", realparts.OCI_MANIFEST, at)
        scan_id = store.start_scan(registry, repository, digest, "push", at)
        chosen: list[Finding] = []
        if rng.random() < vulnerable:  # a random subset: images differ in which CVEs they carry
            chosen = [f for f in found if rng.random() < 0.6] or found[:1]
        health, reason = health_of(inv, chosen, coverage)
        store.save_assessment(registry, digest, chosen, health, reason, summarise(chosen), at, coverage)
        store.finish_scan(scan_id, "succeeded", "", {"inventory": 1.0}, __version__, "bench", ("apk@1",), at)
        images.append((registry, repository, digest))
        unhealthy += bool(chosen)
        findings += len(chosen)
        if (i + 1) % 2000 == 0:
            print(f"seeded {i + 1}/{count} images", flush=True)
    ids = sorted({f.id for f in found} | {a for f in found for a in f.aliases if a.startswith("CVE-")})
    return Seeded(
        images=images,
        repositories=sorted({(r, repo) for r, repo, _ in images}),
        registries=sorted({r for r, _, _ in images}),
        vulnerabilities=ids,
        unhealthy=unhealthy,
        findings=findings,
        seconds=time.perf_counter() - started,
    )


def sub_assessments_path(registry: str, token: str | None = None) -> str:
    name = registry.split(".", 1)[0]
    query = {"api-version": "2019-01-01-preview", "$top": str(PAGE)}
    if token:
        query["$skipToken"] = token
    return (
        f"{SUB_PREFIX}Microsoft.ContainerRegistry/registries/{name}/providers/Microsoft.Security/assessments/"
        f"{QUALYS_KEY}/subAssessments?{urllib.parse.urlencode(query, safe='$')}"
    )


def paths_by_kind(serve: Any, seeded: Seeded, rng: random.Random, per_kind: int) -> dict[str, list[str]]:
    quote = urllib.parse.quote
    kinds: dict[str, list[str]] = {
        "image": [
            f"/api/images/{quote(r, safe='')}/{quote(d, safe='')}" for r, _, d in rng.sample(seeded.images, per_kind)
        ],
        "repository": [
            f"/api/images?{urllib.parse.urlencode({'registry': r, 'repository': repo})}"
            for r, repo in rng.choices(seeded.repositories, k=per_kind)
        ],
        "cve": [
            f"/api/vulnerabilities/{quote(v, safe='')}/images" for v in rng.choices(seeded.vulnerabilities, k=per_kind)
        ],
    }
    # Page tokens as a client gets them: from the nextLink of real responses (a few pages per registry).
    pages: list[str] = []
    for registry in seeded.registries:
        path: str | None = sub_assessments_path(registry)
        for _ in range(3):
            if path is None:
                break
            pages.append(path)
            status, body = serve.get(path, timeout=120)
            if status != 200:
                raise SystemExit(f"benchmark: GET {path}: HTTP {status} {body}")
            link = body.get("nextLink")
            path = urllib.parse.urlsplit(link)._replace(scheme="", netloc="").geturl() if link else None
    kinds["subassessments"] = [rng.choice(pages) for _ in range(per_kind)]
    for kind, paths in kinds.items():  # every kind answers 200 before it is timed
        status, body = serve.get(paths[0], timeout=120)
        if status != 200:
            raise SystemExit(f"benchmark: {kind} lookup GET {paths[0]}: HTTP {status} {body}")
    return kinds


def mixed(kinds: dict[str, list[str]], rng: random.Random, count: int, without: str = "") -> list[str]:
    names = [k for k in MIX if k != without]
    return [rng.choice(kinds[k]) for k in rng.choices(names, weights=[MIX[k] for k in names], k=count)]


def run_wrk(label: str, serve: Any, paths: Sequence[str], rate: float, seconds: int, workdir: Path) -> WrkResult:
    connections = max(4, round(rate / 10))  # one request per connection every ~100 ms at the target rate
    delay_ms = round(connections * 1000 / rate)
    paths_file = workdir / f"paths-{label}.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    argv = [
        *("wrk", "--latency", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"),
        *("-s", str(LUA)),
        *(arg for name, value in stack.HEADERS.items() for arg in ("-H", f"{name}: {value}")),
        f"http://127.0.0.1:{serve.port}",
        *("--", str(paths_file), str(delay_ms)),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
    match = re.search(r"^WRK-JSON (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise SystemExit(f"benchmark: wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout[-800:]}")
    data = json.loads(match.group(1))
    errors = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    result = WrkResult(
        label=label,
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=errors,
        bytes=int(data["bytes"]),
    )
    print(
        f"{label:<17} {result.rate:6.1f} req/s  p50 {result.p50_ms:7.1f} ms  p90 {result.p90_ms:7.1f} ms  "
        f"p99 {result.p99_ms:7.1f} ms  max {result.max_ms:7.1f} ms  errors {errors}  "
        f"{result.bytes / max(result.requests, 1) / 1000:.1f} kB/response",
        flush=True,
    )
    return result


def server_name(serve: Any) -> str:
    response = realparts.http("GET", serve.url("/api/health"))
    return response.headers.get("server", "(no Server header)")


def profile(store_path: Path, kinds: dict[str, list[str]], requests: int) -> None:
    """cProfile of the handlers in this process: the app's functions through serve's dispatcher, same store."""
    os.environ["ACRGUARD_STORE"] = str(store_path)
    os.environ["ACRGUARD_API_KEY"] = stack.API_KEY
    from function_app import app
    from scanner.localhost.serve import Dispatcher, index_functions

    dispatcher = Dispatcher(index_functions(app.get_functions()))
    headers = dict(stack.HEADERS)
    for kind, paths in kinds.items():
        chosen = paths[:requests]
        dispatcher.dispatch("GET", chosen[0], headers, b"", "127.0.0.1")  # store opened outside the profile
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for path in chosen:
            reply = dispatcher.dispatch("GET", path, headers, b"", "127.0.0.1")
            if reply.status != 200:
                raise SystemExit(f"benchmark: in-process GET {path}: {reply.status} {reply.body[:300]!r}")
        profiler.disable()
        each = (time.perf_counter() - started) / len(chosen) * 1000
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(12)
        print(f"\n--- {kind}: {len(chosen)} requests in process, {each:.1f} ms each (under cProfile) ---")
        print("\n".join(line for line in out.getvalue().splitlines()[4:] if line.strip()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000, help="images seeded (default 10000)")
    parser.add_argument("--registries", type=int, default=10, help="registries they are spread over (default 10)")
    parser.add_argument("--vulnerable", type=float, default=0.3, help="share of images with findings (default 0.3)")
    parser.add_argument("--rate", type=float, default=200, help="offered requests per second (default 200)")
    parser.add_argument("--seconds", type=int, default=30, help="duration of the mixed run (default 30)")
    parser.add_argument("--kind-seconds", type=int, default=10, help="duration of each single-kind run (default 10)")
    parser.add_argument("--profile", action="store_true", help="profile the handlers even when the target is met")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    if args.images < args.registries or args.rate <= 0 or args.seconds < 1:
        parser.error("need --images >= --registries, a positive --rate and --seconds")
    if shutil.which("wrk") is None:
        print("benchmark: wrk is not installed; run scripts/install-bench-deps.sh", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the serve process is stopped
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="acrguard-bench-") as tmp:
        workdir = Path(tmp)
        store_path = workdir / "store.sqlite"
        with open_store(store_path) as store:
            seeded = seed(store, args.images, args.registries, args.vulnerable, rng)
        print(
            f"seeded {len(seeded.images)} images ({seeded.unhealthy} with findings, {seeded.findings} findings) "
            f"in {len(seeded.registries)} registries, {len(seeded.repositories)} repositories, "
            f"in {seeded.seconds:.1f} s",
            flush=True,
        )
        serve = stack.start_serve(
            workdir / "serve", port=realparts.free_port(), db=default_db_path(), store=str(store_path)
        )
        try:
            server = server_name(serve)
            print(f"serve answers with Server: {server}", flush=True)
            kinds = paths_by_kind(serve, seeded, rng, per_kind=500)
            total = max(1, round(args.rate * args.seconds))
            baseline = run_wrk("health", serve, ["/api/health"], args.rate, args.seconds, workdir)
            mix = run_wrk("mix", serve, mixed(kinds, rng, total), args.rate, args.seconds, workdir)
            # The same mix without the sub-assessment list, which builds a whole registry per page.
            rest = mixed(kinds, rng, total, without="subassessments")
            lookups = run_wrk("mix-no-subassess", serve, rest, args.rate, args.seconds, workdir)
            singles = [run_wrk(k, serve, v, args.rate, args.kind_seconds, workdir) for k, v in kinds.items()]
        finally:
            serve.stop()
        report(server, seeded, args.rate, baseline, mix, [lookups, *singles])
        if args.profile or mix.p99_ms > TARGET_P99_MS:
            profile(store_path, kinds, requests=40)
    return 0


def report(
    server: str, seeded: Seeded, rate: float, baseline: WrkResult, mix: WrkResult, others: Sequence[WrkResult]
) -> None:
    print()
    print(f"server: {server}; {len(seeded.images)} images; offered {rate:.0f} req/s")
    print(f"{'load':<17} {'achieved':>10} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9} {'errors':>7}")
    for r in (baseline, mix, *others):
        print(
            f"{r.label:<17} {r.rate:>6.1f}/s {r.p50_ms:>7.1f}ms {r.p90_ms:>7.1f}ms {r.p99_ms:>7.1f}ms "
            f"{r.max_ms:>7.1f}ms {r.errors:>7}"
        )
    verdict = "met" if mix.p99_ms <= TARGET_P99_MS and mix.rate >= 0.95 * rate else "missed"
    print(
        f"target p99 <= {TARGET_P99_MS:.0f} ms at {rate:.0f} req/s: {verdict} "
        f"(mix p99 {mix.p99_ms:.1f} ms at {mix.rate:.1f} req/s; ratio to /api/health p99 "
        f"{mix.p99_ms / max(baseline.p99_ms, 0.001):.1f}x)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
