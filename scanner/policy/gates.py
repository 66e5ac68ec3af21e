"""Gates: YAML policies that judge an image by its active findings and name the actions to take (pure).

A gate file (`policies/gates/*.yaml`, schema in policies/gates/README.md) lists gates. Each gate has
filters (`fix_status`, `packages`, `ignore_base_unfixed`) that narrow the active findings it looks at, and
conditions (`any_severity_at_least`, `patchable_severity_at_least`, `count_at_least`, `kev`, `epss_at_least`,
`risk_at_least`) of which any one met fails the gate; each reason names its condition and the worst finding
that met it. Validation is as strict as for disable rules (scanner/policy/rules.py): a gate that silently
never fails would let an image through that the policy meant to stop.

An image whose inventory is Incomplete (a detector failed or hit a bound, so packages may be missing) is
judged by each gate's `on_incomplete`: `fail` (the default: the gate fails, as for a vulnerable image),
`findings` (judged by the findings that were found, as if the inventory were whole) or `skip` (no verdict:
no action is taken, nor undone). A gate without the key gets the configured default
(`ACRGUARD_GATE_ON_INCOMPLETE`, passed to `load_gates`).

An image the vulnerability database could not assess (health NotAssessed: no advisories, or only a selection,
for its distribution and release, so no findings prove nothing) is judged the same way by each gate's
`on_not_assessed`, whose default is `ACRGUARD_GATE_ON_NOT_ASSESSED` (itself `fail` unless set).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scanner.assess.image_health import at_least
from scanner.model.errors import AcrguardError
from scanner.model.types import (
    FIX_STATUSES,
    INCOMPLETE_POLICIES,
    SEVERITY_ORDER,
    Finding,
    FixStatus,
    IncompletePolicy,
    Severity,
)
from scanner.policy.globs import name_matches, package_matches
from scanner.policy.image_context import ImageContext
from scanner.policy.yaml_checks import NAME, FieldChecks, kind, load_unique, policy_files, show

DEFAULT_GATES_DIR = Path("policies/gates")

Action = Literal["lock", "quarantine", "notify"]
ACTIONS: tuple[Action, ...] = ("lock", "quarantine", "notify")

_GATE_KEYS = ("name", "description", "when", "repositories", "actions", "on_incomplete", "on_not_assessed")
_CONDITION_KEYS = (
    "any_severity_at_least",
    "patchable_severity_at_least",
    "count_at_least",
    "kev",
    "epss_at_least",
    "risk_at_least",
)
_FILTER_KEYS = ("fix_status", "packages", "ignore_base_unfixed")
_WHEN_KEYS = (*_CONDITION_KEYS, *_FILTER_KEYS)
_COUNT_KEYS = ("severity", "count")


class GateError(AcrguardError):
    """A gate file that does not follow the schema, or a gate action that could not be carried out."""


_checks = FieldChecks(GateError)
_fail = _checks.fail
_globs = _checks.globs
_choice = _checks.choice
_no_unknown_keys = _checks.no_unknown_keys


@dataclass(frozen=True)
class CountAtLeast:
    severity: Severity
    count: int


@dataclass(frozen=True)
class When:
    """Criteria; `None` means "not given". No condition given: any finding left by the filters fails."""

    any_severity_at_least: Severity | None = None
    patchable_severity_at_least: Severity | None = None
    count_at_least: CountAtLeast | None = None
    kev: bool | None = None  # only ever True: any finding in CISA's KEV catalog
    epss_at_least: float | None = None  # 0..1; a finding without an EPSS score never meets it
    risk_at_least: float | None = None  # 0..100 (`Finding.risk`)
    fix_status: frozenset[FixStatus] | None = None
    packages: tuple[str, ...] | None = None  # case-folded globs on binary/source name, or purl globs
    # Leave out findings of the base image's layers that have no fix yet: neither a rebuild nor the image's
    # owner can remove them, so they would hold the image forever.
    ignore_base_unfixed: bool = False


@dataclass(frozen=True)
class Gate:
    name: str
    description: str
    when: When
    actions: tuple[Action, ...]
    repositories: tuple[str, ...] | None = None  # case-folded globs; None: every repository
    source: str = ""  # file it came from
    index: int = 0  # 1-based position in that file
    on_incomplete: IncompletePolicy = "fail"  # how an image with an Incomplete inventory is judged
    on_not_assessed: IncompletePolicy = "fail"  # how an image the database could not assess is judged

    def applies_to(self, image: ImageContext) -> bool:
        # An image with no repository (a local archive) is in no scoped gate's reach, not even "*".
        return self.repositories is None or name_matches(image.repository, self.repositories)


@dataclass(frozen=True)
class GateVerdict:
    gate: Gate
    failed: bool
    reasons: tuple[str, ...] = ()  # why it failed; empty when it passed


def evaluate(
    gates: Sequence[Gate],
    image: ImageContext,
    findings: Iterable[Finding],
    incomplete: str = "",
    not_assessed: str = "",
) -> list[GateVerdict]:
    """A verdict for each gate whose `repositories` scope covers the image, in gate order.

    Only active findings count: a finding a disable rule accepted must not lock an image. `incomplete` is
    why the image's inventory is Incomplete ("" when it is whole); each gate then follows its
    `on_incomplete` (a `skip` gate gives no verdict). `not_assessed` is why the image is NotAssessed ("" when
    it was assessed), and each gate follows its `on_not_assessed` the same way.
    """
    active = [f for f in findings if not f.disabled]
    verdicts = []
    for gate in gates:
        if not gate.applies_to(image):
            continue
        if (incomplete and gate.on_incomplete == "skip") or (not_assessed and gate.on_not_assessed == "skip"):
            continue
        verdict = _verdict(gate, active)
        if not_assessed and gate.on_not_assessed == "fail":
            verdict = GateVerdict(gate, True, (f"not assessed: {_reason(not_assessed)}", *verdict.reasons))
        if incomplete and gate.on_incomplete == "fail":
            verdict = GateVerdict(gate, True, (f"inventory incomplete: {_reason(incomplete)}", *verdict.reasons))
        verdicts.append(verdict)
    return verdicts


def _reason(why: str) -> str:
    # Reasons end up in quarantine details and events: one short line.
    text = " ".join(why.split()).removeprefix("inventory incomplete: ")
    return text if len(text) <= 200 else text[:199] + "…"


def _verdict(gate: Gate, active: Sequence[Finding]) -> GateVerdict:
    when = gate.when
    considered = [f for f in active if _passes_filters(when, f)]
    reasons: list[str] = []
    if when.any_severity_at_least is not None:
        hits = [f for f in considered if at_least(f.severity, when.any_severity_at_least)]
        if hits:
            reasons.append(f"{len(hits)} finding(s) at least {when.any_severity_at_least}: {_ids(hits)}")
    if when.patchable_severity_at_least is not None:
        hits = [f for f in considered if f.patchable and at_least(f.severity, when.patchable_severity_at_least)]
        if hits:
            reasons.append(
                f"{len(hits)} patchable finding(s) at least {when.patchable_severity_at_least}: {_ids(hits)}"
            )
    if when.count_at_least is not None:
        rule = when.count_at_least
        hits = [f for f in considered if at_least(f.severity, rule.severity)]
        if len(hits) >= rule.count:
            reasons.append(f"{len(hits)} finding(s) at least {rule.severity} (limit {rule.count})")
    reasons.extend(exploitation_reasons(when, considered))
    # `kev: false` is refused when loading; a When built in code with it has no KEV condition either.
    has_condition = any(getattr(when, k) is not None and getattr(when, k) is not False for k in _CONDITION_KEYS)
    if not has_condition and considered:
        reasons.append(f"{len(considered)} matching finding(s): {_ids(considered)}")
    return GateVerdict(gate, bool(reasons), tuple(reasons))


def exploitation_reasons(when: When, considered: Sequence[Finding]) -> list[str]:
    """The reasons of the `kev`, `epss_at_least` and `risk_at_least` conditions: each names the condition,
    the worst finding that met it and how many others did. Ties go to the smallest id, so the finding a
    reason names is the same from scan to scan."""
    reasons: list[str] = []
    if when.kev:
        hits = [f for f in considered if f.kev is not None]
        if hits:
            worst = min(hits, key=lambda f: (-f.risk, not (f.kev and f.kev.ransomware), f.id))
            kev = worst.kev
            assert kev is not None  # for mypy: every hit has one
            ransomware = ", used in ransomware" if kev.ransomware else ""
            reasons.append(
                f"kev: {_named(worst)} is in CISA KEV (added {kev.date_added}{ransomware}){_others(hits, worst)}"
            )
    if when.epss_at_least is not None:
        limit = when.epss_at_least
        hits = [f for f in considered if f.epss is not None and f.epss.score >= limit]
        if hits:
            worst = min(hits, key=lambda f: (-(f.epss.score if f.epss else 0.0), -f.risk, f.id))
            epss = worst.epss
            assert epss is not None  # for mypy: every hit has one
            reasons.append(
                f"epss_at_least {limit:g}: {_named(worst)} has EPSS {epss.score:g} (percentile {epss.percentile:g},"
                f" {epss.date}){_others(hits, worst)}"
            )
    if when.risk_at_least is not None:
        floor = when.risk_at_least
        hits = [f for f in considered if f.risk >= floor]
        if hits:
            worst = min(hits, key=lambda f: (-f.risk, f.id))
            reasons.append(f"risk_at_least {floor:g}: {_named(worst)} has risk {worst.risk:g}{_others(hits, worst)}")
    return reasons


def _named(f: Finding) -> str:
    """The finding's id (with its CVE when the id is another), package and version, as one short line: the
    package name comes from the image, so control characters go and the length is bounded."""
    cve = next((a for a in f.aliases if a.upper().startswith("CVE-")), "")
    ident = f.id if not cve or cve.upper() in f.id.upper() else f"{f.id} ({cve})"
    package = "".join(c for c in f"{f.package.name} {f.installed_version}" if c.isprintable())
    return _reason(f"{ident} in {package}")


def _others(hits: Sequence[Finding], worst: Finding) -> str:
    rest = [f for f in hits if f is not worst]
    return f" (+{len(rest)} more: {_ids(rest, limit=3)})" if rest else ""


def _passes_filters(when: When, f: Finding) -> bool:
    if when.fix_status is not None and f.fix_status not in when.fix_status:
        return False
    if when.ignore_base_unfixed and f.origin == "base" and f.fix_status != "fixed":
        return False
    return when.packages is None or package_matches(f.package, when.packages)


def _ids(findings: Sequence[Finding], limit: int = 5) -> str:
    # Reasons end up in quarantine details and events: keep them short and stable.
    ids = sorted({f.id for f in findings})
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


# --------------------------------------------------------------------------------------------------
# loading


@dataclass(frozen=True)
class Defaults:
    """The policies of the gates that do not set their own."""

    on_incomplete: IncompletePolicy = "fail"
    on_not_assessed: IncompletePolicy = "fail"


def load_gates(
    directory: str | Path = DEFAULT_GATES_DIR,
    *,
    missing_ok: bool = False,
    on_incomplete: IncompletePolicy = "fail",
    on_not_assessed: IncompletePolicy = "fail",
) -> list[Gate]:
    """Gates from `*.yaml` / `*.yml` files directly in `directory`, files in name order; names unique.
    `on_incomplete` and `on_not_assessed` are the policies of the gates that do not set them."""
    files = policy_files(directory, missing_ok=missing_ok, what="gates", error=GateError)
    defaults = Defaults(on_incomplete, on_not_assessed)
    return load_unique(files, lambda path: load_gate_file(path, defaults), "gate", GateError)


def load_gate_file(path: str | Path, defaults: Defaults = Defaults()) -> list[Gate]:
    """The gates of one file; `defaults` for the policies a gate leaves out."""
    path = Path(path)
    where = str(path)
    raw_gates = _checks.entries(path, "gates", missing="missing (expected a list of gates)")
    return [_parse_gate(f"{where}: gate {i}", raw, where, i, defaults) for i, raw in enumerate(raw_gates, start=1)]


def _parse_gate(where: str, raw: object, source: str, index: int, defaults: Defaults) -> Gate:
    if not isinstance(raw, dict):
        raise GateError(f"{where}: expected a mapping, got {kind(raw)}")
    name = raw.get("name")
    if isinstance(name, str) and NAME.fullmatch(name):
        where = f"{where} ('{name}')"
    _no_unknown_keys(where, raw, _GATE_KEYS, "key in a gate")
    for key in ("name", "description", "when", "actions"):
        if key not in raw:
            _fail(where, key, "missing")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        _fail(where, "name", f"{show(name)} is not a name (letters, digits, '.', '_', '-'; at most 100)")
    description = raw["description"]
    if not isinstance(description, str) or not description.strip():
        _fail(where, "description", f"{show(description)} is not a non-empty string: say what the gate is for")
    repositories = None
    if "repositories" in raw:
        repositories = _globs(where, "repositories", raw["repositories"])
    on_incomplete, on_not_assessed = defaults.on_incomplete, defaults.on_not_assessed
    if "on_incomplete" in raw:
        on_incomplete = _choice(where, "on_incomplete", raw["on_incomplete"], INCOMPLETE_POLICIES)
    if "on_not_assessed" in raw:
        on_not_assessed = _choice(where, "on_not_assessed", raw["on_not_assessed"], INCOMPLETE_POLICIES)
    return Gate(
        name=name,
        description=description.strip(),
        when=_parse_when(where, raw["when"]),
        actions=_parse_actions(where, raw["actions"]),
        repositories=repositories,
        source=source,
        index=index,
        on_incomplete=on_incomplete,
        on_not_assessed=on_not_assessed,
    )


def _parse_when(where: str, raw: object) -> When:
    if not isinstance(raw, dict):
        _fail(where, "when", f"expected a mapping of criteria, got {kind(raw)}")
    _no_unknown_keys(where, raw, _WHEN_KEYS, "criterion in 'when'")
    if not raw:
        _fail(where, "when", f"needs at least one criterion: {', '.join(_WHEN_KEYS)}")
    fields: dict[str, Any] = {}
    for key in ("any_severity_at_least", "patchable_severity_at_least"):
        if key in raw:
            fields[key] = _choice(where, key, raw[key], SEVERITY_ORDER)
    if "count_at_least" in raw:
        fields["count_at_least"] = _parse_count(where, raw["count_at_least"])
    if "fix_status" in raw:
        fields["fix_status"] = _checks.choice_set(where, "fix_status", raw["fix_status"], FIX_STATUSES)
    if "packages" in raw:
        fields["packages"] = _globs(where, "packages", raw["packages"])
    if "kev" in raw:
        if raw["kev"] is not True:
            _fail(where, "kev", f"{show(raw['kev'])} is not true (leave the key out to not judge by KEV)")
        fields["kev"] = True
    if "epss_at_least" in raw:
        fields["epss_at_least"] = _number(where, "epss_at_least", raw["epss_at_least"], 1.0)
    if "risk_at_least" in raw:
        fields["risk_at_least"] = _number(where, "risk_at_least", raw["risk_at_least"], 100.0)
    if "ignore_base_unfixed" in raw:
        if not isinstance(raw["ignore_base_unfixed"], bool):
            _fail(where, "ignore_base_unfixed", f"{show(raw['ignore_base_unfixed'])} is not true or false")
        fields["ignore_base_unfixed"] = raw["ignore_base_unfixed"]
    return When(**fields)


def _number(where: str, key: str, raw: object, top: float) -> float:
    # A bool is an int to Python; `true` here is a typo, not 1.
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= top:
        _fail(where, key, f"{show(raw)} is not a number from 0 to {top:g}")
    return float(raw)


def _parse_count(where: str, raw: object) -> CountAtLeast:
    key = "count_at_least"
    if not isinstance(raw, dict):
        _fail(where, key, f"expected a mapping with 'severity' and 'count', got {kind(raw)}")
    _no_unknown_keys(where, raw, _COUNT_KEYS, "key in 'count_at_least'")
    for sub in _COUNT_KEYS:
        if sub not in raw:
            _fail(where, f"{key}.{sub}", "missing")
    count = raw["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        _fail(where, f"{key}.count", f"{show(count)} is not a whole number of at least 1")
    return CountAtLeast(_choice(where, f"{key}.severity", raw["severity"], SEVERITY_ORDER), count)


def _parse_actions(where: str, raw: object) -> tuple[Action, ...]:
    # An empty list is refused: a gate with no action is a typo, and "report only" is spelled `notify`.
    if not isinstance(raw, list) or not raw:
        _fail(where, "actions", f"expected a non-empty list of {', '.join(ACTIONS)}, got {kind(raw)}")
    out: list[Action] = []
    for item in raw:
        action = _choice(where, "actions", item, ACTIONS)
        if action in out:
            _fail(where, "actions", f"'{action}' is listed twice")
        out.append(action)
    return tuple(out)
