"""Disable rules created over HTTP, in the SQL store. The store keeps documents and knows nothing of the
rule schema: the service validates a rule (scanner.policy.rules) before it gets here.

Every create and delete bumps `rules_revision` in the same transaction, so an assessment can ask "did
anything change?" with one single-row read instead of reloading and re-parsing every rule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from scanner.store.records import RuleSnapshot, StoredRule
from scanner.store.sql import Tx, dumps, loads, req_time, to_text

_BUMP = "UPDATE rules_revision SET revision = revision + 1 WHERE singleton = 1"


class SqlRules(ABC):
    @abstractmethod
    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]: ...

    def create_rule(self, name: str, document: dict[str, Any], at: datetime) -> bool:
        with self._tx() as tx:
            created = tx.run(
                "INSERT INTO disable_rules (name_key, name, document, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (name.casefold(), name, dumps(document), to_text(at)),
            )
            if created:
                tx.run(_BUMP)
        return bool(created)

    def delete_rule(self, name: str) -> bool:
        with self._tx() as tx:
            deleted = tx.run("DELETE FROM disable_rules WHERE name_key = ?", (name.casefold(),))
            if deleted:
                tx.run(_BUMP)
        return bool(deleted)

    def get_rule(self, name: str) -> StoredRule | None:
        with self._tx(write=False) as tx:
            rows = tx.rows(
                "SELECT name, document, created_at FROM disable_rules WHERE name_key = ?", (name.casefold(),)
            )
        return StoredRule(rows[0][0], loads(rows[0][1]), req_time(rows[0][2])) if rows else None

    def list_rules(self) -> RuleSnapshot:
        with self._tx(write=False) as tx:
            revision = tx.rows("SELECT revision FROM rules_revision WHERE singleton = 1")
            rows = tx.rows("SELECT name, document, created_at FROM disable_rules ORDER BY created_at, name_key")
        rules = tuple(StoredRule(name, loads(doc), req_time(at)) for name, doc, at in rows)
        return RuleSnapshot(int(revision[0][0]), rules)

    def rules_revision(self) -> int:
        with self._tx(write=False) as tx:
            rows = tx.rows("SELECT revision FROM rules_revision WHERE singleton = 1")
        return int(rows[0][0])
