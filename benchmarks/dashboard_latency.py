"""Dashboard page latency of `acrguard serve` with N images in the store (default 10,000).

Seeds a SQLite findings store as `benchmarks/http_lookup.py` does (images spread over registries and
repositories, a share of them carrying a random subset of the Alpine sample's real findings), starts
`acrguard serve` on it, and requests each dashboard page one request at a time (a connection each), with
the API key header: the overview, a repository's images, one image (findings, layers, scans), one finding,
one vulnerability (of the most widespread), the rules and the gates. Prints p50, p95 and the maximum per page and
over all of them; the goal is a p95 under 100 ms. Asserts nothing about time.
Usage: `.venv/bin/python benchmarks/dashboard_latency.py [--images N] [--requests R]`.
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scanner.store import open_store  # noqa: E402
from scanner.vulndb.snapshot import default_db_path  # noqa: E402
from tests.integration import realparts  # noqa: E402

# Loaded at run time, used untyped (see benchmarks/http_lookup.py).
lookup: Any = importlib.import_module("benchmarks.http_lookup")
stack: Any = importlib.import_module("tests.localhost.stack")

GOAL_P95_MS = 100.0


def paths(seeded: Any, store_path: Path, rng: random.Random, per_page: int) -> dict[str, list[str]]:
    """Page kind → `per_page` request targets, over random images, repositories and vulnerabilities."""
    quote = urllib.parse.quote
    with open_store(store_path) as store:
        spread = store.widespread_vulnerabilities(20)
        vulnerable = [k for k in seeded.images if store.get_image(k[0], k[2]) and store.list_findings(k[0], k[2])][:50]
        finding_keys = {(r, d): store.list_findings(r, d)[0].key for r, _, d in vulnerable}
    base = "/api/dashboard"
    out: dict[str, list[str]] = {"overview": [], "repository": [], "image": [], "finding": [], "vulnerability": []}
    for _ in range(per_page):
        registry, repository, digest = rng.choice(seeded.images)
        r, _, d = rng.choice(vulnerable)
        out["overview"].append(base + rng.choice(["", "?days=7", "?days=90", f"?registry={registry}"]))
        out["repository"].append(f"{base}/images?registry={registry}&repository={quote(repository, safe='')}")
        out["image"].append(f"{base}/images/{registry}/{digest}" + rng.choice(["", "?sort=package", "?fix=fixed"]))
        out["finding"].append(f"{base}/images/{r}/{d}/findings/{finding_keys[(r, d)]}")
        out["vulnerability"].append(f"{base}/vulnerabilities/{rng.choice(spread).vuln_id}")
    out["rules"] = [f"{base}/rules"] * per_page
    out["gates"] = [f"{base}/gates"] * per_page
    return out


def measure(port: int, targets: Sequence[str]) -> list[float]:
    """Milliseconds per request, each read to its end, a connection each (the connection's set-up counted, the
    worst case for a page)."""
    timings = []
    for target in targets:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            started = time.perf_counter()
            connection.request("GET", target, headers={"x-api-key": stack.API_KEY})
            response = connection.getresponse()
            body = response.read()
            timings.append((time.perf_counter() - started) * 1000)
        finally:
            connection.close()
        if response.status != 200:
            raise SystemExit(f"benchmark: {target} answered {response.status}: {body[:300]!r}")
    return timings


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000, help="images seeded (default 10000)")
    parser.add_argument("--registries", type=int, default=10, help="registries they are spread over (default 10)")
    parser.add_argument("--vulnerable", type=float, default=0.3, help="share of images with findings (default 0.3)")
    parser.add_argument("--requests", type=int, default=200, help="requests per page kind (default 200)")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="acrguard-bench-dash-") as tmp:
        workdir = Path(tmp)
        store_path = workdir / "store.sqlite"
        with open_store(store_path) as store:
            seeded = lookup.seed(store, args.images, args.registries, args.vulnerable, rng)
        print(
            f"seeded {len(seeded.images)} images ({seeded.unhealthy} with findings, {seeded.findings} findings) "
            f"in {len(seeded.repositories)} repositories in {seeded.seconds:.1f} s",
            flush=True,
        )
        targets = paths(seeded, store_path, rng, args.requests)
        serve = stack.start_serve(
            workdir / "serve", port=realparts.free_port(), db=default_db_path(), store=str(store_path)
        )
        try:
            measure(serve.port, [t[0] for t in targets.values()])  # first use: templates compiled, store opened
            results = {kind: measure(serve.port, pages) for kind, pages in targets.items()}
        finally:
            serve.stop()
    every = [ms for timings in results.values() for ms in timings]
    print(f"\n{'page':<14}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for kind, timings in [*results.items(), ("all", every)]:
        p50, p95 = statistics.median(timings), percentile(timings, 0.95)
        print(f"{kind:<14}{len(timings):>9}{p50:>9.1f}{p95:>9.1f}{max(timings):>9.1f}")
    p95 = percentile(every, 0.95)
    verdict = "meets" if p95 < GOAL_P95_MS else "misses"
    print(
        f"\ndashboard p95 over all pages: {p95:.1f} ms with {args.images} images"
        f" ({verdict} the {GOAL_P95_MS:.0f} ms goal)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
