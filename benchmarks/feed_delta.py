"""Rescan after a database update, delta against full: what re-assessing only what an update changed costs.

The fleet: N stored images (default 100,000), four real inventories in turn, each replica under its own
digest, tag and repository (among 50): the ~76 MB Debian bookworm image of `push_to_findings.py` (built with
mmdebstrap + umoci through the test harness, cached), the Alpine 3.10 sample image in `samples/`, and the
Python and Node package trees of the detector fixtures (`tests/fixtures/python`, `tests/fixtures/node/v3-installed`).
Each image as a scan leaves it: push recorded, inventory saved by the current scanner and detector versions
(the package index with it), pulled within the last day; then one full rescan assesses them all and sets the
mark the next rescan after an update starts from.

The database: every record of the bundled snapshot and the npm advisories of the test fixtures, imported as
one directory source that is the whole of its feed (not a selection: a selection's count is in every
NotAssessed reason, so any change to it is a change of every image of the ecosystem). Each update re-imports
that directory with 1 % of its advisories changed (a fixed random choice): withdrawn on odd runs, restored on
even ones, so every run changes findings and publishes events.

Timed: `delta_rescan.rescan_after_update` right after the update is applied (change set read, affected digests
found, re-assessed from stored inventories, events published to a local receiver through the real
`EventGridPublisher`, as arrays the way a topic takes them; `--publisher webhook`: the real `WebhookPublisher`,
one POST per event), median of several runs; beside it a full rescan of the same store
(`delta_rescan.full_rescan`, steady state: the same findings again). On SQLite, and on PostgreSQL when the test
suite's server helper can start one (`tests/store/pg_server.py`: Debian's postgresql package), its buffer
cache sized like a deployed server's (`--shared-buffers`, default 1GB, printed). Prints figures;
asserts nothing about time, only that the delta re-assessed exactly the digests the update names.
Then `--random-runs` more updates whose 1 % is wholly at random, timed apart. With `--affecting K`, K of the
changed advisories are drawn from those behind the fleet's findings (the rest at
random): since the replicas of a kind share their packages, each such advisory affects every replica of a kind.
Usage: `.venv/bin/python benchmarks/feed_delta.py [--images N] [--runs N] [--full-runs N] [--affecting K]
[--no-postgres] [--no-sqlite] [--shared-buffers SIZE]` (`--quick`: 2,000 images, 2 runs).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import print_rows, spread  # noqa: E402
from scanner import __version__  # noqa: E402
from scanner.inventory.build import inventory  # noqa: E402
from scanner.model.types import Inventory  # noqa: E402
from scanner.policy.gate_actions import EventGridPublisher, WebhookPublisher  # noqa: E402
from scanner.service.delta_rescan import full_rescan, rescan_after_update  # noqa: E402
from scanner.service.pipeline import Policy, current_detector_versions  # noqa: E402
from scanner.store import FindingsStore, open_store  # noqa: E402
from scanner.store.package_index import package_keys  # noqa: E402
from scanner.vulndb.changes import ChangeSet  # noqa: E402
from scanner.vulndb.osv_import import import_sources  # noqa: E402
from scanner.vulndb.snapshot import default_db_path  # noqa: E402
from scanner.vulndb.sqlite_db import SqliteVulnDatabase  # noqa: E402
from tests.integration import realparts  # noqa: E402
from tests.policy.httprecorder import recording_server  # noqa: E402

SAMPLE = REPO_ROOT / "samples" / "alpine-3.10-app.tar"
FIXTURES = REPO_ROOT / "tests" / "fixtures"
NPM_ADVISORIES = (
    FIXTURES / "node-lockfiles" / "advisories" / "GHSA-grv7-fg5c-xmjg.json",
    FIXTURES / "node-lockfiles" / "advisories" / "GHSA-93q8-gq69-wqmw.json",
    FIXTURES / "osv-written" / "GHSA-xvch-5gv4-984h.json",
)
REGISTRY = "bench.azurecr.io"
REPOSITORIES = 50
SHARE = 0.01  # of the advisories each update changes
DEBIAN_SPEC = realparts.DebianSpec(  # the image of benchmarks/push_to_findings.py (one cache entry for all)
    name="bench-bookworm-80",
    include=("python3", "perl", "curl", "git", "openssh-client", "ca-certificates", "procps"),
    keep_rootfs=False,
)


@dataclass(frozen=True)
class Sample:
    name: str
    inventory: Inventory


@dataclass
class Figures:
    backend: str
    seeded_in: float
    first_full: float
    delta: list[float]
    full: list[float]
    affected: list[int]
    changed: list[int]
    random_delta: list[float]  # updates whose 1 % is wholly at random
    random_affected: list[int]


def samples() -> list[Sample]:
    built = realparts.ensure_debian_images(DEBIAN_SPEC, progress=True)
    references = (
        ("debian", built.oci("bookworm")),
        ("alpine", f"docker-archive:{SAMPLE}"),
        ("python", f"dir:{FIXTURES / 'python'}"),
        ("node", f"dir:{FIXTURES / 'node' / 'v3-installed'}"),
    )
    return [Sample(name, inventory(reference)[0]) for name, reference in references]


def image_digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(f"acrguard-feed-delta-{i}".encode()).hexdigest()


def feed_records() -> list[dict[str, Any]]:
    """The bundled snapshot's records (every one, whole) and the fixtures' npm advisories."""
    with SqliteVulnDatabase.open(default_db_path()) as snapshot:
        rows = snapshot._conn.execute("SELECT json FROM records WHERE withdrawn IS NULL ORDER BY id").fetchall()
    records: list[dict[str, Any]] = [json.loads(text) for (text,) in rows]
    return records + [json.loads(path.read_text(encoding="utf-8")) for path in NPM_ADVISORIES]


class Feed:
    """The benchmark's feed: a directory of OSV records, re-imported whole by each update."""

    def __init__(self, directory: Path, db_path: Path, records: list[dict[str, Any]]) -> None:
        self.directory = directory
        self.db_path = db_path
        self.records = records
        self.changing: set[int] = set()

    def choose(self, behind_findings: set[str], affecting: int) -> None:
        """The 1 % each update changes: `affecting` of them among the advisories behind the fleet's findings
        (ids in `behind_findings`), the rest among all the others, at random (a fixed seed)."""
        pick = random.Random(20261205)
        count = max(1, round(len(self.records) * SHARE))
        behind = [n for n, r in enumerate(self.records) if r["id"] in behind_findings]
        chosen = set(pick.sample(behind, min(affecting, len(behind))))
        others = [
            n for n in range(len(self.records)) if n not in chosen and self.records[n]["id"] not in behind_findings
        ]
        self.changing = chosen | set(pick.sample(others, count - len(chosen)))

    def write(self, run: int) -> None:
        """Run 0: as first imported; odd runs: the chosen 1 % withdrawn; even runs: restored."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        for n, record in enumerate(self.records):
            if run and n in self.changing:
                # Newer than any copy held (an older `modified` would be kept out), as a feed's edit is.
                record = {**record, "modified": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
                if run % 2:
                    record["withdrawn"] = record["modified"]
            name = hashlib.sha256(str(record["id"]).encode()).hexdigest()[:24]
            (self.directory / f"{name}.json").write_text(json.dumps(record), encoding="utf-8")

    def apply(self, run: int) -> float:
        """The update of `run`: written and imported; the seconds the import took."""
        self.write(run)
        started = time.perf_counter()
        import_sources(self.db_path, [str(self.directory)])
        return time.perf_counter() - started


def seed(store: FindingsStore, kinds: Sequence[Sample], count: int) -> float:
    """What pushes, scans and pulls leave in the store, for every image: inventories, index, pull."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    detectors = current_detector_versions()
    for i in range(count):
        sample = kinds[i % len(kinds)]
        digest = image_digest(i)
        repository = f"team-{i % REPOSITORIES}/{sample.name}"
        image = replace(sample.inventory.image, digest=digest, reference=f"{REGISTRY}/{repository}@{digest}")
        pushed = now - timedelta(days=3, seconds=i)
        store.record_push(REGISTRY, repository, digest, f"build-{i}", realparts.OCI_MANIFEST, pushed)
        store.save_inventory(REGISTRY, digest, replace(sample.inventory, image=image), __version__, detectors, pushed)
        store.record_pull(REGISTRY, repository, digest, now - timedelta(hours=1, seconds=i), "registry-notification")
        if (i + 1) % 10000 == 0:
            print(f"  seeded {i + 1}", flush=True)
    return time.perf_counter() - started


