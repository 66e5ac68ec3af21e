"""The findings store's error base: adapters translate sqlite3 and psycopg errors into it."""

from scanner.model.errors import AcrguardError


class StoreError(AcrguardError):
    """The findings store could not be opened, migrated, read or written."""
