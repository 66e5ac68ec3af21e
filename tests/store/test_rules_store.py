"""Disable rules stored over HTTP, against SQLite and a real PostgreSQL (see conftest.py): names unique
case-insensitively, the revision moves with every change and only then, and a second store instance on
the same database (another function instance) sees every change."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from scanner.model.types import Finding, Inventory
from scanner.policy.remediation import make_environment
from scanner.service.policy import RULES_MAX_AGE_S, StoredRules, build_policy
from scanner.store import FindingsStore, open_store
from scanner.store.ports import RuleStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def rule(name: str, ids: list[str]) -> dict[str, object]:
    return {"name": name, "justification": "reviewed", "match": {"ids": ids}}


def test_create_get_list_delete(store: FindingsStore) -> None:
    assert store.list_rules().rules == () and store.get_rule("a") is None
    assert store.create_rule("Accept-A", rule("Accept-A", ["CVE-1"]), T0)
    assert store.create_rule("b", rule("b", ["CVE-2"]), T0 + timedelta(seconds=1))
    got = store.get_rule("accept-a")  # case-insensitive, like rule names in files
    assert got is not None
    assert (got.name, got.document, got.created_at) == ("Accept-A", rule("Accept-A", ["CVE-1"]), T0)
    assert [r.name for r in store.list_rules().rules] == ["Accept-A", "b"]
    assert store.delete_rule("ACCEPT-A")
    assert not store.delete_rule("accept-a")
    assert [r.name for r in store.list_rules().rules] == ["b"]
    assert store.get_rule("Accept-A") is None


def test_duplicate_name_is_refused_and_keeps_the_first(store: FindingsStore) -> None:
    assert store.create_rule("x", rule("x", ["CVE-1"]), T0)
    assert not store.create_rule("X", rule("X", ["CVE-9"]), T0 + timedelta(minutes=1))
    stored = store.get_rule("x")
    assert stored is not None and stored.document == rule("x", ["CVE-1"])


def test_revision_moves_only_when_the_rules_change(store: FindingsStore) -> None:
    start = store.rules_revision()
    assert store.list_rules().revision == start
    store.create_rule("x", rule("x", ["CVE-1"]), T0)
    after_create = store.rules_revision()
    assert after_create > start
    store.create_rule("x", rule("x", ["CVE-1"]), T0)  # refused duplicate
    store.delete_rule("nope")  # nothing to delete
    assert store.rules_revision() == after_create
    store.delete_rule("x")
    assert store.rules_revision() > after_create
    assert store.list_rules().revision == store.rules_revision()


def test_another_instance_sees_changes(store_url: str, store: FindingsStore) -> None:
    with open_store(store_url) as other:
        seen = other.rules_revision()
        store.create_rule("shared", rule("shared", ["CVE-3"]), T0)
        assert other.rules_revision() != seen
        assert [r.name for r in other.list_rules().rules] == ["shared"]
        assert other.delete_rule("shared")
        assert store.get_rule("shared") is None


def test_migration_is_idempotent(store_url: str, store: FindingsStore) -> None:
    store.create_rule("kept", rule("kept", ["CVE-4"]), T0)
    with open_store(store_url) as again:  # migrate() runs again on open
        again.migrate()
        assert [r.name for r in again.list_rules().rules] == ["kept"]


class CountingLoads:
    """A real store, with its `list_rules` and `rules_revision` calls counted (what the cache saves)."""

    def __init__(self, store: FindingsStore) -> None:
        self.store = store
        self.loads = 0
        self.revision_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def list_rules(self) -> Any:
        self.loads += 1
        return self.store.list_rules()

    def rules_revision(self) -> int:
        self.revision_reads += 1
        return self.store.rules_revision()


def until(check: Callable[[], bool], what: str) -> None:
    """Polls a condition the code promises within RULES_MAX_AGE_S; fails loudly well after that bound."""
    deadline = time.monotonic() + 30 * RULES_MAX_AGE_S
    while not check():
        assert time.monotonic() < deadline, f"not within {30 * RULES_MAX_AGE_S} s: {what}"
        time.sleep(RULES_MAX_AGE_S / 10)


def test_policy_rereads_stored_rules_only_when_the_revision_moved(
    store_url: str, store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]
) -> None:
    inv, findings = alpine_image
    counting = CountingLoads(store)
    stored = StoredRules(lambda: cast(RuleStore, counting))
    policy = build_policy([], make_environment(), stored_rules=stored)
    assert policy.apply_rules is not None
    assert not any(f.disabled for f in policy.apply_rules(findings, inv))
    policy.apply_rules(findings, inv)
    assert counting.loads == 1  # unchanged revision: no reload
    with open_store(store_url) as other_instance:  # another function instance creates a rule
        other_instance.create_rule("all", {"name": "all", "justification": "j", "match": {"ids": [findings[0].id]}}, T0)
    applied: list[Finding] = []
    apply_rules = policy.apply_rules

    def rule_applies() -> bool:
        applied[:] = apply_rules(findings, inv)
        return any(f.disabled for f in applied)

    until(rule_applies, "another instance's rule applies")  # within RULES_MAX_AGE_S
    assert counting.loads == 2
    assert [f.disabled_by for f in applied if f.disabled] == ["all"] * sum(f.id == findings[0].id for f in findings)
    policy.apply_rules(findings, inv)
    assert counting.loads == 2


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_revision_is_read_at_most_once_per_max_age(store_url: str, store: FindingsStore) -> None:
    counting, clock = CountingLoads(store), Clock()
    stored = StoredRules(lambda: cast(RuleStore, counting), max_age=1.0, clock=clock)
    assert stored() == () and (counting.revision_reads, counting.loads) == (1, 1)
    for _ in range(50):  # a rescan asks once per image
        clock.now += 0.01
        assert stored() == ()
    assert counting.revision_reads == 1
    with open_store(store_url) as other_instance:
        other_instance.create_rule("x", rule("x", ["CVE-1"]), T0)
    clock.now = 100.99
    assert stored() == ()  # another instance's rule: not yet, within the bound
    clock.now = 101.0
    assert [r.name for r in stored()] == ["x"]  # at the bound
    assert (counting.revision_reads, counting.loads) == (2, 2)
    clock.now = 102.5
    assert [r.name for r in stored()] == ["x"]
    assert (counting.revision_reads, counting.loads) == (3, 2)  # revision unchanged: no reload


def test_rules_changed_through_this_store_apply_at_once(store: FindingsStore) -> None:
    counting, clock = CountingLoads(store), Clock()
    stored = StoredRules(lambda: cast(RuleStore, counting), max_age=3600.0, clock=clock)
    assert stored() == ()
    assert store.create_rule("mine", rule("mine", ["CVE-5"]), T0)  # e.g. POST /api/rules in this process
    assert [r.name for r in stored()] == ["mine"]
    assert not store.create_rule("MINE", rule("MINE", ["CVE-6"]), T0)  # refused: nothing changed
    assert [r.name for r in stored()] == ["mine"] and counting.revision_reads == 2
    assert store.delete_rule("mine")
    assert stored() == ()
    assert (counting.revision_reads, counting.loads) == (3, 3)
