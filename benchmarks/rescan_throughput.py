"""Rescan throughput of stored inventories: `rescan_recent` over N recently pulled images, against matching alone.

Makes two real inventories in process: the ~76 MB Debian bookworm image of `push_to_findings.py` (built with
mmdebstrap + umoci through the test harness, cached) and the Alpine 3.10 sample image in `samples/`. Seeds a
findings store with N images (default 2,000, half of each kind, each with its own digest, tag and repository
among 50) as a scan would have left them: push recorded, inventory saved by the current scanner and detector
versions, first assessment saved, pulled within the last day. Then times
`scanner.service.rescan.rescan_recent` against the database of the bundled vulnerability snapshot (median of
several runs on the same store; each run re-assesses every image and saves the assessment), twice: with no
policy (re-match and store only) and with the policy the rescan timer uses (`policy_from_settings`: the
repository's rules, remediation templates and gates).

Baseline: `find_vulnerabilities` over the same N inventories, already in memory, in the same process: matching
alone, with no store. Runs against SQLite, and against PostgreSQL too when the test suite's server helper can
start one (`tests/store/conftest.py`: Debian's postgresql package). A per-step breakdown (store reads, matching
and policy, store writes) comes from one extra instrumented run. Prints figures; asserts nothing about time.
Usage: `.venv/bin/python benchmarks/rescan_throughput.py [--images N] [--runs N] [--no-postgres]`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import print_rows  # noqa: E402
from scanner import __version__  # noqa: E402
from scanner.assess.assessment import assess  # noqa: E402
from scanner.assess.findings import find_vulnerabilities  # noqa: E402
from scanner.inventory.build import inventory  # noqa: E402
from scanner.model.settings import Settings  # noqa: E402
from scanner.model.types import Inventory  # noqa: E402
from scanner.service.pipeline import Policy, current_detector_versions  # noqa: E402
from scanner.service.policy import policy_from_settings  # noqa: E402
from scanner.service.rescan import rescan_recent  # noqa: E402
from scanner.store import FindingsStore, open_store  # noqa: E402
from scanner.vulndb.snapshot import default_db_path  # noqa: E402
from scanner.vulndb.sqlite_db import SqliteVulnDatabase  # noqa: E402
from tests.integration import realparts  # noqa: E402

SAMPLE = REPO_ROOT / "samples" / "alpine-3.10-app.tar"
REGISTRY = "bench.azurecr.io"
REPOSITORIES = 50
# The same image as benchmarks/push_to_findings.py (one cache entry for both).
DEBIAN_SPEC = realparts.DebianSpec(
    name="bench-bookworm-80",
    include=("python3", "perl", "curl", "git", "openssh-client", "ca-certificates", "procps"),
    keep_rootfs=False,
)
# Store calls the rescan makes, timed one by one in the instrumented run.
STORE_STEPS = ("recently_pulled", "load_inventory", "save_assessment", "record_usage", "rules_revision")


@dataclass(frozen=True)
class Sample:
    name: str
    inventory: Inventory
    findings: int


@dataclass(frozen=True)
class StoreFigures:
    backend: str
    seeded_in: float
    bare: list[float]  # rescan_recent seconds, no policy
    with_policy: list[float]  # rescan_recent seconds, the timer's policy
    rematched: int
    steps: dict[str, float]  # instrumented run (timer's policy): seconds per store step, "other" the rest


def samples() -> list[Sample]:
    built = realparts.ensure_debian_images(DEBIAN_SPEC, progress=True)
    db = SqliteVulnDatabase.open(default_db_path())
    out = []
    for name, reference in (("debian", built.oci("bookworm")), ("alpine", f"docker-archive:{SAMPLE}")):
        inv = inventory(reference)[0]
        out.append(Sample(name, inv, len(find_vulnerabilities(inv.packages, db))))
    db.close()
    return out


def image_digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(f"acrguard-bench-image-{i}".encode()).hexdigest()


def inventories(kinds: Sequence[Sample], count: int) -> list[tuple[str, str, Inventory]]:
    """(repository, digest, inventory) for `count` images: the samples in turn, each under its own digest."""
    out = []
    for i in range(count):
        sample = kinds[i % len(kinds)]
        digest = image_digest(i)
        repository = f"team-{i % REPOSITORIES}/{sample.name}"
        image = replace(sample.inventory.image, digest=digest, reference=f"{REGISTRY}/{repository}@{digest}")
        out.append((repository, digest, replace(sample.inventory, image=image)))
    return out


def seed(store: FindingsStore, images: Sequence[tuple[str, str, Inventory]], db: SqliteVulnDatabase) -> float:
    """What a push, its scan and a pull leave in the store, for every image."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    detectors = current_detector_versions()
    assessed: dict[str, Any] = {}
    for n, (repository, digest, inv) in enumerate(images):
        pushed = now - timedelta(days=3, seconds=n)
        store.record_push(REGISTRY, repository, digest, f"build-{n}", realparts.OCI_MANIFEST, pushed)
        store.save_inventory(REGISTRY, digest, inv, __version__, detectors, pushed)
        kind = repository.rsplit("/", 1)[1]
        if kind not in assessed:  # one real assessment per sample; the images of a kind share it
            assessed[kind] = assess(inv, db)
        result = assessed[kind]
        store.save_assessment(REGISTRY, digest, result.findings, result.health, result.reason, result.summary, pushed)
        store.record_usage(REGISTRY, digest, "scan", pushed)
        store.record_pull(REGISTRY, repository, digest, now - timedelta(hours=1, seconds=n), "registry-notification")
    return time.perf_counter() - started


