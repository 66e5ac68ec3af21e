"""Disable rules created over HTTP: listed with the file rules, validated by the rule files'
own validator (`scanner.policy.rules`), stored in the findings store, and applied at once: the images a created or
deleted rule may change are re-assessed from their stored inventories before the reply.

A listing gives each rule's status: `expired` (past its `expires`), `stale` (active, but it matches no finding of
the latest assessment of any live image in the store) or `active`, and warns of each rule hiding a finding in
CISA's KEV catalog. The store has no query by rule, so the listing reads each live image's findings, at most
`MAX_USAGE_IMAGES` images: beyond that no rule is called stale (the images not read might hold its findings).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from scanner.policy.image_context import ImageContext
from scanner.policy.rule_reports import RuleReport, RuleStatus, hides_kev_reports, rule_status
from scanner.policy.rules import Match, Rule, RuleError
from scanner.service.manage import ManageError, iso_or_none
from scanner.service.pipeline import Policy, reassess_stored
from scanner.service.policy import STORED_SOURCE, file_rules, stored_rule
from scanner.store.ports import Lookups, Reassessment, RuleChanges, RuleStore
from scanner.store.records import ImageKey
from scanner.vulndb.interface import VulnDatabase

log = logging.getLogger(__name__)

# How many live images a rule listing reads the findings of to tell stale rules (one query each).
MAX_USAGE_IMAGES = 2000
# KEV warnings shown per rule: a rule hiding one finding on every image of a registry must not flood the answer.
MAX_WARNINGS = 20


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


@dataclass(frozen=True)
class RuleUsage:
    """What the stored findings say about some rules: which match a finding (None when not every live image
    was read, so none may be called stale) and which hide a KEV-listed finding."""

    matched: set[str] | None  # case-folded rule names
    hides_kev: tuple[RuleReport, ...]
    images: int  # live images whose findings were read


def rule_usage(
    rules: list[Rule], store: Lookups, today: date | None = None, max_images: int = MAX_USAGE_IMAGES
) -> RuleUsage:
    """Reads the latest findings (disabled ones too) of each live image, up to `max_images`.

    A finding matches a rule when it carries the rule's name in `disabled_by`, or the rule's criteria hold
    for it and for the image as the store knows it (registry, repository, digest). The store does not know
    the image's OS, and an image is read once under its first repository, so `os` and `repositories` criteria
    are taken as met: a rule is called stale only when it surely matched nothing.
    """
    day = today or date.today()
    active = [r for r in rules if r.active(day)]
    loose = {r.name.casefold(): dataclasses.replace(r.match, os=None, repositories=None) for r in active}
    matched: set[str] = set()
    hidden: list[RuleReport] = []
    images = 0
    complete = True
    for key in _live_digests(store):
        if images >= max_images:
            complete = False
            break
        images += 1
        image = ImageContext(key.registry, key.repository, key.digest, (), None, ())
        findings = [s.finding for s in store.list_findings(key.registry, key.digest, include_disabled=True)]
        matched.update(f.disabled_by.casefold() for f in findings if f.disabled and f.disabled_by)
        for name, match in loose.items():
            if name not in matched and any(match.matches(f, image) for f in findings):
                matched.add(name)
        hidden.extend(hides_kev_reports(findings, rules, f"on {key.registry}/{key.repository}@{key.digest}"))
    return RuleUsage(matched if complete else None, tuple(hidden), images)


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


def change_expiry(
    name: str, expires: str, store: RuleChanges, db: VulnDatabase, policy: Policy, rules_dir: str | None
) -> RuleChange:
    """Sets (`YYYY-MM-DD`) or clears ("") a stored rule's expiry, validated like a new rule, then re-assesses the
    images it hides findings of and the images it may newly hide findings of (an expiry moved into the past shows
    them again; one moved out of the past hides them again)."""
    stored = store.get_rule(name)
    if stored is None:
        found = get_rule(store, name, rules_dir)  # 404 when no file rule has the name either
        raise ManageError(409, "Conflict", f"rule '{found.rule.name}' comes from {found.rule.source}: edit the file")
    document = {k: v for k, v in dict(stored.document).items() if k != "expires"}
    if expires.strip():
        document["expires"] = expires.strip()
    try:
        rule = stored_rule(document)
    except RuleError as err:
        raise ManageError(400, "BadRequest", str(err).replace(f"{STORED_SOURCE}: rule 1", "rule", 1)) from None
    # The store has no update: the rule is replaced under its name and creation time (a reader in between sees
    # it missing for one statement, as it would a deletion).
    if not store.delete_rule(stored.name) or not store.create_rule(stored.name, document, stored.created_at):
        raise ManageError(409, "Conflict", f"rule '{name}' changed meanwhile; reload and try again")
    keys = {*_candidates_disabled_by(rule.name, store), *_candidates_for_new(rule, store)}
    done, failed = _reassess(sorted(keys, key=lambda k: (k.registry, k.repository, k.digest)), store, db, policy)
    return RuleChange(RuleView(rule, "api", stored.created_at), done, failed)


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


def rule_view_document(view: RuleView, usage: RuleUsage | None = None, today: date | None = None) -> dict[str, Any]:
    """A rule as the management API shows it: its document, where it comes from and when it was stored; with
    `usage`, its `status` (active, expired, stale) and `warnings` (the KEV-listed findings it hides)."""
    body = rule_document(view.rule) | {"origin": view.origin}
    if view.origin == "file":
        body["source"] = view.rule.source
    else:
        body["createdAt"] = iso_or_none(view.created_at)
    if usage is not None:
        status: RuleStatus = rule_status(view.rule, today or date.today(), usage.matched)
        body["status"] = status
        name = view.rule.name.casefold()
        warnings = [r.message for r in usage.hides_kev if r.rule.casefold() == name]
        more = [f"... and {len(warnings) - MAX_WARNINGS} more KEV-listed findings hidden"]
        body["warnings"] = warnings if len(warnings) <= MAX_WARNINGS else warnings[:MAX_WARNINGS] + more
    return body


def rule_list_document(views: list[RuleView], usage: RuleUsage, today: date | None = None) -> dict[str, Any]:
    """The rule listing: each rule with its status and warnings, and how many images were read to tell them
    (`staleChecked` false when the store holds more live images than a listing reads)."""
    return {
        "value": [rule_view_document(v, usage, today) for v in views],
        "imagesRead": usage.images,
        "staleChecked": usage.matched is not None,
    }


def rule_change_document(change: RuleChange) -> dict[str, Any]:
    """The answer to creating or deleting a rule."""
    return {"rule": rule_view_document(change.rule), "reassessed": change.reassessed, "failed": change.failed}
