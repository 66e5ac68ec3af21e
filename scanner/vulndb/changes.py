"""The change record of the vulnerability database: what each build changed, for rescans that pay only for that.

Every `DatabaseWriter` that writes makes one *build* (a random id in `meta.build_id`, its predecessor in
`builds.previous`), and records, in the same transactions as the records themselves:

* `changed_packages`: the (base ecosystem, normalised name) keys of every record added, changed (its JSON
  differs), withdrawn or removed: the keys it was indexed under before and after. Lookups read exactly
  these keys, so an image none of whose packages has a changed key matches as it did;
* `changed_ids`: the ids and aliases (before and after) of those records, and the CVE ids whose KEV entry or
  EPSS score changed: `by_id` (severity from other records of a CVE) and `exploitation` read by these ids;
* `changed_ecosystems`: base ecosystems whose coverage changed in what health reads (an advisory ecosystem
  gained or lost every record, a feed became or stopped being a selection, a selection's count): every
  package of those ecosystems;
* `builds.everything`: a reason when the build's changes are not keyed (the first build, whose predecessor
  is nothing; EPSS scores of another day, which change every finding with a score): readers rescan in full.

`change_set` walks the chain from the current build back to the one a reader last assessed against and
unites what each build changed; anything it cannot account for (no record kept, a chain that does not reach
back, a build with `everything`) is `Unknown`, and the caller falls back to a full rescan. Only the newest
`MAX_BUILDS` builds are kept.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

BUILD_KEY = "build_id"
MAX_BUILDS = 64  # kept in the file: a reader further behind than this rescans in full
MAX_CHAIN = MAX_BUILDS

DDL = """
CREATE TABLE IF NOT EXISTS builds (
    seq INTEGER PRIMARY KEY,
    build_id TEXT NOT NULL UNIQUE,
    previous TEXT,
    started_at TEXT NOT NULL,
    everything TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS changed_packages (
    build_id TEXT NOT NULL,
    base_ecosystem TEXT NOT NULL,
    name_key TEXT NOT NULL,
    PRIMARY KEY (build_id, base_ecosystem, name_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changed_ecosystems (
    build_id TEXT NOT NULL,
    base_ecosystem TEXT NOT NULL,
    PRIMARY KEY (build_id, base_ecosystem)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changed_ids (
    build_id TEXT NOT NULL,
    vuln_id TEXT NOT NULL,
    PRIMARY KEY (build_id, vuln_id)
) WITHOUT ROWID;
"""

_CHANGE_TABLES = ("changed_packages", "changed_ecosystems", "changed_ids")

# Per base ecosystem, what health reads of its coverage rows (see `coverage_state`).
CoverageState = dict[str, frozenset[tuple[str, tuple[tuple[str, bool], ...], int | None]]]


@dataclass(frozen=True)
class ChangeSet:
    """What changed between two builds (`build` is the newer)."""

    build: str
    packages: frozenset[tuple[str, str]] = frozenset()
    ecosystems: frozenset[str] = frozenset()
    vuln_ids: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.packages or self.ecosystems or self.vuln_ids)


@dataclass(frozen=True)
class Unknown:
    """The change set cannot be told: rescan everything."""

    reason: str


def current_build(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (BUILD_KEY,)).fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def change_set(conn: sqlite3.Connection, since: str | None) -> ChangeSet | Unknown:
    """What changed from build `since` to the current build, or why that cannot be told."""
    current = current_build(conn)
    if current is None:
        return Unknown("the database keeps no change record (built before it did, or copied in by hand)")
    if since is None:
        return Unknown("no previous rescan against a known database build")
    if current == since:
        return ChangeSet(current)
    chain: list[str] = []
    build: str | None = current
    try:
        while build != since:
            if build is None or len(chain) >= MAX_CHAIN:
                return Unknown(f"the database's change record does not reach back to build {since[:40]}")
            row = conn.execute("SELECT previous, everything FROM builds WHERE build_id = ?", (build,)).fetchone()
            if row is None:
                return Unknown(f"the database's change record does not reach back to build {since[:40]}")
            previous, everything = row
            if everything:
                return Unknown(f"database build {build}: {everything}")
            chain.append(build)
            build = previous
        packages: set[tuple[str, str]] = set()
        ecosystems: set[str] = set()
        ids: set[str] = set()
        for one in chain:
            packages.update(
                conn.execute("SELECT base_ecosystem, name_key FROM changed_packages WHERE build_id = ?", (one,))
            )
            ecosystems.update(
                e for (e,) in conn.execute("SELECT base_ecosystem FROM changed_ecosystems WHERE build_id = ?", (one,))
            )
            ids.update(i for (i,) in conn.execute("SELECT vuln_id FROM changed_ids WHERE build_id = ?", (one,)))
    except sqlite3.Error as exc:
        return Unknown(f"the database's change record is unreadable ({exc})")
    return ChangeSet(current, frozenset(packages), frozenset(ecosystems), frozenset(ids))


def coverage_state(conn: sqlite3.Connection) -> CoverageState:
    """Per base ecosystem: its advisory ecosystems with records, each with its feeds and whether each is a
    selection, and the record count where one is (the NotAssessed reason names it). Health reads no more of
    the coverage than this; the feed dates and counts it does not read change with every import."""
    selection = {name: bool(flag) for name, flag in conn.execute("SELECT name, selection FROM sources")}
    state: dict[str, set[tuple[str, tuple[tuple[str, bool], ...], int | None]]] = {}
    for base, ecosystem, records, feeds in conn.execute(
        "SELECT base_ecosystem, ecosystem, records, feeds FROM coverage"
    ):
        flags = tuple(sorted((str(f), selection.get(str(f), False)) for f in orjson.loads(feeds)))
        count = int(records) if any(flag for _, flag in flags) else None
        state.setdefault(base, set()).add((ecosystem, flags, count))
    return {base: frozenset(rows) for base, rows in state.items()}


@dataclass
class ChangeLog:
    """The writer's side: the build this writer makes, and its change rows (call inside its transactions)."""

    conn: sqlite3.Connection
    build_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _previous: str | None = None
    _read_previous: bool = False

    @staticmethod
    def create_tables(conn: sqlite3.Connection) -> None:
        conn.executescript(DDL)

    def begin(self, started_at: str) -> None:
        """Inside a write transaction: this writer's build becomes the file's current one (idempotent)."""
        if not self._read_previous:
            self._previous = current_build(self.conn)
            self._read_previous = True
        if self._previous == self.build_id:
            return
        exists = self.conn.execute("SELECT 1 FROM builds WHERE build_id = ?", (self.build_id,)).fetchone()
        if exists is not None:
            return
        self.conn.execute(
            "INSERT INTO builds (build_id, previous, started_at, everything) VALUES (?, ?, ?, ?)",
            (self.build_id, self._previous, started_at, "" if self._previous else "the first build of this file"),
        )
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (BUILD_KEY, self.build_id))
        self._prune()

    def _prune(self) -> None:
        old = [
            b
            for (b,) in self.conn.execute(
                "SELECT build_id FROM builds ORDER BY seq DESC LIMIT -1 OFFSET ?", (MAX_BUILDS,)
            ).fetchall()
        ]
        for build in old:
            for table in _CHANGE_TABLES:
                self.conn.execute(f"DELETE FROM {table} WHERE build_id = ?", (build,))
            self.conn.execute("DELETE FROM builds WHERE build_id = ?", (build,))

    @property
    def keyed(self) -> bool:
        """False for the first build of a file (no predecessor: its rows would be read by nobody). A build marked
        `everything` later keeps recording: that mark may yet be rolled back with its transaction."""
        return self._read_previous and self._previous is not None

    def everything(self, reason: str) -> None:
        self.conn.execute(
            "UPDATE builds SET everything = ? WHERE build_id = ? AND everything = ''", (reason, self.build_id)
        )

    def packages(self, keys: Iterable[tuple[str, str]]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO changed_packages (build_id, base_ecosystem, name_key) VALUES (?, ?, ?)",
            [(self.build_id, eco, name) for eco, name in keys],
        )

    def ids(self, vuln_ids: Iterable[str]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO changed_ids (build_id, vuln_id) VALUES (?, ?)",
            [(self.build_id, i) for i in vuln_ids if i],
        )

    def coverage(self, before: CoverageState, after: CoverageState) -> None:
        changed = [base for base in sorted(before.keys() | after.keys()) if before.get(base) != after.get(base)]
        self.conn.executemany(
            "INSERT OR IGNORE INTO changed_ecosystems (build_id, base_ecosystem) VALUES (?, ?)",
            [(self.build_id, base) for base in changed],
        )
