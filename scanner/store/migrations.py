"""Numbered schema migrations, applied in one transaction under a lock and recorded in schema_migrations.

The DDL is written once for both dialects: times are fixed-width UTC ISO-8601 TEXT (so ordering, MIN and
MAX agree in SQLite and PostgreSQL), flags are INTEGER 0/1 and documents are JSON TEXT. Never edit a
released migration; append a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from scanner.store.sql import Tx, utc_text


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "images, tags, pulls, scans, inventories, layers, findings, usage",
        (
            """CREATE TABLE images (
                registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
                media_type TEXT NOT NULL DEFAULT '', first_push TEXT, last_push TEXT, last_pull TEXT,
                deleted_at TEXT, deleted INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (registry, repository, digest))""",
            "CREATE INDEX images_by_digest ON images (registry, digest)",
            "CREATE INDEX images_by_last_pull ON images (last_pull)",
            """CREATE TABLE tags (
                registry TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
                first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, is_current INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (registry, repository, tag, digest))""",
            "CREATE INDEX tags_by_digest ON tags (registry, digest)",
            """CREATE TABLE pulls (
                registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
                pulled_at TEXT NOT NULL, source TEXT NOT NULL,
                PRIMARY KEY (registry, repository, digest, pulled_at, source))""",
            """CREATE TABLE scans (
                scan_id TEXT PRIMARY KEY, registry TEXT NOT NULL, repository TEXT NOT NULL,
                digest TEXT NOT NULL, scan_trigger TEXT NOT NULL, status TEXT NOT NULL,
                started_at TEXT NOT NULL, finished_at TEXT, error TEXT NOT NULL DEFAULT '',
                timings TEXT NOT NULL DEFAULT '{}', scanner_version TEXT NOT NULL DEFAULT '',
                db_version TEXT NOT NULL DEFAULT '', detector_versions TEXT NOT NULL DEFAULT '[]')""",
            "CREATE INDEX scans_by_digest ON scans (registry, digest, started_at)",
            """CREATE TABLE inventories (
                registry TEXT NOT NULL, digest TEXT NOT NULL, scanner_version TEXT NOT NULL,
                detector_versions TEXT NOT NULL, inventory TEXT NOT NULL, saved_at TEXT NOT NULL,
                PRIMARY KEY (registry, digest))""",
            """CREATE TABLE layers (
                layer_digest TEXT NOT NULL, detector_set_key TEXT NOT NULL, packages TEXT NOT NULL,
                PRIMARY KEY (layer_digest, detector_set_key))""",
            """CREATE TABLE assessments (
                registry TEXT NOT NULL, digest TEXT NOT NULL, health TEXT NOT NULL, reason TEXT NOT NULL,
                summary TEXT NOT NULL, assessed_at TEXT NOT NULL, PRIMARY KEY (registry, digest))""",
            """CREATE TABLE findings (
                registry TEXT NOT NULL, digest TEXT NOT NULL, finding_key TEXT NOT NULL,
                vuln_id TEXT NOT NULL, severity TEXT NOT NULL, fix_status TEXT NOT NULL,
                disabled INTEGER NOT NULL, finding TEXT NOT NULL, first_seen TEXT NOT NULL,
                last_seen TEXT NOT NULL, resolved_at TEXT, reopened INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (registry, digest, finding_key))""",
            """CREATE TABLE finding_ids (
                vuln_id TEXT NOT NULL, registry TEXT NOT NULL, digest TEXT NOT NULL, finding_key TEXT NOT NULL,
                PRIMARY KEY (vuln_id, registry, digest, finding_key))""",
            """CREATE TABLE usage_events (
                registry TEXT NOT NULL, digest TEXT NOT NULL, kind TEXT NOT NULL, event_at TEXT NOT NULL,
                PRIMARY KEY (registry, digest, kind, event_at))""",
            "CREATE INDEX usage_by_time ON usage_events (registry, event_at)",
            """CREATE TABLE billed_digests (
                registry TEXT NOT NULL, digest TEXT NOT NULL, billed_at TEXT NOT NULL,
                PRIMARY KEY (registry, digest))""",
            # Rows locked FOR UPDATE to serialise read-modify-write per repository or digest (PostgreSQL).
            "CREATE TABLE store_locks (scope TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (scope, name))",
        ),
    ),
    Migration(
        2,
        "disable rules created over HTTP, with a revision counter",
        (
            # name_key is the case-folded name: rule names are unique case-insensitively, as in files.
            """CREATE TABLE disable_rules (
                name_key TEXT PRIMARY KEY, name TEXT NOT NULL, document TEXT NOT NULL, created_at TEXT NOT NULL)""",
            # One row, bumped by every create and delete: readers compare it instead of reloading the rules.
            "CREATE TABLE rules_revision (singleton INTEGER PRIMARY KEY, revision INTEGER NOT NULL)",
            "INSERT INTO rules_revision (singleton, revision) VALUES (1, 0)",
        ),
    ),
    Migration(
        3,
        "layer-chain cache: the inventory of a full, ordered chain of layer blobs; the unused per-layer table dropped",
        (
            # Never written by any release (nothing called save_layer): dropping it loses nothing. A layer's
            # packages depend on the layers below it (the squashed filesystem), so a per-layer cache was unsound.
            "DROP TABLE layers",
            # chain_key hashes the layer blob digests in order, the detector set, the scanner version, the
            # platform and the parse limits (`scanner.inventory.chain_cache.chain_key`); the inventory is codec JSON.
            """CREATE TABLE layer_chains (
                chain_key TEXT PRIMARY KEY, layer_count INTEGER NOT NULL, inventory TEXT NOT NULL,
                saved_at TEXT NOT NULL)""",
        ),
    ),
    Migration(
        4,
        "the store's own secrets: the key its page cursors are signed with",
        # Rows are created on first use (random, by whichever process needs one first), never by a migration.
        ("CREATE TABLE store_secrets (name TEXT PRIMARY KEY, secret TEXT NOT NULL)",),
    ),
    Migration(
        5,
        "what the vulnerability database held for each ecosystem of an assessed image",
        # A JSON list of `Coverage` documents (scanner.model.shapes.COVERAGE); '[]' for assessments stored
        # before it was recorded, which the API shows as no coverage rather than inventing one.
        ("ALTER TABLE assessments ADD COLUMN coverage TEXT NOT NULL DEFAULT '[]'",),
    ),
    Migration(
        6,
        "gates' verdicts: what each gate decided about an image, and the actions taken",
        (
            # One row per gate and assessment; a replayed assessment (same time) overwrites its row. Kept
            # bounded by the store (`scanner.store.gate_rows`): the newest rows of each gate, none too old.
            """CREATE TABLE gate_verdicts (
                gate TEXT NOT NULL, registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
                decided_at TEXT NOT NULL, failed INTEGER NOT NULL, tags TEXT NOT NULL, reasons TEXT NOT NULL,
                actions TEXT NOT NULL, PRIMARY KEY (gate, registry, repository, digest, decided_at))""",
            "CREATE INDEX gate_verdicts_by_time ON gate_verdicts (decided_at)",
            "CREATE INDEX gate_verdicts_by_gate ON gate_verdicts (gate, decided_at)",
            "CREATE INDEX gate_verdicts_by_image ON gate_verdicts (registry, digest, decided_at)",
        ),
    ),
    Migration(
        7,
        "package index: which stored inventories look up which packages, and the database build last rescanned",
        (
            # The (base ecosystem, normalised name) keys an inventory's packages are looked up by, stored once
            # per distinct key set: successive builds of an image mostly share theirs (names, not versions).
            # Inventories stored before this migration get theirs on the next rescan (`index_unindexed`).
            """CREATE TABLE package_sets (
                set_key TEXT NOT NULL, base_ecosystem TEXT NOT NULL, name_key TEXT NOT NULL,
                PRIMARY KEY (set_key, base_ecosystem, name_key))""",
            "CREATE INDEX package_sets_by_package ON package_sets (base_ecosystem, name_key, set_key)",
            """CREATE TABLE inventory_package_sets (
                registry TEXT NOT NULL, digest TEXT NOT NULL, set_key TEXT NOT NULL,
                PRIMARY KEY (registry, digest))""",
            "CREATE INDEX inventory_package_sets_by_set ON inventory_package_sets (set_key)",
            # One row per kind of rescan: the database build, scanner and detector versions it last completed
            # against (`scanner.service.delta_rescan`).
            """CREATE TABLE rescan_marks (
                name TEXT PRIMARY KEY, build_id TEXT NOT NULL, scanner_version TEXT NOT NULL,
                detector_versions TEXT NOT NULL, marked_at TEXT NOT NULL)""",
        ),
    ),
    Migration(
        8,
        "package lists stored once per distinct list",
        (
            # Named by the SHA-256 of their JSON: the builds of an image that changed no package, its tags and
            # the images on one base mostly share their lists, read and decoded once per rescan instead of
            # once per digest. An inventory with a list_key is stored without its packages; one stored before
            # this migration (list_key NULL) still holds them.
            "CREATE TABLE package_lists (list_key TEXT PRIMARY KEY, packages TEXT NOT NULL)",
            "ALTER TABLE inventories ADD COLUMN list_key TEXT",
        ),
    ),
)

_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


def apply(tx: Tx, migrations: tuple[Migration, ...] = MIGRATIONS, now: Callable[[], str] = utc_text) -> list[int]:
    """Apply what is missing inside `tx`, which already holds the migration lock. Returns versions applied."""
    tx.run(_LEDGER)
    done = {int(row[0]) for row in tx.rows("SELECT version FROM schema_migrations")}
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        for statement in migration.statements:
            tx.run(statement)
        tx.run(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, now()),
        )
        applied.append(migration.version)
    return applied
