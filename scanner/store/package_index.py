"""The package index: stored inventory → the database keys its packages are looked up by, and back.

A rescan after a database update needs the digests whose findings the update can change: those with a
package looked up under a changed (base ecosystem, normalised name) key or in an ecosystem whose coverage
changed, and those with an open finding naming a changed vulnerability id (`scanner.vulndb.changes`). The
keys are exactly those matching asks the database for (`scanner.assess.findings`: `lookup_keys` of each
package it looks up), so the index answers exactly, not approximately.

Key sets are stored once per distinct set (`package_sets`, named by their hash) and each inventory points to
its set (`inventory_package_sets`): the builds of one image share their package names. `save_inventory`
keeps the pointer in step (`index_inventory`, in its transaction); inventories saved before the index
existed are indexed by `index_unindexed`, which every rescan calls first.
"""

from __future__ import annotations

import hashlib
import logging
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from scanner.assess.findings import category_of, lookup_keys
from scanner.ecosystems.catalog import base_ecosystem, normalise_name
from scanner.model.errors import one_line
from scanner.model.types import Inventory
from scanner.store.inventory_rows import decode_list, inventory_of
from scanner.store.sql import Tx, dumps, loads, to_text

log = logging.getLogger(__name__)

PackageKey = tuple[str, str]  # (base ecosystem, normalised name), as the vulnerability database indexes them
CHUNK = 400  # keys per statement: 800 parameters for pairs, far below both databases' limits
BACKFILL_BATCH = 200  # inventories read per backfill query


def package_keys(inventory: Inventory) -> frozenset[PackageKey]:
    """The keys matching looks the inventory's packages up by (the same filter as `find_vulnerabilities`)."""
    keys: set[PackageKey] = set()
    for package in inventory.packages:
        if not package.ecosystem or not package.version:
            continue
        if category_of(package) == "language" and package.os_owned:
            continue
        for name, _ in lookup_keys(package):
            keys.add((base_ecosystem(package.ecosystem), normalise_name(package.ecosystem, name)))
    return frozenset(keys)


def set_key(keys: Iterable[PackageKey]) -> str:
    return hashlib.sha256(dumps(sorted(keys)).encode()).hexdigest()


@dataclass(frozen=True)
class RescanMark:
    """The database build, scanner version and detector versions a rescan last completed against."""

    build: str
    scanner_version: str
    detector_versions: tuple[str, ...]


class PackageIndex(Protocol):
    """The store's side of a rescan after a database update."""

    def index_unindexed(self) -> int:
        """Index every stored inventory that has no index row yet; how many were indexed."""
        ...

    def digests_affected(
        self, packages: Iterable[PackageKey], ecosystems: Iterable[str], vuln_ids: Iterable[str]
    ) -> set[tuple[str, str]]:
        """(registry, digest) of every indexed inventory looking up one of `packages` or a package of one of
        `ecosystems` (base ecosystems), and of every digest with an open finding naming one of `vuln_ids`."""
        ...

    def rescan_mark(self, name: str) -> RescanMark | None: ...

    def set_rescan_mark(self, name: str, mark: RescanMark, at: datetime) -> None: ...


