"""Where the vulnerability database is: `--db`, else `$ACRGUARD_DB`, else `~/.cache/acrguard/vulndb.sqlite`; a
scan with none of those present uses the database built from the bundled snapshot."""

from __future__ import annotations

import os
from pathlib import Path

from scanner.vulndb.sqlite_db import SqliteVulnDatabase

DB_ENV = "ACRGUARD_DB"


def cache_dir() -> Path:
    return Path.home() / ".cache" / "acrguard"


def writable_db_path(explicit: str | None = None) -> Path:
    """The database `db import` and `db update` write."""
    chosen = explicit or os.environ.get(DB_ENV) or str(cache_dir() / "vulndb.sqlite")
    return Path(chosen).expanduser().absolute()


def scan_db_path(explicit: str | None = None) -> Path:
    """The database a scan reads. An explicit choice (`--db`, `$ACRGUARD_DB`) must exist (opening it says how
    to create it); with no choice, the default file if it exists, else the bundled snapshot's database."""
    if explicit or os.environ.get(DB_ENV):
        return writable_db_path(explicit)
    default = writable_db_path()
    if default.exists():
        return default
    from scanner.vulndb.snapshot import default_db_path  # builds on first use only

    return default_db_path()


def open_scan_database(explicit: str | None = None) -> SqliteVulnDatabase:
    return SqliteVulnDatabase.open(scan_db_path(explicit))
