"""The dashboard's Gates page as data: the configured gates (their conditions, filters, actions and the
repositories they judge) and the verdicts the store kept of them, newest first, narrowed by the URL
(`gate`, `registry`, `repository`, `digest`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from scanner.policy.gates import Gate, When
from scanner.service.dashboard import text
from scanner.store.ports import Lookups

VERDICTS = 100  # verdicts a page lists


def describe_when(when: When) -> list[str]:
    """Each condition and filter a gate was given, as `key: value` lines (none: any finding fails it)."""
    lines = []
    for field in fields(when):
        value = getattr(when, field.name)
        if value is None or value is False:
            continue
        if field.name == "count_at_least":
            shown = f"{value.count} at least {value.severity}"
        elif isinstance(value, frozenset | tuple):
            shown = ", ".join(sorted(str(v) for v in value))
        elif value is True:
            shown = "yes"
        else:
            shown = str(value)
        lines.append(f"{field.name}: {shown}")
    return lines


def gates(configured: Sequence[Gate], store: Lookups, query: Mapping[str, str]) -> dict[str, Any]:
    filters = {name: text(query, name) for name in ("gate", "registry", "repository", "digest")}
    rows = [
        {
            "name": gate.name,
            "description": gate.description,
            "when": describe_when(gate.when),
            "actions": list(gate.actions),
            "repositories": list(gate.repositories) if gate.repositories is not None else [],
            "on_incomplete": gate.on_incomplete,
            "on_not_assessed": gate.on_not_assessed,
            "source": f"{gate.source}#{gate.index}" if gate.source else "",
        }
        for gate in configured
    ]
    verdicts = store.gate_verdicts(
        gate=filters["gate"] or None,
        registry=filters["registry"] or None,
        repository=filters["repository"] or None,
        digest=filters["digest"] or None,
        limit=VERDICTS,
    )
    return {"gates": rows, "verdicts": verdicts, "filters": filters, "shown": VERDICTS}
