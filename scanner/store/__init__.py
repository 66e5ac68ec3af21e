"""The findings store: `open_store` picks SQLite (default, one file) or PostgreSQL. Its roles (the ledger,
scan records, assessments, usage, lookups, rules) are the protocols of `scanner.store.ports`."""

from __future__ import annotations

from pathlib import Path

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


def open_store(url_or_path: str | Path, migrate: bool = True) -> FindingsStore:
    """`postgresql://…` (or `postgres://…`), `sqlite:///path`, or a plain file path."""
    text = str(url_or_path)
    if text.startswith(("postgresql://", "postgres://")):
        # Imported here: the SQLite default must not need psycopg installed.
        from scanner.store.postgres_store import PostgresStore

        store: FindingsStore = PostgresStore(text)
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
