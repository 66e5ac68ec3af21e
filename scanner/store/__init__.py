"""The findings store: `open_store` picks SQLite (default, one file) or PostgreSQL. Its roles (the ledger,
scan records, assessments, usage, lookups, rules) are the protocols of `scanner.store.ports`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scanner.store.errors import CursorError, StoreError
from scanner.store.interface import FindingsStore
from scanner.store.records import (
    AssessmentChange,
    ImageDetail,
    ImageKey,
    ImageSummary,
    Page,
    RuleSnapshot,
    StoredFinding,
    StoredRule,
)

__all__ = [
    "AssessmentChange",
    "CursorError",
    "FindingsStore",
    "ImageDetail",
    "ImageKey",
    "ImageSummary",
    "Page",
    "RuleSnapshot",
    "StoreError",
    "StoredFinding",
    "StoredRule",
    "open_store",
]


def open_store(
    url_or_path: str | Path, migrate: bool = True, *, auth: str = "password", credential: Any = None
) -> FindingsStore:
    """`postgresql://…` (or `postgres://…`), `sqlite:///path`, or a plain file path. `auth="entra"`: a
    PostgreSQL store's password is an Entra access token from `credential` (default DefaultAzureCredential,
    the managed identity), fetched for each new connection."""
    text = str(url_or_path)
    if auth not in ("password", "entra"):
        raise StoreError(f"findings store: unknown authentication {auth[:20]!r} (known: password, entra)")
    if text.startswith(("postgresql://", "postgres://")):
        # Imported here: the SQLite default must not need psycopg installed.
        from scanner.store.postgres_store import EntraPassword, PostgresStore

        password = EntraPassword(credential) if auth == "entra" else None
        store: FindingsStore = PostgresStore(text, password)
    elif auth == "entra":
        raise StoreError("findings store: Entra authentication needs a postgresql://… store")
    elif text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/") or path == "/":
            raise StoreError(f"store URL {text!r}: expected sqlite:///relative/or//absolute/path")
        from scanner.store.sqlite_store import SqliteStore

        store = SqliteStore(path[1:])  # sqlite:///rel/path, sqlite:////abs/path
    elif "://" in text:
        raise StoreError(f"unsupported findings store URL {text!r}: use sqlite:///PATH or postgresql://…")
    else:
        from scanner.store.sqlite_store import SqliteStore

        store = SqliteStore(text)
    if migrate:
        store.migrate()
    return store