def expected_affected(store: FindingsStore, kinds: Sequence[Sample], count: int, db_path: Path, previous: str) -> int:
    """How many images the update names, counted from the kinds (replicas share packages and findings): those
    with a changed package key or ecosystem, or an open finding naming a changed id."""
    with SqliteVulnDatabase.open(db_path) as db:
        changes = db.changes_since(previous)
    if not isinstance(changes, ChangeSet):
        raise SystemExit(f"benchmark: the update's change set is unknown: {changes.reason}")
    hit = set()
    for n, sample in enumerate(kinds):
        keys = package_keys(sample.inventory)
        ids = {i for f in store.list_findings(REGISTRY, image_digest(n)) for i in (f.finding.id, *f.finding.aliases)}
        if keys & changes.packages or {eco for eco, _ in keys} & changes.ecosystems or ids & changes.vuln_ids:
            hit.add(sample.name)
    return sum(1 for i in range(count) if kinds[i % len(kinds)].name in hit)


def measure(
    backend: str, url: str, kinds: Sequence[Sample], records: list[dict[str, Any]], args: argparse.Namespace
) -> Figures:
    count, runs, full_runs = args.images, args.runs, args.full_runs
    with tempfile.TemporaryDirectory(prefix="acrguard-feed-delta-") as tmp:
        feed = Feed(Path(tmp) / "feed", Path(tmp) / "vulndb.sqlite", records)
        feed.apply(0)
        since = datetime.now(UTC) - timedelta(days=30)
        with open_store(url) as store, recording_server() as webhook:
            publisher = (
                EventGridPublisher(f"{webhook.url}/api/events", "bench-key", attempts=1)
                if args.publisher == "eventgrid"
                else WebhookPublisher(f"{webhook.url}/hook", attempts=1)
            )
            policy = Policy(publisher=publisher)
            print(f"[{backend}] seeding {count} images", flush=True)
            seeded = seed(store, kinds, count)
            with SqliteVulnDatabase.open(feed.db_path) as db:
                started = time.perf_counter()
                first = full_rescan(store, db, since, __version__, policy=policy)
                first_full = time.perf_counter() - started
            assert first.rematched == count and first.failed == 0, first
            print(f"[{backend}] first full rescan: {first_full:.1f} s", flush=True)
            ids = {f.finding.id for n in range(len(kinds)) for f in store.list_findings(REGISTRY, image_digest(n))}
            feed.choose(ids, args.affecting)
            delta, affected, changed = [], [], []
            random_delta: list[float] = []
            random_affected: list[int] = []
            for run in range(1, runs + args.random_runs + 1):
                if run == runs + 1:
                    feed.choose(ids, 0)
                with SqliteVulnDatabase.open(feed.db_path) as db:
                    previous = db.build()
                assert previous is not None
                imported = feed.apply(run)
                want = expected_affected(store, kinds, count, feed.db_path, previous)
                sent = events_received(webhook.requests)
                with SqliteVulnDatabase.open(feed.db_path) as db:
                    started = time.perf_counter()
                    result = rescan_after_update(store, db, since, __version__, policy=policy)
                    delta.append(time.perf_counter() - started)
                assert result.mode == "delta", result.reason
                assert result.affected == result.counts.rematched == want, (result, want)
                assert events_received(webhook.requests) - sent == result.changed
                print(
                    f"[{backend}] update {run}: import {imported:.1f} s; delta rescan {delta[-1]:.2f} s, "
                    f"{result.affected} affected, {result.changed} events",
                    flush=True,
                )
                if run > runs:
                    random_delta.append(delta.pop())
                    random_affected.append(result.affected)
                else:
                    affected.append(result.affected)
                    changed.append(result.changed)
            full = []
            for _ in range(full_runs):
                with SqliteVulnDatabase.open(feed.db_path) as db:
                    started = time.perf_counter()
                    counts = full_rescan(store, db, since, __version__, policy=policy)
                    full.append(time.perf_counter() - started)
                assert counts.rematched == count
                print(f"[{backend}] full rescan: {full[-1]:.1f} s", flush=True)
    return Figures(backend, seeded, first_full, delta, full, affected, changed, random_delta, random_affected)


