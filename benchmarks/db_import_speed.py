"""How fast `acrguard db import` fills the vulnerability database, and how fast scans read it back.

Imports a whole advisory tree (default: the staged `/work/shared/data/osv`, ~8,700 OSV records in JSON and YAML
plus the Alpine secdb; else the bundled snapshot) into a fresh temporary database N times and prints, per run and
as the median: records per second, and the database size. Then, on that database, the read side as a scan uses
it: 500 cold lookups (a new `SqliteVulnDatabase` each run, so nothing is cached) for

* `all-hit`: 500 (ecosystem, name) pairs drawn from the database's own index: every package has advisories,
  the worst case;
* `30%-hit`: 150 of those plus 350 names without advisories, closer to a real image.

For context it also times the parts of an import alone: reading and parsing the files, and schema validation
with the compiled validator and with jsonschema's. Prints figures; asserts nothing.
Usage: `.venv/bin/python benchmarks/db_import_speed.py [--source DIR] [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from jsonschema import Draft202012Validator  # noqa: E402

from scanner.vulndb.osv_import import import_sources  # noqa: E402
from scanner.vulndb.readers import Document, iter_tree  # noqa: E402
from scanner.vulndb.schema import compile_schema  # noqa: E402
from scanner.vulndb.secdb import is_secdb  # noqa: E402
from scanner.vulndb.snapshot import snapshot_dir  # noqa: E402
from scanner.vulndb.sqlite_db import SqliteVulnDatabase  # noqa: E402

STAGED = Path("/work/shared/data/osv")
RELEASES = {"Alpine": "Alpine:v3.11", "AlmaLinux": "AlmaLinux:9", "Debian": "Debian:12", "Ubuntu": "Ubuntu:22.04"}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _import_runs(source: Path, runs: int, scratch: Path) -> tuple[Path, int]:
    rates: list[float] = []
    seconds: list[float] = []
    db_path = scratch / "run-0.sqlite"
    records = skipped = 0
    for run in range(runs):
        db_path = scratch / f"run-{run}.sqlite"
        started = time.perf_counter()
        results = import_sources(db_path, [str(source)])
        elapsed = time.perf_counter() - started
        records = sum(r.records for r in results)
        skipped = sum(r.skipped for r in results)
        rates.append(records / elapsed)
        seconds.append(elapsed)
        print(
            f"  run {run + 1}: {records:,} records ({skipped:,} skipped) in {elapsed:.2f} s: {records / elapsed:,.0f}/s"
        )
        if run < runs - 1:
            db_path.unlink()
    size = db_path.stat().st_size
    print(
        f"import: median {_median(rates):,.0f} records/s ({_median(seconds):.2f} s for {records:,} records, "
        f"min {min(seconds):.2f} s, max {max(seconds):.2f} s); database {size / 1e6:.1f} MB "
        f"({size / max(records, 1) / 1e3:.1f} kB per record)"
    )
    return db_path, records


def _parts(source: Path) -> None:
    started = time.perf_counter()
    documents = [item for item in iter_tree(source) if isinstance(item, Document)]
    parsed = time.perf_counter() - started
    records: list[Any] = [d.data for d in documents if isinstance(d.data, dict) and not is_secdb(d.data)]
    fast = compile_schema(_schema())
    assert fast is not None
    started = time.perf_counter()
    for record in records:
        fast(record)
    compiled = time.perf_counter() - started
    reference = Draft202012Validator(_schema())
    started = time.perf_counter()
    for record in records:
        reference.is_valid(record)
    slow = time.perf_counter() - started
    print(
        f"parts: read+parse {len(documents):,} files {parsed:.2f} s; validate {len(records):,} records: compiled "
        f"{compiled:.2f} s ({compiled / len(records) * 1e6:.0f} µs each), jsonschema {slow:.2f} s "
        f"({slow / len(records) * 1e6:.0f} µs each)"
    )


def _schema() -> dict[str, Any]:
    return dict(json.loads((snapshot_dir() / "osv-schema.json").read_text()))


def _lookups(db_path: Path, runs: int) -> None:
    conn = sqlite3.connect(db_path)
    keys: list[tuple[str, str]] = conn.execute(
        "SELECT DISTINCT base_ecosystem, name_key FROM affected_index"
    ).fetchall()
    conn.close()
    rng = random.Random(500)
    inventories = {
        "all-hit": rng.sample(keys, min(500, len(keys))),
        "30%-hit": rng.sample(keys, min(150, len(keys))) + [("PyPI", f"no-such-package-{n}") for n in range(350)],
    }
    for label, inventory in inventories.items():
        times: list[float] = []
        returned = 0
        for _ in range(runs):
            with SqliteVulnDatabase.open(db_path) as db:
                started = time.perf_counter()
                returned = sum(len(db.lookup(RELEASES.get(base, base), name)) for base, name in inventory)
                times.append(time.perf_counter() - started)
        print(
            f"lookup {label}: {len(inventory)} lookups returning {returned:,} records: median "
            f"{_median(times) * 1e3:.1f} ms (min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, help="advisory tree (default: /work/shared/data/osv, else the snapshot)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    source: Path = args.source or (STAGED if STAGED.is_dir() else snapshot_dir())
    print(f"source: {source}")
    with tempfile.TemporaryDirectory(prefix="acrguard-bench-") as scratch:
        db_path, _ = _import_runs(source, args.runs, Path(scratch))
        _parts(source)
        _lookups(db_path, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
