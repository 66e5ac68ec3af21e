"""The service's policy from its settings: the user's disable rules, remediation templates and gates,
loaded once per worker process.

`ACRGUARD_RULES` (default `policies/rules` when present) plus the rules created over HTTP in the findings
store (`ACRGUARD_STORE`), `ACRGUARD_TEMPLATES` (default templates),
`ACRGUARD_GATES` (default `policies/gates` when present), and where health-changed events go:
`ACRGUARD_HEALTH_WEBHOOK` (a URL) or `ACRGUARD_EVENTGRID_TOPIC_ENDPOINT` with `ACRGUARD_EVENTGRID_TOPIC_KEY`;
gate actions reach registries with the configured credentials; the order severity sources are trusted in:
`ACRGUARD_SEVERITY_SOURCES`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any, Protocol, runtime_checkable

import jinja2

from scanner.image.registry_options import RegistryOptions
from scanner.model.settings import Settings
from scanner.model.severity_order import DEFAULT_SEVERITY_ORDER
from scanner.model.types import Finding, Inventory
from scanner.policy.gate_actions import (
    AcrActions,
    ActionsAdapter,
    EventGridPublisher,
    Publisher,
    QuarantineState,
    WebhookPublisher,
)
from scanner.policy.gates import DEFAULT_GATES_DIR, Gate, load_gates
from scanner.policy.image_context import ImageContext
from scanner.policy.log_export import LogsIngestionSink
from scanner.policy.remediation import attach_remediation, make_environment, render_summary
from scanner.policy.rules import DEFAULT_RULES_DIR, Rule, apply_rules, load_rules, parse_rule
from scanner.service.findings_export import FindingsExporter, registry_scopes
from scanner.service.pipeline import Policy
from scanner.store.ports import RuleStore

# `Rule.source` of a rule created over HTTP (a file rule's is its path).
STORED_SOURCE = "api"
# How stale the stored rules may be when another instance changed them: a rescan asks for them per image,
# and one revision read per image was 7% of a PostgreSQL rescan (benchmarks/README.md, rescan_throughput).
RULES_MAX_AGE_S = 1.0


class RegistryActions:
    """Gate actions for whichever registry an image lives in (one ACR client each, made on first use)."""

    def __init__(self, publisher: Publisher | None, options: RegistryOptions | None = None) -> None:
        self.publisher = publisher
        self.options = options or RegistryOptions()
        self._by_registry: dict[str, AcrActions] = {}

    def _acr(self, image: ImageContext) -> AcrActions:
        if image.registry not in self._by_registry:
            self._by_registry[image.registry] = AcrActions(image.registry, self.options, self.publisher)
        return self._by_registry[image.registry]

    def lock(self, image: ImageContext) -> None:
        self._acr(image).lock(image)

    def unlock(self, image: ImageContext) -> None:
        self._acr(image).unlock(image)

    def quarantine(self, image: ImageContext, state: QuarantineState, details: Mapping[str, Any]) -> None:
        self._acr(image).quarantine(image, state, details)

    def publish(self, event: Mapping[str, Any]) -> None:
        if self.publisher is not None:  # no destination configured: health changes are only stored
            self.publisher.publish(event)


def configured_publisher(settings: Settings) -> Publisher | None:
    """Where health-changed events go: the webhook, else the Event Grid topic, else nowhere."""
    if settings.health_webhook:
        return WebhookPublisher(settings.health_webhook)
    if settings.eventgrid_topic_endpoint:
        return EventGridPublisher(settings.eventgrid_topic_endpoint, settings.eventgrid_topic_key)
    return None


def file_rules(rules_dir: str | None) -> list[Rule]:
    """The rule files in `rules_dir` (`ACRGUARD_RULES`), else in `policies/rules` when present; a malformed
    file is a RuleError naming it."""
    return load_rules(rules_dir) if rules_dir else load_rules(DEFAULT_RULES_DIR, missing_ok=True)


def stored_rule(document: object, index: int = 1) -> Rule:
    """A stored (or posted) rule document through the rule files' own strict validator."""
    return parse_rule(document, STORED_SOURCE, index)


@runtime_checkable
class CountsRuleWrites(Protocol):
    """A store that knows when a rule was created or deleted through it (`SqlStore.rule_writes`)."""

    @property
    def rule_writes(self) -> int: ...


