"""How long `coverage(ecosystem)` takes on a large database, and what materialising it costs the import.

Builds an osv.dev-style archive (`all.zip`) of N records (default 20,000) from real AlmaLinux errata (the staged
`/work/shared/data/osv/almalinux-osv`, else the bundled snapshot's), replicated under new ids across the releases
`AlmaLinux:8`, `:9` and `:10`, one copy in four naming two releases (so that a release-less image's count has to
count records once across ecosystem strings). A distribution advisory lists every binary package of its source,
so N records make some ten times as many index rows: the scale of osv.dev's Debian or Ubuntu feed.

Prints:
* the import time, and the same import with the materialising switched off (no `record_ecosystems` rows, no
  `coverage` rows): the difference is what coverage costs the import; also the recomputation of one source's
  `coverage` rows alone, as each finished import session runs it;
* `coverage()` per ecosystem on a freshly opened database (median of R runs): one release (`AlmaLinux:9`: the
  materialised rows summed), no release (`AlmaLinux`: a distinct count over `record_ecosystems`), a release
  with nothing (`AlmaLinux:8` is populated, `Debian:12` is not), and the per-row parse of the index that
  coverage replaced, for comparison.
Asserts nothing. Usage: `.venv/bin/python benchmarks/coverage_speed.py [--records N] [--runs R] [--import-runs I]`.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import orjson  # noqa: E402

from benchmarks.common import print_rows  # noqa: E402
from scanner.ecosystems.catalog import base_ecosystem, release_matches  # noqa: E402
from scanner.vulndb import db_writer  # noqa: E402
from scanner.vulndb.osv_import import import_sources  # noqa: E402
from scanner.vulndb.snapshot import snapshot_dir  # noqa: E402
from scanner.vulndb.sqlite_db import SqliteVulnDatabase  # noqa: E402

STAGED = Path("/work/shared/data/osv/almalinux-osv")
RELEASES = ("AlmaLinux:8", "AlmaLinux:9", "AlmaLinux:10")


def originals() -> list[dict[str, Any]]:
    root = STAGED if STAGED.is_dir() else snapshot_dir() / "almalinux-osv"
    return [json.loads(p.read_text()) for p in sorted(root.rglob("*.json"))]


def replicated(records: list[dict[str, Any]], count: int) -> Iterator[dict[str, Any]]:
    for n in range(count):
        record = dict(records[n % len(records)])
        release, other = RELEASES[n % 3], RELEASES[(n + 1) % 3]
        affected = [dict(entry, package={**entry["package"], "ecosystem": release}) for entry in record["affected"]]
        if n % 4 == 0 and len(affected) > 1:  # the second half of its packages in another release
            half = len(affected) // 2
            affected[half:] = [dict(e, package={**e["package"], "ecosystem": other}) for e in affected[half:]]
        record.update(id=f"{record['id']}-{n}", affected=affected, aliases=[])
        yield record


def build_archive(path: Path, count: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for record in replicated(originals(), count):
            archive.writestr(f"{record['id']}.json", orjson.dumps(record))


@contextmanager
def materialising_off() -> Iterator[None]:
    """The import as it was before coverage was materialised: no ecosystem rows, no coverage rows."""
    saved = (db_writer.__dict__["record_ecosystems"], db_writer.SourceSession.__dict__["_materialise"])
    setattr(db_writer, "record_ecosystems", lambda entries: set())  # noqa: B010 - a private name, on purpose
    setattr(db_writer.SourceSession, "_materialise", lambda self, source: None)  # noqa: B010
    try:
        yield
    finally:
        setattr(db_writer, "record_ecosystems", saved[0])  # noqa: B010
        setattr(db_writer.SourceSession, "_materialise", saved[1])  # noqa: B010


def timed_import(archive: Path, db_path: Path) -> float:
    started = time.perf_counter()
    import_sources(db_path, [str(archive)])
    return time.perf_counter() - started


def materialise_alone(db_path: Path, source: str) -> float:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        session = db_writer.SourceSession(conn, source)
        started = time.perf_counter()
        session._materialise(source)
        elapsed = time.perf_counter() - started
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return elapsed


def per_row_parse(db_path: Path, ecosystem: str) -> int:
    """The implementation coverage replaced: every index row of the base ecosystem, parsed."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT record_id, entries FROM affected_index WHERE base_ecosystem = ?", (base_ecosystem(ecosystem),)
        ).fetchall()
    matched: set[str] = set()
    for record_id, entries in rows:
        if record_id not in matched and any(
            release_matches(e["package"]["ecosystem"], ecosystem) for e in orjson.loads(entries)
        ):
            matched.add(record_id)
    return len(matched)


def cold_coverage(db_path: Path, ecosystem: str, runs: int) -> tuple[float, int]:
    times: list[float] = []
    count = 0
    for _ in range(runs):
        with SqliteVulnDatabase.open(db_path) as db:
            started = time.perf_counter()
            count = db.coverage(ecosystem).advisories
            times.append(time.perf_counter() - started)
    return statistics.median(times), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7, help="coverage() runs per ecosystem")
    parser.add_argument("--import-runs", type=int, default=3, help="imports with and without materialising")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="acrguard-bench-") as scratch:
        archive = Path(scratch) / "all.zip"
        build_archive(archive, args.records)
        warm = Path(scratch) / "warm.zip"
        build_archive(warm, 50)
        timed_import(warm, Path(scratch) / "warm.sqlite")  # the validator and imports loaded once, untimed
        db_path = Path(scratch) / "v.sqlite"
        offs, ons = [], []
        for _ in range(args.import_runs):  # alternating, so that a noisy neighbour hits both alike
            plain = Path(scratch) / "plain.sqlite"
            with materialising_off():
                offs.append(timed_import(archive, plain))
            plain.unlink()
            db_path.unlink(missing_ok=True)
            ons.append(timed_import(archive, db_path))
        without, with_coverage = statistics.median(offs), statistics.median(ons)
        with sqlite3.connect(db_path) as conn:
            index_rows = conn.execute("SELECT count(*) FROM affected_index").fetchone()[0]
            ecosystem_rows = conn.execute("SELECT count(*) FROM record_ecosystems").fetchone()[0]
        alone = materialise_alone(db_path, str(archive.resolve()))
        rows.append(("records / index rows", f"{args.records:,} / {index_rows:,} ({ecosystem_rows:,} ecosystem rows)"))
        rows.append(("import, materialising off", f"{without:.2f} s median of {args.import_runs}"))
        rows.append(
            (
                "import, materialising on",
                f"{with_coverage:.2f} s (+{with_coverage - without:.2f} s, {with_coverage / without - 1:+.0%})",
            )
        )
        rows.append(("coverage rows of the source, recomputed", f"{alone * 1e3:.0f} ms"))
        for ecosystem in ("AlmaLinux:9", "AlmaLinux", "AlmaLinux:8", "Debian:12"):
            seconds, count = cold_coverage(db_path, ecosystem, args.runs)
            rows.append((f"coverage({ecosystem})", f"{seconds * 1e3:.2f} ms median, {count:,} advisories"))
        started = time.perf_counter()
        count = per_row_parse(db_path, "AlmaLinux:9")
        rows.append(("per-row parse (AlmaLinux:9), replaced", f"{time.perf_counter() - started:.2f} s, {count:,}"))
    print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