def events_received(requests: Sequence[Any]) -> int:
    """Events the receiver got: one per webhook POST, an array's length per Event Grid POST."""
    return sum(len(body) if isinstance(body := request.json(), list) else 1 for request in requests)


# The server's buffer cache as a deployed server sizes it (PostgreSQL's guidance: a quarter of a dedicated
# server's memory; managed servers size it to their SKU), not initdb's 128 MB: a 100,000-image store's findings
# and inventories are a few GB, and at 128 MB each batch's reads evicted and wrote back pages.
SHARED_BUFFERS = "1GB"


@contextlib.contextmanager
def postgres_url(shared_buffers: str) -> Iterator[str]:
    """A fresh schema on a throw-away PostgreSQL server, started by the store tests' own helper."""
    pg_server: Any = importlib.import_module("tests.store.pg_server")
    with pg_server.running_postgres(settings={"shared_buffers": shared_buffers}) as server:
        yield server.fresh_url()


def report(
    figures: Sequence[Figures],
    kinds: Sequence[Sample],
    count: int,
    advisories: int,
    affecting: int,
    publisher: str,
    shared_buffers: str | None,
) -> None:
    described = "; ".join(f"{s.name} {len(s.inventory.packages)} packages" for s in kinds)
    rows = [
        ("inventories", described),
        ("images", f"{count:,}, the four kinds in turn, {REPOSITORIES} repositories"),
        (
            "update",
            f"{round(advisories * SHARE)} of {advisories} advisories (1 %), withdrawn / restored in turn, "
            f"{affecting} of them behind findings of the fleet (then: all at random)",
        ),
        ("events to", "an Event Grid topic (arrays)" if publisher == "eventgrid" else "a webhook (one POST each)"),
    ]
    if shared_buffers is not None:
        rows.append(("postgresql server", f"shared_buffers={shared_buffers}"))
    for fig in figures:
        rows += [
            (f"{fig.backend}: seeding", f"{fig.seeded_in:.1f} s"),
            (f"{fig.backend}: first full rescan", f"{fig.first_full:.1f} s ({count / fig.first_full:.0f} images/s)"),
            (
                f"{fig.backend}: delta rescan",
                f"{statistics.median(fig.delta):.2f} s median of {len(fig.delta)} {spread(fig.delta)}; "
                f"{statistics.median(fig.affected):,.0f} affected, {statistics.median(fig.changed):,.0f} events",
            ),
            (
                f"{fig.backend}: full rescan",
                f"{statistics.median(fig.full):.1f} s median of {len(fig.full)} "
                f"({count / statistics.median(fig.full):.0f} images/s)",
            ),
            (f"{fig.backend}: full / delta", f"{statistics.median(fig.full) / statistics.median(fig.delta):.0f}x"),
        ]
        if fig.random_delta:
            rows.append(
                (
                    f"{fig.backend}: delta, 1 % at random",
                    f"{statistics.median(fig.random_delta):.2f} s median of {len(fig.random_delta)} "
                    f"{spread(fig.random_delta)}; {statistics.median(fig.random_affected):,.0f} affected",
                )
            )
    print_rows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000, help="images seeded (default 100,000)")
    parser.add_argument("--runs", type=int, default=3, help="updates, each followed by a timed delta (default 3)")
    parser.add_argument("--full-runs", type=int, default=1, help="timed full rescans (default 1)")
    parser.add_argument(
        "--affecting",
        type=int,
        default=0,
        help="how many of the changed advisories are behind findings of the fleet (default 0: all at random)",
    )
    parser.add_argument(
        "--random-runs", type=int, default=2, help="then updates whose 1 %% is wholly at random (default 2)"
    )
    parser.add_argument(
        "--publisher",
        choices=("eventgrid", "webhook"),
        default="eventgrid",
        help="where events go: an Event Grid topic's API (arrays, the default) or a webhook (one POST each)",
    )
    parser.add_argument("--quick", action="store_true", help="2,000 images, 2 updates")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--shared-buffers",
        default=SHARED_BUFFERS,
        help=f"the PostgreSQL server's buffer cache (default {SHARED_BUFFERS}; initdb's own is 128MB)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.runs = 2000, 2
    if args.images < 4 or args.runs < 1 or args.full_runs < 1 or args.affecting < 0 or args.random_runs < 0:
        parser.error("--images must be at least 4, --runs and --full-runs at least 1, --affecting not negative")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the PostgreSQL server is stopped
    try:
        kinds = samples()
    except realparts.RealPartsError as err:
        print(f"benchmark: {err}", file=sys.stderr)
        return 2
    records = feed_records()
    figures = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="acrguard-bench-") as tmp:
            figures.append(measure("sqlite", str(Path(tmp) / "store.sqlite"), kinds, records, args))
    if not args.no_postgres:
        with postgres_url(args.shared_buffers) as url:
            figures.append(measure("postgresql", url, kinds, records, args))
    shared_buffers = None if args.no_postgres else args.shared_buffers
    report(figures, kinds, args.images, len(records), args.affecting, args.publisher, shared_buffers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
