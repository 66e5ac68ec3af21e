"""Disable rules created over HTTP: listed with the file rules, validated by the rule files'
own validator (`scanner.policy.rules`), stored in the findings store, and applied at once: the images a created or
deleted rule may change are re-assessed from their stored inventories before the reply.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from scanner.policy.image_context import ImageContext
from scanner.policy.rules import Match, Rule, RuleError
from scanner.service.manage import ManageError, iso_or_none
from scanner.service.pipeline import Policy, reassess_stored
from scanner.service.policy import STORED_SOURCE, file_rules, stored_rule
from scanner.store.ports import Lookups, Reassessment, RuleChanges, RuleStore
from scanner.store.records import ImageKey
from scanner.vulndb.interface import VulnDatabase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleView:
    rule: Rule
    origin: Literal["file", "api"]
    created_at: datetime | None = None


@dataclass(frozen=True)
class RuleChange:
    rule: RuleView
    reassessed: int  # images re-assessed from their stored inventories
    failed: int


def rule_document(rule: Rule) -> dict[str, Any]:
    """A rule in the file schema, normalised (ids and globs case-folded, lists sorted where unordered)."""
    match: dict[str, Any] = {}
    for field in dataclasses.fields(Match):
        value = getattr(rule.match, field.name)
        if value is None:
            continue
        if isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif field.name == "os":
            value = {k: v for k, v in (("id", value.id), ("version", value.version)) if v}
        match[field.name] = value
    doc: dict[str, Any] = {"name": rule.name, "justification": rule.justification, "match": match}
    if rule.expires is not None:
        doc["expires"] = rule.expires.isoformat()
    return doc


def list_rules(store: RuleStore, rules_dir: str | None) -> list[RuleView]:
    """File rules (read-only, from `rules_dir` as `file_rules` reads it), then the stored ones: the order
    they apply in."""
    views = [RuleView(rule, "file") for rule in file_rules(rules_dir)]
    for index, stored in enumerate(store.list_rules().rules, start=1):
        views.append(RuleView(stored_rule(stored.document, index), "api", stored.created_at))
    return views


def get_rule(store: RuleStore, name: str, rules_dir: str | None) -> RuleView:
    for view in list_rules(store, rules_dir):
        if view.rule.name.casefold() == name.casefold():
            return view
    raise ManageError(404, "NotFound", f"no rule named '{name}'")


def create_rule(
    body: object, store: RuleChanges, db: VulnDatabase, policy: Policy, rules_dir: str | None
) -> RuleChange:
    """Validates a rule with the rule files' own validator, stores it, and re-assesses the images it may
    change, so health, lookups and sub-assessments reflect it at once."""
    try:
        rule = stored_rule(body)
    except RuleError as err:
        raise ManageError(400, "BadRequest", str(err).replace(f"{STORED_SOURCE}: rule 1", "rule", 1)) from None
    clash = next((r for r in file_rules(rules_dir) if r.name.casefold() == rule.name.casefold()), None)
    if clash is not None:
        raise ManageError(409, "Conflict", f"rule 'name': '{rule.name}' is already used by {clash.source}")
    now = datetime.now(UTC)
    if not store.create_rule(rule.name, body if isinstance(body, dict) else {}, now):
        raise ManageError(409, "Conflict", f"rule 'name': '{rule.name}' is already used by a stored rule")
    done, failed = _reassess(_candidates_for_new(rule, store), store, db, policy)
    return RuleChange(RuleView(rule, "api", now), done, failed)


def delete_rule(name: str, store: RuleChanges, db: VulnDatabase, policy: Policy, rules_dir: str | None) -> RuleChange:
    stored = store.get_rule(name)
    if stored is None:
        found = get_rule(store, name, rules_dir)  # 404 when no file rule has the name either
        raise ManageError(409, "Conflict", f"rule '{found.rule.name}' comes from {found.rule.source}: edit the file")
    # Looked up in the store first: a file rule given the same name after this one was stored must not
    # make the stored one undeletable.
    view = RuleView(stored_rule(stored.document), "api", stored.created_at)
    if not store.delete_rule(stored.name):  # deleted meanwhile by another caller
        raise ManageError(404, "NotFound", f"no rule named '{name}'")
    done, failed = _reassess(_candidates_disabled_by(view.rule.name, store), store, db, policy)
    return RuleChange(view, done, failed)


def _live_digests(store: Lookups) -> Iterable[ImageKey]:
    """Each assessed, live (registry, digest) once, under its first repository."""
    seen: set[tuple[str, str]] = set()
    cursor: str | None = None
    while True:
        page = store.list_images(limit=1000, cursor=cursor)
        for image in page.items:
            if image.health is not None and (image.key.registry, image.key.digest) not in seen:
                seen.add((image.key.registry, image.key.digest))
                yield image.key
        cursor = page.cursor
        if cursor is None:
            return


def _candidates_for_new(rule: Rule, store: Lookups) -> list[ImageKey]:
    # Image criteria are judged by the re-assessment itself (it knows the image's OS and reference); here
    # they are dropped, so the pre-filter can only over-select, never miss an image the rule changes.
    loose = dataclasses.replace(rule.match, os=None, repositories=None, registries=None, image_digests=None)
    nowhere = ImageContext("", "", "", (), None, ())
    if not rule.active(date.today()):
        return []
    return [
        key
        for key in _live_digests(store)
        if any(loose.matches(s.finding, nowhere) for s in store.list_findings(key.registry, key.digest))
    ]


def _candidates_disabled_by(name: str, store: Lookups) -> list[ImageKey]:
    def disabled_here(key: ImageKey) -> bool:
        found = store.list_findings(key.registry, key.digest, include_disabled=True)
        return any(s.finding.disabled_by.casefold() == name.casefold() for s in found)

    return [key for key in _live_digests(store) if disabled_here(key)]


def _reassess(keys: list[ImageKey], store: Reassessment, db: VulnDatabase, policy: Policy) -> tuple[int, int]:
    done = failed = 0
    for key in keys:
        try:
            if reassess_stored(key, store, db, policy) is not None:
                done += 1
        except Exception as err:  # one image must not hide the others; the rule itself is stored
            log.warning("re-assessment of %s@%s after a rule change failed: %s", key.registry, key.digest, err)
            failed += 1
    return done, failed


def rule_view_document(view: RuleView) -> dict[str, Any]:
    """A rule as the management API shows it: its document, where it comes from and when it was stored."""
    body = rule_document(view.rule) | {"origin": view.origin}
    if view.origin == "file":
        body["source"] = view.rule.source
    else:
        body["createdAt"] = iso_or_none(view.created_at)
    return body


def rule_change_document(change: RuleChange) -> dict[str, Any]:
    """The answer to creating or deleting a rule."""
    return {"rule": rule_view_document(change.rule), "reassessed": change.reassessed, "failed": change.failed}
