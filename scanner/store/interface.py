"""The findings store: what the event, timer and HTTP handlers read and write, as one object.

`FindingsStore` is every role of `scanner.store.ports` (the ledger, scan records, assessments, usage,
lookups, rules) plus its lifecycle; the SQLite and PostgreSQL stores (`scanner.store.sql_store`) provide it.
"""

from __future__ import annotations

from abc import abstractmethod

from scanner.store.package_index import PackageIndex
from scanner.store.ports import Assessments, ImageLedger, Lookups, RuleStore, ScanRecords, UsageMeter


class FindingsStore(ImageLedger, ScanRecords, Assessments, UsageMeter, Lookups, RuleStore, PackageIndex):
    """Images, tags, pulls, scans, inventories, layer cache, findings with history, usage, rules."""

    @abstractmethod
    def migrate(self) -> None:
        """Bring the schema up to date; safe to call from several instances at once."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> FindingsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
