"""Is a package version affected by an OSV record? (pure; OSV schema 1.6 evaluation semantics)

A range is evaluated as the OSV specification describes: events sorted by version, `introduced`
opens an affected interval, `fixed` closes it (the fixed version is not affected), `last_affected`
closes it after that version; `limit` events bound the whole range from above. `versions` lists
enumerate affected versions exactly. GIT ranges are ignored: we match packages, not commits.
How names normalise, which releases apply and how versions order are the ecosystems' (scanner.ecosystems).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scanner.ecosystems import compare
from scanner.ecosystems.catalog import base_ecosystem, normalise_name, release_matches
from scanner.versions import VersionError

ZERO = "0"  # OSV: introduced "0" is before every version


@dataclass(frozen=True)
class RangeHit:
    """The package version lies in an affected range; `fixed` is the first fix after it, if any."""

    fixed: str
    last_affected: str


def _cmp(ecosystem: str, a: str, b: str) -> int:
    if a == b:
        return 0
    if a == ZERO:
        return -1
    if b == ZERO:
        return 1
    return compare(ecosystem, a, b)


def _version_key(ecosystem: str) -> Callable[[str], Any]:
    """A sort key ordering versions as the ecosystem does, with OSV's "0" first."""

    def order(a: str, b: str) -> int:
        return _cmp(ecosystem, a, b)

    return functools.cmp_to_key(order)


def _event(event: Mapping[str, Any]) -> tuple[str, str] | None:
    for kind in ("introduced", "fixed", "last_affected", "limit"):
        value = event.get(kind)
        if isinstance(value, str) and value:
            return kind, value
    return None


def evaluate_range(ecosystem: str, version: str, events: Sequence[Mapping[str, Any]]) -> RangeHit | None:
    parsed = [e for e in (_event(raw) for raw in events) if e is not None]
    limits = [v for kind, v in parsed if kind == "limit"]
    if limits and not any(_cmp(ecosystem, version, limit) < 0 for limit in limits):
        return None
    key = _version_key(ecosystem)
    ordered = sorted((e for e in parsed if e[0] != "limit"), key=lambda e: key(e[1]))
    affected = False
    for kind, value in ordered:
        order = _cmp(ecosystem, version, value)
        if kind == "introduced" and order >= 0:
            affected = True
        elif (kind == "fixed" and order >= 0) or (kind == "last_affected" and order > 0):
            affected = False
    if not affected:
        return None
    fixes = [v for kind, v in ordered if kind == "fixed" and _cmp(ecosystem, version, v) < 0]
    lasts = [v for kind, v in ordered if kind == "last_affected" and _cmp(ecosystem, version, v) <= 0]
    return RangeHit(fixed=fixes[0] if fixes else "", last_affected=lasts[0] if lasts else "")


@dataclass(frozen=True)
class Match:
    record: Mapping[str, Any]
    fixed: str
    last_affected: str
    ecosystem_specific: Mapping[str, Any]
    database_specific: Mapping[str, Any]


def match_record(record: Mapping[str, Any], ecosystem: str, name: str, version: str) -> Match | None:
    """The first affected entry of `record` for this package that covers `version`, or None."""
    if record.get("withdrawn"):
        return None
    key = normalise_name(ecosystem, name)
    for entry in _entries(record):
        package = entry.get("package") or {}
        advisory_eco = str(package.get("ecosystem", ""))
        if base_ecosystem(advisory_eco) != base_ecosystem(ecosystem):
            continue
        if normalise_name(advisory_eco, str(package.get("name", ""))) != key:
            continue
        if not release_matches(advisory_eco, ecosystem):
            continue
        hit = _entry_hit(entry, ecosystem, version)
        if hit is not None:
            return Match(
                record,
                hit.fixed,
                hit.last_affected,
                entry.get("ecosystem_specific") or {},
                entry.get("database_specific") or {},
            )
    return None


def _entries(record: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    affected = record.get("affected")
    return [e for e in affected if isinstance(e, Mapping)] if isinstance(affected, list) else []


def _entry_hit(entry: Mapping[str, Any], ecosystem: str, version: str) -> RangeHit | None:
    versions = entry.get("versions")
    if isinstance(versions, list) and version in versions:
        return RangeHit(fixed=_first_fix(entry, ecosystem, version), last_affected="")
    ranges = entry.get("ranges")
    if not isinstance(ranges, list):
        return None
    for rng in ranges:
        if not isinstance(rng, Mapping) or rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        events = rng.get("events")
        if not isinstance(events, list):
            continue
        try:
            hit = evaluate_range(ecosystem, version, events)
        except VersionError:
            return None  # an ecosystem we cannot order: never guess
        if hit is not None:
            return hit
    return None


def _first_fix(entry: Mapping[str, Any], ecosystem: str, version: str) -> str:
    """For a `versions` hit, the earliest fix any range names after the installed version."""
    fixes: list[str] = []
    for rng in entry.get("ranges") or []:
        for raw in rng.get("events", []) if isinstance(rng, Mapping) else []:
            event = _event(raw) if isinstance(raw, Mapping) else None
            if event and event[0] == "fixed":
                try:
                    if _cmp(ecosystem, version, event[1]) < 0:
                        fixes.append(event[1])
                except VersionError:
                    return ""
    return min(fixes, key=_version_key(ecosystem)) if fixes else ""
