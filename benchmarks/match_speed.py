"""How long matching a 500-package inventory against the whole imported database takes.

Imports the staged OSV data (default `/work/shared/data/osv`: Alpine secdb, PyPI, Go and AlmaLinux 9
records; else the bundled snapshot) into a temporary database once, then builds a 500-package inventory
from the database's own index (every package name has advisories, so every lookup does real matching
work: ranges, version comparisons, alias merging, severity) and times `find_vulnerabilities` on it:
median of N runs, each with a freshly opened database (cold record cache) and, separately, warm.

Three inventories, all 500 packages:
* `patched`: every package has advisories and is installed at the highest fixed version they name (an
  up-to-date image: every range is evaluated, few findings);
* `typical`: 150 packages with advisories at old versions, 350 without any (names no advisory names);
* `worst`: every package has advisories and is older than all of them (thousands of findings).
Prints figures; asserts nothing. Usage: `.venv/bin/python benchmarks/match_speed.py [--source DIR] [--runs N]`.
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

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scanner.assess.findings import find_vulnerabilities  # noqa: E402
from scanner.model.types import Package  # noqa: E402
from scanner.vulndb.osv_import import import_sources  # noqa: E402
from scanner.vulndb.snapshot import snapshot_dir  # noqa: E402
from scanner.vulndb.sqlite_db import SqliteVulnDatabase  # noqa: E402

STAGED = Path("/work/shared/data/osv")
KINDS = {"Alpine": "apk", "PyPI": "pypi", "Go": "golang", "AlmaLinux": "rpm", "npm": "npm", "Debian": "deb"}
# A plausible installed version per ecosystem: old enough that many advisories apply.
VERSIONS = {
    "apk": "1.0.0-r0",
    "pypi": "1.0.0",
    "golang": "v0.1.0",
    "rpm": "1.0.0-1.el9",
    "npm": "1.0.0",
    "deb": "1.0-1",
}


def sources(root: Path) -> list[str]:
    if root.is_dir() and (root / "alpine-secdb").is_dir():
        return [str(p) for p in sorted(root.iterdir()) if p.is_dir() and p.name != "osv-schema"]
    return [str(snapshot_dir())]


def inventory(db_path: Path, size: int, seed: int, kind_of_image: str = "worst") -> list[Package]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        table = next(t for t in ("affected_index", "affected", "packages") if t in tables)
        columns = [r[1] for r in conn.execute(f"pragma table_info({table})")]
        eco_col = next(c for c in columns if "ecosystem" in c)
        name_col = next(c for c in columns if "name" in c)
        pairs = sorted(set(conn.execute(f"select {eco_col}, {name_col} from {table}")))
    rng = random.Random(seed)
    hits = 150 if kind_of_image == "typical" else size
    chosen: list[tuple[str, str]] = [(str(e), str(n)) for e, n in rng.sample(pairs, min(hits, len(pairs)))]
    chosen += [("PyPI", f"no-advisory-package-{i}") for i in range(size - len(chosen))]
    releases = {"Alpine": "Alpine:v3.11", "AlmaLinux": "AlmaLinux:9", "Debian": "Debian:12"}
    fixes = highest_fixes(db_path) if kind_of_image == "patched" else {}
    out = []
    for ecosystem, name in chosen:
        base = ecosystem.split(":")[0]
        kind = KINDS.get(base, "generic")
        version = fixes.get((ecosystem, name), VERSIONS.get(kind, "1.0.0"))
        eco = releases.get(base, base)
        out.append(
            Package(
                name, version, eco, f"pkg:{kind}/{name}@{version}", name, version, "", ("/x",), kind, "bench@1", None
            )
        )
    return out


def highest_fixes(db_path: Path) -> dict[tuple[str, str], str]:
    """(base ecosystem, name) → the highest fixed version any advisory names for it."""
    from scanner.ecosystems import sort_key
    from scanner.versions import VersionError

    found: dict[tuple[str, str], list[str]] = {}
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        for eco, name, entries in conn.execute("select base_ecosystem, name_key, entries from affected_index"):
            for entry in json.loads(entries):
                for rng in entry.get("ranges", []):
                    for event in rng.get("events", []):
                        if "fixed" in event:
                            found.setdefault((eco, name), []).append(event["fixed"])
    out = {}
    for (eco, name), versions in found.items():
        try:
            out[(eco, name)] = max(versions, key=sort_key(eco))
        except VersionError:
            continue
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=STAGED)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "vulndb.sqlite"
        started = time.perf_counter()
        results = import_sources(db_path, sources(args.source))
        records = sum(r.records for r in results)
        print(
            f"imported {args.source if args.source.is_dir() else 'snapshot'} in {time.perf_counter() - started:.1f} s"
        )
        print(f"records in database   {records}")
        print(f"{'inventory (500 pkgs)':<22}{'findings':>9}{'cold median':>14}{'warm median':>14}")
        SqliteVulnDatabase.open(db_path).lookup("PyPI", "warm-up")  # imports and first page faults, once
        for kind_of_image in ("patched", "typical", "worst"):
            packages = inventory(db_path, 500, seed=7, kind_of_image=kind_of_image)
            cold: list[float] = []
            warm: list[float] = []
            findings = 0
            for _ in range(args.runs):
                db = SqliteVulnDatabase.open(db_path)
                start = time.perf_counter()
                findings = len(find_vulnerabilities(packages, db))
                cold.append(time.perf_counter() - start)
                start = time.perf_counter()
                find_vulnerabilities(packages, db)
                warm.append(time.perf_counter() - start)
            print(
                f"{kind_of_image:<22}{findings:>9}{statistics.median(cold) * 1000:>11.1f} ms"
                f"{statistics.median(warm) * 1000:>11.1f} ms"
            )
        print(f"({args.runs} runs each; cold = a freshly opened database, so its record cache is empty)")


if __name__ == "__main__":
    main()