def timed_rescan(store: FindingsStore, db: SqliteVulnDatabase, policy: Policy | None, expected: int) -> float:
    since = datetime.now(UTC) - timedelta(days=30)
    started = time.perf_counter()
    counts = rescan_recent(store, db, since, __version__, policy=policy)
    seconds = time.perf_counter() - started
    if (counts.rematched, counts.requeued, counts.failed) != (expected, 0, 0):
        raise SystemExit(f"benchmark: rescan_recent gave {counts}, expected {expected} re-matched")
    return seconds


@contextlib.contextmanager
def instrumented(store: FindingsStore, totals: dict[str, float]) -> Iterator[None]:
    """Wraps the store's methods on this instance so each call adds its duration to `totals`."""

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                totals[name] += time.perf_counter() - started

        return timed

    for name in STORE_STEPS:
        setattr(store, name, wrap(name, getattr(store, name)))
    try:
        yield
    finally:
        for name in STORE_STEPS:
            delattr(store, name)


def measure_store(
    backend: str, url: str, images: Sequence[tuple[str, str, Inventory]], db: SqliteVulnDatabase, runs: int
) -> StoreFigures:
    with open_store(url) as store:
        print(f"[{backend}] seeding {len(images)} images", flush=True)
        seeded = seed(store, images, db)
        # The timer's policy, reading stored rules from this store (as the service's does from its own).
        policy = policy_from_settings(Settings.from_environ(), store=lambda: store)
        bare, with_policy = [], []
        for i in range(runs):  # interleaved, so both see the same machine state
            bare.append(timed_rescan(store, db, None, len(images)))
            with_policy.append(timed_rescan(store, db, policy, len(images)))
            print(
                f"[{backend}] run {i + 1}/{runs}: no policy {len(images) / bare[-1]:.0f} images/s, "
                f"timer's policy {len(images) / with_policy[-1]:.0f} images/s",
                flush=True,
            )
        steps: dict[str, float] = defaultdict(float)
        with instrumented(store, steps):
            total = timed_rescan(store, db, policy, len(images))
        steps["other"] = total - sum(steps.values())
    return StoreFigures(backend, seeded, bare, with_policy, len(images), dict(steps))


def matching_alone(images: Sequence[tuple[str, str, Inventory]], db: SqliteVulnDatabase, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        for _, _, inv in images:
            find_vulnerabilities(inv.packages, db)
        out.append(time.perf_counter() - started)
    return out


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """A fresh schema on a throw-away PostgreSQL server, started by the store tests' own helper."""
    # Loaded at run time: the helper is a pytest fixture (its plain generator is `__wrapped__`).
    conftest: Any = importlib.import_module("tests.store.conftest")
    with contextlib.contextmanager(conftest.pg_server.__wrapped__)() as server:
        yield server.fresh_url()


def report(figures: Sequence[StoreFigures], baseline: list[float], kinds: Sequence[Sample], count: int) -> None:
    match = count / statistics.median(baseline)
    described = (f"{s.name}: {len(s.inventory.packages)} packages, {s.findings} findings" for s in kinds)
    rows = [
        ("inventories", "; ".join(described)),
        ("images", f"{count}, the two kinds in turn, one registry, {REPOSITORIES} repositories"),
        ("baseline: matching alone", f"{match:.0f} images/s (find_vulnerabilities, inventories in memory)"),
    ]
    for fig in figures:
        bare = count / statistics.median(fig.bare)
        policy = count / statistics.median(fig.with_policy)
        total = sum(fig.steps.values())
        split = ", ".join(f"{name} {100 * seconds / total:.0f}%" for name, seconds in fig.steps.items() if seconds)
        rows += [
            (f"{fig.backend}: seeding", f"{fig.seeded_in:.1f} s ({count / fig.seeded_in:.0f} images/s)"),
            (f"{fig.backend}: rescan, no policy", f"{bare:.0f} images/s, median of {len(fig.bare)}"),
            ("  ratio matching alone / rescan", f"{match / bare:.1f}x"),
            (f"{fig.backend}: rescan, timer's policy", f"{policy:.0f} images/s, median of {len(fig.with_policy)}"),
            ("  ratio matching alone / rescan", f"{match / policy:.1f}x"),
            (f"{fig.backend}: where the time goes", split),
        ]
    print_rows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="images seeded (default 2000)")
    parser.add_argument("--runs", type=int, default=3, help="timed rescans of each kind (default 3)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    if args.images < 2 or args.runs < 1:
        parser.error("--images must be at least 2 and --runs at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the PostgreSQL server is stopped
    try:
        kinds = samples()
    except realparts.RealPartsError as err:
        print(f"benchmark: {err}", file=sys.stderr)
        return 2
    images = inventories(kinds, args.images)
    db = SqliteVulnDatabase.open(default_db_path())
    baseline = matching_alone(images, db, args.runs)
    figures = []
    with tempfile.TemporaryDirectory(prefix="acrguard-bench-") as tmp:
        figures.append(measure_store("sqlite", str(Path(tmp) / "store.sqlite"), images, db, args.runs))
    if not args.no_postgres:
        with postgres_url() as url:
            figures.append(measure_store("postgresql", url, images, db, args.runs))
    report(figures, baseline, kinds, args.images)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
