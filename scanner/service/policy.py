"""The service's policy from its configuration: the user's disable rules, remediation templates and gates,
loaded once per worker process.

`ACRGUARD_RULES` (default `policies/rules` when present), `ACRGUARD_TEMPLATES` (default templates),
`ACRGUARD_GATES` (default `policies/gates` when present), and where health-changed events go:
`ACRGUARD_HEALTH_WEBHOOK` (a URL) or `ACRGUARD_EVENTGRID_TOPIC_ENDPOINT` with `ACRGUARD_EVENTGRID_TOPIC_KEY`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import jinja2

from scanner.gate_actions import (
    AcrActions,
    ActionsAdapter,
    EventGridPublisher,
    Publisher,
    QuarantineState,
    WebhookPublisher,
)
from scanner.gates import DEFAULT_GATES_DIR, Gate, load_gates
from scanner.image.registry_options import RegistryOptions
from scanner.image_context import ImageContext
from scanner.models import Finding, Inventory
from scanner.remediation import attach_remediation, make_environment, render_summary
from scanner.rules import DEFAULT_RULES_DIR, Rule, apply_rules, load_rules
from scanner.service.pipeline import Policy


class RegistryActions:
    """Gate actions for whichever registry an image lives in (one ACR client each, made on first use)."""

    def __init__(self, publisher: Publisher | None) -> None:
        self.publisher = publisher
        self._by_registry: dict[str, AcrActions] = {}

    def _acr(self, image: ImageContext) -> AcrActions:
        if image.registry not in self._by_registry:
            self._by_registry[image.registry] = AcrActions(image.registry, RegistryOptions(), self.publisher)
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


def publisher_from_environment() -> Publisher | None:
    webhook = os.environ.get("ACRGUARD_HEALTH_WEBHOOK", "").strip()
    if webhook:
        return WebhookPublisher(webhook)
    endpoint = os.environ.get("ACRGUARD_EVENTGRID_TOPIC_ENDPOINT", "").strip()
    if endpoint:
        return EventGridPublisher(endpoint, os.environ.get("ACRGUARD_EVENTGRID_TOPIC_KEY", ""))
    return None


def policy_from_environment() -> Policy:
    """Rules, templates and gates as configured; a malformed file is an AcrguardError naming it."""
    rules_dir = os.environ.get("ACRGUARD_RULES")
    rules = load_rules(rules_dir) if rules_dir else load_rules(DEFAULT_RULES_DIR, missing_ok=True)
    env = make_environment(os.environ.get("ACRGUARD_TEMPLATES") or None)
    gates_dir = os.environ.get("ACRGUARD_GATES")
    gates = load_gates(gates_dir) if gates_dir else load_gates(DEFAULT_GATES_DIR, missing_ok=True)

    return build_policy(rules, env, gates, RegistryActions(publisher_from_environment()) if gates else None)


def build_policy(
    rules: Sequence[Rule],
    env: jinja2.Environment,
    gates: Sequence[Gate] = (),
    gate_actions: ActionsAdapter | None = None,
    today: date | None = None,
) -> Policy:
    """The assessment callables over loaded rules and templates (the CLI's `scan` uses the same)."""

    def rules_for(findings: list[Finding], inv: Inventory) -> list[Finding]:
        return apply_rules(findings, rules, ImageContext.from_inventory(inv), today or date.today())

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
    )
