"""The one error base of the feeds adapters: sqlite3, zipfile, urllib, yaml and json errors become these."""

from __future__ import annotations

from scanner.model.errors import AcrguardError


class FeedError(AcrguardError):
    """A vulnerability source or the vulnerability database cannot be read, written or downloaded."""


class DatabaseMissingError(FeedError):
    """The vulnerability database file does not exist (the user has to import, update or use the snapshot)."""
