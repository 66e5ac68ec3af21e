"""The findings store's errors: adapters translate sqlite3 and psycopg errors into them."""

from scanner.model.errors import AcrguardError


class StoreError(AcrguardError):
    """The findings store could not be opened, migrated, read or written."""


class CursorError(StoreError):
    """A page cursor the store did not issue: the caller's mistake, not the store's trouble."""