def _chunks(items: Sequence[str] | Sequence[PackageKey]) -> Iterable[Sequence[str] | Sequence[PackageKey]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class SqlPackageIndex:
    """`PackageIndex` over SQL both dialects understand (mixed into `SqlStore`)."""

    @abstractmethod
    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]: ...

    @staticmethod
    def index_inventory(tx: Tx, registry: str, digest: str, inventory: Inventory) -> None:
        """Points the digest at its key set (stored if new); call in the transaction that saves the inventory."""
        keys = package_keys(inventory)
        name = set_key(keys)
        if not tx.rows("SELECT 1 FROM package_sets WHERE set_key = ? LIMIT 1", (name,)):
            for key in sorted(keys):
                tx.run(
                    "INSERT INTO package_sets (set_key, base_ecosystem, name_key) VALUES (?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (name, *key),
                )
        tx.run(
            "INSERT INTO inventory_package_sets (registry, digest, set_key) VALUES (?, ?, ?)"
            " ON CONFLICT (registry, digest) DO UPDATE SET set_key = excluded.set_key",
            (registry, digest, name),
        )

    def index_unindexed(self) -> int:
        indexed = 0
        after = ("", "")
        while True:
            with self._tx(write=False) as tx:
                rows = tx.rows(
                    # The list read only for the rows found: joined, it was looked up for every inventory
                    # before the filter (0.15 s more per rescan at 100,000 images, all indexed).
                    "SELECT i.registry, i.digest, i.inventory, i.list_key,"
                    " (SELECT p.packages FROM package_lists p WHERE p.list_key = i.list_key) FROM inventories i"
                    " LEFT JOIN inventory_package_sets s"
                    " ON s.registry = i.registry AND s.digest = i.digest WHERE s.set_key IS NULL"
                    " AND (i.registry > ? OR (i.registry = ? AND i.digest > ?))"
                    " ORDER BY i.registry, i.digest LIMIT ?",
                    (after[0], after[0], after[1], BACKFILL_BATCH),
                )
            if not rows:
                return indexed
            after = (str(rows[-1][0]), str(rows[-1][1]))
            parsed = []
            for registry, digest, document, list_key, packages in rows:
                try:
                    parsed.append((registry, digest, inventory_of(document, list_key, decode_list(packages))))
                except Exception as err:  # left unindexed: its rescan fails or requeues it, as any other's
                    log.warning("package index: inventory of %s@%s unreadable: %s", registry, digest, one_line(err))
            with self._tx() as tx:
                for registry, digest, inventory in parsed:
                    self.index_inventory(tx, registry, digest, inventory)
            indexed += len(parsed)

    def digests_affected(
        self, packages: Iterable[PackageKey], ecosystems: Iterable[str], vuln_ids: Iterable[str]
    ) -> set[tuple[str, str]]:
        sets: set[str] = set()
        found: set[tuple[str, str]] = set()
        with self._tx(write=False) as tx:
            for chunk in _chunks(sorted(set(packages))):
                values = ", ".join("(?, ?)" for _ in chunk)
                params = tuple(part for key in chunk for part in key)
                sets.update(
                    str(s)
                    for (s,) in tx.rows(
                        f"WITH k (e, n) AS (VALUES {values}) SELECT DISTINCT p.set_key FROM k"
                        " JOIN package_sets p ON p.base_ecosystem = k.e AND p.name_key = k.n",
                        params,
                    )
                )
            for chunk in _chunks(sorted(set(ecosystems))):
                marks = ", ".join("?" for _ in chunk)
                sets.update(
                    str(s)
                    for (s,) in tx.rows(
                        f"SELECT DISTINCT set_key FROM package_sets WHERE base_ecosystem IN ({marks})", tuple(chunk)
                    )
                )
            for chunk in _chunks(sorted(sets)):
                marks = ", ".join("?" for _ in chunk)
                found.update(
                    (str(r), str(d))
                    for r, d in tx.rows(
                        f"SELECT registry, digest FROM inventory_package_sets WHERE set_key IN ({marks})", tuple(chunk)
                    )
                )
            for chunk in _chunks(sorted(set(vuln_ids))):
                marks = ", ".join("?" for _ in chunk)
                found.update(
                    (str(r), str(d))
                    for r, d in tx.rows(
                        "SELECT DISTINCT i.registry, i.digest FROM finding_ids i JOIN findings f"
                        " ON f.registry = i.registry AND f.digest = i.digest AND f.finding_key = i.finding_key"
                        f" WHERE f.resolved_at IS NULL AND i.vuln_id IN ({marks})",
                        tuple(chunk),
                    )
                )
        return found

    def rescan_mark(self, name: str) -> RescanMark | None:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                "SELECT build_id, scanner_version, detector_versions FROM rescan_marks WHERE name = ?", (name,)
            )
        if not rows:
            return None
        build, version, detectors = rows[0]
        return RescanMark(str(build), str(version), tuple(str(d) for d in loads(detectors)))

    def set_rescan_mark(self, name: str, mark: RescanMark, at: datetime) -> None:
        with self._tx() as tx:
            tx.run(
                "INSERT INTO rescan_marks (name, build_id, scanner_version, detector_versions, marked_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET build_id = excluded.build_id,"
                " scanner_version = excluded.scanner_version, detector_versions = excluded.detector_versions,"
                " marked_at = excluded.marked_at",
                (name, mark.build, mark.scanner_version, dumps(list(mark.detector_versions)), to_text(at)),
            )
