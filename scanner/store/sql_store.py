"""The store's logic over SQL both dialects understand; adapters supply transactions and the dialect.

Writes that read before they write (tag moves, deletes, finding history) first take a lock for their
repository or digest (`_lock`: a row lock on `store_locks` here, an advisory lock in PostgreSQL), so two
instances upserting the same image serialise instead of interleaving. SQLite gets the same effect from
BEGIN IMMEDIATE.

A statement that stands alone (`_read_alone`, `_run_alone`) is a hook: PostgreSQL runs it without BEGIN and
COMMIT. A statement repeated over many rows (`sql.Rows`) goes to the transaction's `write`: SQLite's
executemany, PostgreSQL's one statement over an array a column; so a rescan's batch costs a few statements
whatever its size (benchmarks/README.md, rescan_throughput and feed_delta).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

from scanner.model.codec import InventoryDecoder, inventory_from_dict, inventory_to_dict
from scanner.model.types import Inventory, Package
from scanner.store import gate_rows, lookups, rule_rows
from scanner.store.assessment_rows import SqlAssessments
from scanner.store.errors import StoreError
from scanner.store.interface import FindingsStore
from scanner.store.inventory_rows import (
    SAVE_LIST,
    MissingPackageList,
    PackageLists,
    decode_list,
    inventory_of,
    read_lists,
    split,
)
from scanner.store.migrations import apply
from scanner.store.package_index import SqlPackageIndex
from scanner.store.ports import BILLABLE_KIND
from scanner.store.records import ScanStatus, StoredInventory, UsageCounts
from scanner.store.sql import Dialect, Params, Row, Rows, Tx, dumps, key_lists, loads, req_time, to_text, unnested

log = logging.getLogger(__name__)

# Stamps for `SqlStore.rule_writes`: unique across store objects, taken atomically under the GIL.
_RULE_WRITE_STAMPS = itertools.count(1)


_USAGE_EVENT = "INSERT INTO usage_events (registry, digest, kind, event_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
_USAGE_EVENTS = Rows(
    _USAGE_EVENT,
    "INSERT INTO usage_events (registry, digest, kind, event_at) SELECT * FROM"
    f" {unnested('text', 'text', 'text', 'text')} ON CONFLICT DO NOTHING",
)


def _stored(
    key: tuple[str, str],
    doc: str,
    list_key: str | None,
    listed: tuple[Package, ...] | None,
    version: str,
    detectors: str,
    saved: str,
    with_packages: Callable[[dict[str, Any]], Inventory] = inventory_from_dict,
) -> StoredInventory | None:
    """One stored inventory; None (with a warning) when its package list is missing: the digest is then
    scanned again like one without an inventory, never assessed as if it had no packages."""
    try:
        inventory = inventory_of(doc, list_key, listed, with_packages)
    except MissingPackageList as err:
        log.warning("inventory of %s@%s not read: %s", key[0], key[1], err)
        return None
    return StoredInventory(inventory, version, tuple(loads(detectors)), req_time(saved))


class SqlStore(
    lookups.SqlLookups,
    rule_rows.SqlRules,
    gate_rows.SqlGateVerdicts,
    SqlAssessments,
    SqlPackageIndex,
    FindingsStore,
):
    dialect: Dialect
    _rule_write_stamp = 0

    @property
    def rule_writes(self) -> int:
        """Changes whenever a rule is created or deleted through this object. `service.policy.StoredRules`
        checks the shared revision only now and then, but a change made here applies at once."""
        return self._rule_write_stamp

    def create_rule(self, name: str, document: dict[str, Any], at: datetime) -> bool:
        created = super().create_rule(name, document, at)
        if created:
            self._rule_write_stamp = next(_RULE_WRITE_STAMPS)
        return created

    def delete_rule(self, name: str) -> bool:
        deleted = super().delete_rule(name)
        if deleted:
            self._rule_write_stamp = next(_RULE_WRITE_STAMPS)
        return deleted

    @abstractmethod
    def _migration_tx(self) -> AbstractContextManager[Tx]:
        """A transaction holding the store-wide migration lock."""

    def migrate(self) -> None:
        with self._migration_tx() as tx:
            apply(tx)

    def _read_alone(self, sql: str, params: Params = ()) -> list[Row]:
        """One read statement: consistent by itself, so an adapter may run it outside a transaction."""
        with self._tx(write=False) as tx:
            return tx.rows(sql, params)

    def _run_alone(self, sql: str, params: Params = ()) -> int:
        """One write statement that reads nothing before it: atomic by itself. The number of rows changed."""
        with self._tx() as tx:
            return tx.run(sql, params)

    def _lock(self, tx: Tx, scope: str, name: str) -> None:
        if not self.dialect.lock_suffix:
            return
        tx.run("INSERT INTO store_locks (scope, name) VALUES (?, ?) ON CONFLICT DO NOTHING", (scope, name))
        tx.rows(f"SELECT 1 FROM store_locks WHERE scope = ? AND name = ?{self.dialect.lock_suffix}", (scope, name))

    def _lock_many(self, tx: Tx, scope: str, names: Sequence[str]) -> None:
        """Each lock of `names`, in the order given (callers sort, so two writers never wait in a cycle)."""
        for name in names:
            self._lock(tx, scope, name)

    # --- registry events -------------------------------------------------------------------------------
    def _ensure_image(self, tx: Tx, registry: str, repository: str, digest: str) -> None:
        tx.run(
            "INSERT INTO images (registry, repository, digest) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (registry, repository, digest),
        )

    def _refresh_deleted(self, tx: Tx, registry: str, repository: str, digest: str) -> None:
        # Deleted when the last delete is not older than the last push: order-independent on replay.
        tx.run(
            "UPDATE images SET deleted = CASE WHEN deleted_at IS NOT NULL AND (last_push IS NULL OR"
            " deleted_at >= last_push) THEN 1 ELSE 0 END WHERE registry = ? AND repository = ? AND digest = ?",
            (registry, repository, digest),
        )

    def _refresh_tags(self, tx: Tx, registry: str, repository: str, tags: Sequence[str]) -> None:
        """A tag points at the digest it was pushed with last, unless that manifest was deleted after."""
        for tag in tags:
            rows = tx.rows(
                "SELECT t.digest, t.last_seen, i.deleted_at FROM tags t JOIN images i ON i.registry = t.registry"
                " AND i.repository = t.repository AND i.digest = t.digest WHERE t.registry = ? AND t.repository = ?"
                " AND t.tag = ? ORDER BY t.last_seen DESC, t.digest DESC",
                (registry, repository, tag),
            )
            alive = rows and (rows[0][2] is None or rows[0][1] > rows[0][2])
            winner = rows[0][0] if alive else None
            for digest, _, _ in rows:
                tx.run(
                    "UPDATE tags SET is_current = ? WHERE registry = ? AND repository = ? AND tag = ? AND digest = ?",
                    (1 if digest == winner else 0, registry, repository, tag, digest),
                )

    @contextmanager
    def _image_event(self, registry: str, repository: str, digest: str) -> Iterator[Tx]:
        """A push or delete of one image, in one transaction under its repository's lock: its row exists when the
        body runs; afterwards its deleted flag and the current digest of each of its tags are derived again."""
        with self._tx() as tx:
            self._lock(tx, "repository", f"{registry}/{repository}")
            self._ensure_image(tx, registry, repository, digest)
            yield tx
            self._refresh_deleted(tx, registry, repository, digest)
            self._refresh_tags(tx, registry, repository, self._tags_of(tx, registry, repository, digest))

    def record_push(
        self, registry: str, repository: str, digest: str, tag: str | None, media_type: str, at: datetime
    ) -> None:
        when = to_text(at)
        with self._image_event(registry, repository, digest) as tx:
            tx.run(
                "UPDATE images SET media_type = CASE WHEN last_push IS NULL OR ? >= last_push OR media_type = ''"
                " THEN ? ELSE media_type END,"
                " first_push = CASE WHEN first_push IS NULL OR ? < first_push THEN ? ELSE first_push END,"
                " last_push = CASE WHEN last_push IS NULL OR ? > last_push THEN ? ELSE last_push END"
                " WHERE registry = ? AND repository = ? AND digest = ?",
                (when, media_type, when, when, when, when, registry, repository, digest),
            )
            if tag:
                tx.run(
                    "INSERT INTO tags (registry, repository, tag, digest, first_seen, last_seen)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (registry, repository, tag, digest) DO UPDATE SET"
                    " first_seen = CASE WHEN excluded.first_seen < tags.first_seen"
                    " THEN excluded.first_seen ELSE tags.first_seen END,"
                    " last_seen = CASE WHEN excluded.last_seen > tags.last_seen"
                    " THEN excluded.last_seen ELSE tags.last_seen END",
                    (registry, repository, tag, digest, when, when),
                )

    def _tags_of(self, tx: Tx, registry: str, repository: str, digest: str) -> list[str]:
        rows = tx.rows(
            "SELECT tag FROM tags WHERE registry = ? AND repository = ? AND digest = ?", (registry, repository, digest)
        )
        return [r[0] for r in rows]

    def mark_deleted(self, registry: str, repository: str, digest: str, at: datetime) -> None:
        when = to_text(at)
        with self._image_event(registry, repository, digest) as tx:
            tx.run(
                "UPDATE images SET deleted_at = CASE WHEN deleted_at IS NULL OR ? > deleted_at"
                " THEN ? ELSE deleted_at END WHERE registry = ? AND repository = ? AND digest = ?",
                (when, when, registry, repository, digest),
            )

    def record_pull(self, registry: str, repository: str, digest: str, at: datetime, source: str) -> None:
        when = to_text(at)
        with self._tx() as tx:
            tx.run(
                "INSERT INTO pulls (registry, repository, digest, pulled_at, source) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (registry, repository, digest, when, source),
            )
            # A single-row upsert: atomic in both dialects, no lock needed.
            tx.run(
                "INSERT INTO images (registry, repository, digest, last_pull) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (registry, repository, digest) DO UPDATE SET last_pull = CASE WHEN"
                " images.last_pull IS NULL OR excluded.last_pull > images.last_pull"
                " THEN excluded.last_pull ELSE images.last_pull END",
                (registry, repository, digest, when),
            )

    # --- scans -----------------------------------------------------------------------------------------
    def start_scan(
        self,
        registry: str,
        repository: str,
        digest: str,
        trigger: str,
        at: datetime,
        scan_id: str | None = None,
    ) -> str:
        when = to_text(at)
        scan_id = scan_id or str(
            uuid.uuid5(uuid.NAMESPACE_URL, "\0".join((registry, repository, digest, trigger, when)))
        )
        with self._tx() as tx:
            tx.run(
                "INSERT INTO scans (scan_id, registry, repository, digest, scan_trigger, status, started_at)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?) ON CONFLICT DO NOTHING",
                (scan_id, registry, repository, digest, trigger, when),
            )
        return scan_id

    def finish_scan(
        self,
        scan_id: str,
        status: ScanStatus,
        error: str,
        timings: dict[str, float],
        scanner_version: str,
        db_version: str,
        detector_versions: Sequence[str],
        at: datetime,
    ) -> None:
        with self._tx() as tx:
            changed = tx.run(
                "UPDATE scans SET status = ?, error = ?, timings = ?, scanner_version = ?, db_version = ?,"
                " detector_versions = ?, finished_at = ? WHERE scan_id = ?",
                (
                    status,
                    error,
                    dumps(timings),
                    scanner_version,
                    db_version,
                    dumps(list(detector_versions)),
                    to_text(at),
                    scan_id,
                ),
            )
        if not changed:
            raise StoreError(f"finish_scan: no scan {scan_id!r} was started")

    def has_current_scan(self, registry: str, digest: str, scanner_version: str) -> bool:
        rows = self._read_alone(
            "SELECT 1 FROM scans WHERE registry = ? AND digest = ? AND scanner_version = ?"
            " AND status = 'succeeded' LIMIT 1",
            (registry, digest, scanner_version),
        )
        return bool(rows)

    def save_inventory(
        self,
        registry: str,
        digest: str,
        inventory: Inventory,
        scanner_version: str,
        detector_versions: Sequence[str],
        at: datetime,
    ) -> None:
        parts = split(inventory)
        with self._tx() as tx:
            tx.run(SAVE_LIST, (parts.list_key, parts.packages))  # content-addressed: an older save's is harmless
            saved = tx.run(
                "INSERT INTO inventories"
                " (registry, digest, scanner_version, detector_versions, inventory, list_key, saved_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (registry, digest) DO UPDATE SET"
                " scanner_version = excluded.scanner_version, detector_versions = excluded.detector_versions,"
                " inventory = excluded.inventory, list_key = excluded.list_key, saved_at = excluded.saved_at"
                " WHERE excluded.saved_at >= inventories.saved_at",
                (
                    registry,
                    digest,
                    scanner_version,
                    dumps(list(detector_versions)),
                    parts.document,
                    parts.list_key,
                    to_text(at),
                ),
            )
            if saved:  # an older save than the stored one changes nothing, its index neither
                self.index_inventory(tx, registry, digest, inventory)

    def load_inventory(self, registry: str, digest: str) -> StoredInventory | None:
        rows = self._read_alone(
            "SELECT i.inventory, i.list_key, p.packages, i.scanner_version, i.detector_versions, i.saved_at"
            " FROM inventories i LEFT JOIN package_lists p ON p.list_key = i.list_key"
            " WHERE i.registry = ? AND i.digest = ?",
            (registry, digest),
        )
        if not rows:
            return None
        doc, list_key, packages, version, detectors, saved = rows[0]
        return _stored((registry, digest), doc, list_key, decode_list(packages), version, detectors, saved)

    def load_inventories(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredInventory]:
        found: dict[tuple[str, str], StoredInventory] = {}
        decode = InventoryDecoder()  # inventories stored with their packages: replicas share the decoded ones
        with self._tx(write=False) as tx:
            rows = []
            for with_keys, params in key_lists(keys):
                rows += tx.rows(
                    f"{with_keys} SELECT i.registry, i.digest, i.inventory, i.list_key, i.scanner_version,"
                    " i.detector_versions, i.saved_at"
                    " FROM k JOIN inventories i ON i.registry = k.registry AND i.digest = k.digest",
                    params,
                )
            # Each distinct package list once, and none this store has decoded already.
            lists = self._package_lists
            fetched = read_lists(tx, lists.missing(row[3] for row in rows), lists)
        for registry, digest, doc, list_key, version, detectors, saved in rows:
            listed = None
            if list_key is not None:  # fetched first: the store's own may have started again meanwhile
                listed = fetched[list_key] if list_key in fetched else lists.get(list_key)
            stored = _stored((registry, digest), doc, list_key, listed, version, detectors, saved, decode)
            if stored is not None:
                found[(registry, digest)] = stored
        return found

    _decoded_lists: PackageLists | None = None

    @property
    def _package_lists(self) -> PackageLists:
        """The package lists this store decoded (content-addressed, so shared by every read of it)."""
        if self._decoded_lists is None:
            self._decoded_lists = PackageLists()
        return self._decoded_lists

    def save_layer_chain(self, chain_key: str, inventory: Inventory, at: datetime) -> None:
        # Content-addressed: the same chain, detectors, scanner and platform always yield the same inventory,
        # so two workers racing on it write equal documents and the first one stays.
        with self._tx() as tx:
            tx.run(
                "INSERT INTO layer_chains (chain_key, layer_count, inventory, saved_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (chain_key, len(inventory.image.layers), dumps(inventory_to_dict(inventory)), to_text(at)),
            )

    def load_layer_chain(self, chain_key: str) -> Inventory | None:
        with self._tx(write=False) as tx:
            rows = tx.rows("SELECT inventory FROM layer_chains WHERE chain_key = ?", (chain_key,))
        return inventory_from_dict(loads(rows[0][0])) if rows else None

    # --- assessments -----------------------------------------------------------------------------------
    # --- usage -----------------------------------------------------------------------------------------
    def record_usage(self, registry: str, digest: str, kind: str, at: datetime) -> bool:
        when = to_text(at)
        event = _USAGE_EVENT
        if kind != BILLABLE_KIND:  # a rescan's or a push's event: one statement, nothing read first
            self._run_alone(event, (registry, digest, kind, when))
            return False
        with self._tx() as tx:
            tx.run(event, (registry, digest, kind, when))
            # One charge per digest: the insert that wins the primary key is the charge, even when two
            # instances race; a later call only moves the charge's date to the earliest scan seen.
            created = tx.run(
                "INSERT INTO billed_digests (registry, digest, billed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (registry, digest, when),
            )
            if not created:
                tx.run(
                    "UPDATE billed_digests SET billed_at = ? WHERE registry = ? AND digest = ? AND billed_at > ?",
                    (when, registry, digest, when),
                )
        return bool(created)

    def record_usages(self, keys: Sequence[tuple[str, str]], kind: str, at: datetime) -> None:
        if kind == BILLABLE_KIND:
            raise ValueError(f"record_usages: {kind!r} events are charges, recorded one at a time (record_usage)")
        rows = [(registry, digest, kind, to_text(at)) for registry, digest in keys]
        with self._tx() as tx:
            tx.write(_USAGE_EVENTS, rows)

    def usage(self, registry: str, since: datetime) -> UsageCounts:
        when = to_text(since)
        with self._tx(write=False) as tx:
            billed = tx.rows(
                "SELECT COUNT(*) FROM billed_digests WHERE registry = ? AND billed_at >= ?", (registry, when)
            )
            kinds = tx.rows(
                "SELECT kind, COUNT(*) FROM usage_events WHERE registry = ? AND event_at >= ? GROUP BY kind",
                (registry, when),
            )
        return UsageCounts(int(billed[0][0]), {k: int(n) for k, n in kinds})