class StoredRules:
    """The rules created over HTTP as the store holds them. Several instances share the store and a rule may
    be created or deleted at any time: the store's revision counter (one single-row read) is asked at most
    once per `max_age` seconds, so another instance's change applies within that bound, and the rules are
    reloaded and re-parsed only when the revision moved. A change made through this process's own store
    applies at once (the re-assessment right after creating a rule must see it)."""

    def __init__(
        self,
        store: Callable[[], RuleStore],
        max_age: float = RULES_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._rules: tuple[Rule, ...] = ()
        # What the last revision check saw: when, on which store object, after which of its own writes.
        self._checked: tuple[float, RuleStore, int] | None = None

    def __call__(self) -> tuple[Rule, ...]:
        store = self._store()
        now = self._clock()
        writes = store.rule_writes if isinstance(store, CountsRuleWrites) else 0
        with self._lock:
            checked = self._checked
            if checked is not None:
                at, seen_store, seen_writes = checked
                if now - at < self._max_age and seen_store is store and seen_writes == writes:
                    return self._rules
        revision = store.rules_revision()
        with self._lock:
            if revision == self._revision:
                self._checked = (now, store, writes)
                return self._rules
        snapshot = store.list_rules()
        rules = tuple(stored_rule(r.document, i) for i, r in enumerate(snapshot.rules, start=1))
        with self._lock:
            self._revision, self._rules = snapshot.revision, rules
            self._checked = (now, store, writes)
        return rules


def policy_from_settings(settings: Settings, store: Callable[[], RuleStore] | None = None) -> Policy:
    """Rules (files, then the store's), templates and gates as configured; a malformed file is an
    AcrguardError naming it. `store` (the composition root passes the service's store when one is
    configured) is called at assessment time, not now."""
    rules = file_rules(settings.rules)
    env = make_environment(settings.templates)
    gates = load_gates(
        settings.gates or DEFAULT_GATES_DIR,
        missing_ok=not settings.gates,
        on_incomplete=settings.gate_on_incomplete,
        on_not_assessed=settings.gate_on_not_assessed,
    )
    # One publisher: health-changed events go out on every change (Policy.publisher), gates or not, and
    # the gates' notify action uses the same destination.
    publisher = configured_publisher(settings)
    actions = RegistryActions(publisher, RegistryOptions().with_settings(settings)) if gates else None
    stored = StoredRules(store) if store is not None else None
    policy = build_policy(
        rules,
        env,
        gates,
        actions,
        stored_rules=stored,
        publisher=publisher,
        severity_order=settings.severity_sources,
    )
    return replace(policy, export=configured_export(settings))


def configured_export(settings: Settings) -> FindingsExporter | None:
    """The continuous export to Log Analytics, when its data collection endpoint and rule are set."""
    if not (settings.export_endpoint and settings.export_rule_id):
        return None
    sink = LogsIngestionSink(settings.export_endpoint, settings.export_rule_id, settings.export_stream)
    return FindingsExporter(sink, registry_scopes(settings.export_registry_ids))


def build_policy(
    rules: Sequence[Rule],
    env: jinja2.Environment,
    gates: Sequence[Gate] = (),
    gate_actions: ActionsAdapter | None = None,
    today: date | None = None,
    stored_rules: Callable[[], Sequence[Rule]] | None = None,
    publisher: Publisher | None = None,
    severity_order: tuple[str, ...] = DEFAULT_SEVERITY_ORDER,
) -> Policy:
    """The assessment callables over loaded rules and templates (the CLI's `scan` uses the same).
    `stored_rules`, when given, is asked for the rules created over HTTP at every assessment; they apply
    after the file rules."""

    def rules_for(findings: list[Finding], inv: Inventory) -> list[Finding]:
        current = [*rules, *stored_rules()] if stored_rules is not None else rules
        return apply_rules(findings, current, ImageContext.from_inventory(inv), today or date.today())

    def remediate(findings: list[Finding], inv: Inventory) -> list[Finding]:
        return attach_remediation(findings, ImageContext.from_inventory(inv), env)

    def summary(findings: list[Finding], inv: Inventory) -> str:
        return render_summary(findings, ImageContext.from_inventory(inv), env)

    return Policy(
        apply_rules=rules_for,
        attach_remediation=remediate,
        summarise_remediation=summary,
        gates=tuple(gates),
        gate_actions=gate_actions,
        publisher=publisher,
        severity_order=severity_order,
    )
