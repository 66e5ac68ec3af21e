"""The Bicep templates under infra/ parsed with pycep (the parser checkov reads Bicep with), and what the
tests read from them: resources without their loop and condition wrappers, the identifiers and literals an
expression holds, module wiring, app settings and role assignments."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


@cache
def parser() -> BicepParser:
    # Building the grammar's tables takes seconds; lark's cache (cache=True) keeps them for the next run.
    return BicepParser(cache=True)


@cache
def template(relative: str) -> dict[str, Any]:
    """One file, e.g. `main.bicep` or `modules/roles.bicep`; a parse failure raises (checkov would skip it)."""
    parsed: dict[str, Any] = parser().parse(file_path=INFRA / relative)
    return parsed


def template_files() -> list[str]:
    return sorted(str(p.relative_to(INFRA)) for p in INFRA.rglob("*.bicep"))


@dataclass(frozen=True)
class Resource:
    file: str
    symbol: str
    type: str
    existing: bool
    body: dict[str, Any]  # name, scope, properties... without the loop and condition wrappers
    condition: Any  # the `if (...)` expression, None when unconditional
    loop: dict[str, Any] | None


def unwrap(config: dict[str, Any]) -> tuple[dict[str, Any], Any, dict[str, Any] | None]:
    """A resource's or module's body, its condition and its loop: pycep nests the body of `[for ...]` and
    `if (...)` one `config` deeper, beside `loop_type` and `condition`."""
    if "config" in config and set(config) <= {"loop_type", "condition", "config"}:
        return config["config"], config.get("condition"), config.get("loop_type")
    return config, None, None


def resources(relative: str) -> dict[str, Resource]:
    found: dict[str, Resource] = {}
    for symbol, raw in template(relative).get("resources", {}).items():
        body, condition, loop = unwrap(raw["config"])
        found[symbol] = Resource(relative, symbol, raw["type"], bool(raw.get("existing")), body, condition, loop)
    return found


def all_resources() -> Iterator[Resource]:
    for relative in template_files():
        yield from resources(relative).values()


def atoms(expression: Any) -> set[str]:
    """Every identifier and string literal in an expression (pycep writes both as plain strings)."""
    if isinstance(expression, str):
        return {expression}
    if isinstance(expression, dict):
        return set().union(*(atoms(v) for v in expression.values())) if expression else set()
    if isinstance(expression, list):
        return set().union(*(atoms(v) for v in expression)) if expression else set()
    return set()


def accessor(expression: Any) -> tuple[str, ...] | None:
    """`a.b.c` as ("a", "b", "c"); None for anything else."""
    if isinstance(expression, str):
        return (expression,)
    if isinstance(expression, dict) and expression.get("operator", {}).get("type") == "property_accessor":
        operands = expression["operator"]["operands"]
        first, rest = accessor(operands["operand_1"]), accessor(operands["operand_2"])
        if first is not None and rest is not None:
            return first + rest
    return None


def accessors(expression: Any) -> Iterator[tuple[str, ...]]:
    """Every property-accessor chain in an expression, outermost first."""
    if isinstance(expression, dict):
        chain = accessor(expression)
        if chain is not None and len(chain) > 1:
            yield chain
            return
        for value in expression.values():
            yield from accessors(value)
    elif isinstance(expression, list):
        for value in expression:
            yield from accessors(value)


@dataclass(frozen=True)
class ModuleCall:
    symbol: str
    path: str  # relative to infra/
    params: dict[str, Any]
    condition: Any
    loop: dict[str, Any] | None


def module_calls(relative: str = "main.bicep") -> dict[str, ModuleCall]:
    calls: dict[str, ModuleCall] = {}
    base = Path(relative).parent
    for symbol, raw in template(relative).get("modules", {}).items():
        body, condition, loop = unwrap(raw["config"])
        path = str(base / raw["detail"]["path"])
        calls[symbol] = ModuleCall(symbol, path, body.get("params", {}), condition, loop)
    return calls


def parameters(relative: str) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = template(relative).get("parameters", {})
    return params


def outputs(relative: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template(relative).get("outputs", {})
    return found


def name_values(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """An appSettings or env array ([{name, value}]) as a mapping."""
    return {entry["name"]: entry.get("value") for entry in entries}


@dataclass(frozen=True)
class RoleAssignment:
    file: str
    symbol: str
    role_id: str
    principal: str  # the parameter holding the principal id
    scope_type: str
    scope_name: Any
    condition: Any


def role_assignments() -> list[RoleAssignment]:
    found = []
    for relative in template_files():
        declared = resources(relative)
        for resource in declared.values():
            if resource.type != "Microsoft.Authorization/roleAssignments":
                continue
            properties = resource.body["properties"]
            role = properties["roleDefinitionId"]["function"]
            assert role["type"] == "subscription_resource_id", f"{relative}: {resource.symbol}: a built-in role by id"
            scope = declared[resource.body["scope"]]
            found.append(
                RoleAssignment(
                    relative,
                    resource.symbol,
                    role["parameters"]["resource_name_1"],
                    properties["principalId"],
                    scope.type,
                    scope.body.get("name"),
                    resource.condition,
                )
            )
    return found
