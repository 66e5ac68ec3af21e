"""Where the vulnerability database is: the one chosen (`--db`, else `$ACRGUARD_DB`: the caller passes it),
else `~/.cache/acrguard/vulndb.sqlite`; a scan with neither present uses the database built from the bundled
snapshot."""

from __future__ import annotations

from pathlib import Path

from scanner.vulndb.sqlite_db import SqliteVulnDatabase


def cache_dir() -> Path:
    return Path.home() / ".cache" / "acrguard"


def writable_db_path(chosen: str | None = None) -> Path:
    """The database `db import` and `db update` write."""
    return Path(chosen or str(cache_dir() / "vulndb.sqlite")).expanduser().absolute()


def scan_db_path(chosen: str | None = None) -> Path:
    """The database a scan reads. A chosen one (`--db`, `$ACRGUARD_DB`) must exist (opening it says how to
    create it); with no choice, the default file if it exists, else the bundled snapshot's database."""
    if chosen:
        return writable_db_path(chosen)
    default = writable_db_path()
    if default.exists():
        return default
    from scanner.vulndb.snapshot import default_db_path  # builds on first use only

    return default_db_path()


def open_scan_database(chosen: str | None = None) -> SqliteVulnDatabase:
    return SqliteVulnDatabase.open(scan_db_path(chosen))
