"""Disable rules: YAML files that mark findings as accepted, each with a justification and an expiry.

The schema is documented in policies/README.md. Validation is strict on purpose: a typo in a key or a
value must fail loudly, since a rule that silently matches nothing (or everything) is worse than none.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

from scanner.model.errors import AcrguardError
from scanner.model.types import FIX_STATUSES, SEVERITY_ORDER, Category, Finding, FixStatus, Severity
from scanner.policy.globs import name_matches, package_matches
from scanner.policy.image_context import ImageContext
from scanner.policy.yaml_checks import NAME, FieldChecks, kind, load_unique, policy_files, show

DEFAULT_RULES_DIR = Path("policies/rules")

# Rank for `severity_at_most`. Unknown ranks above Critical: an unscored vulnerability may be anything,
# so "at most Low" must not silence it; only `severity_at_most: Unknown` (any severity) reaches it.
SEVERITY_RANK: dict[Severity, int] = {"Low": 0, "Medium": 1, "High": 2, "Critical": 3, "Unknown": 4}
CATEGORIES: tuple[Category, ...] = ("os", "language")

_RULE_KEYS = ("name", "justification", "expires", "match")
_MATCH_KEYS = (
    "ids",
    "packages",
    "category",
    "severity_at_most",
    "cvss_below",
    "patchable",
    "fix_status",
    "image_digests",
    "repositories",
    "registries",
    "os",
)
_OS_KEYS = ("id", "version")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# OCI digest grammar; sha256/sha512 also checked for length, the usual typo.
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_DIGEST_LENGTHS = {"sha256": 64, "sha512": 128}


class RuleError(AcrguardError):
    """A rule file that cannot be read or does not follow the schema; names the file and the field."""


_checks = FieldChecks(RuleError)
_fail = _checks.fail
_strings = _checks.strings
_globs = _checks.globs
_choice = _checks.choice
_no_unknown_keys = _checks.no_unknown_keys


@dataclass(frozen=True)
class OsMatch:
    id: str = ""  # case-folded
    version: str = ""  # a prefix on version components: "12" matches "12" and "12.5", not "120"

    def matches(self, image: ImageContext) -> bool:
        os = image.os
        if os is None:
            return False
        if self.id and os.id.casefold() != self.id:
            return False
        return not self.version or os.version == self.version or os.version.startswith(self.version + ".")


@dataclass(frozen=True)
class Match:
    """Criteria of a rule; `None` means "not given". Every given criterion must hold."""

    ids: frozenset[str] | None = None  # case-folded
    packages: tuple[str, ...] | None = None  # case-folded globs
    category: Category | None = None
    severity_at_most: Severity | None = None
    cvss_below: float | None = None
    patchable: bool | None = None
    fix_status: frozenset[FixStatus] | None = None
    image_digests: frozenset[str] | None = None  # lower case
    repositories: tuple[str, ...] | None = None  # case-folded globs
    registries: tuple[str, ...] | None = None  # case-folded globs
    os: OsMatch | None = None

    def matches(self, finding: Finding, image: ImageContext) -> bool:
        return all(check(self, finding, image) for check in _CHECKS)

    def applies_to(self, image: ImageContext) -> bool:
        """The image criteria alone (digests, repositories, registries, os): whether the rule is about this image."""
        return all(check(self, _NO_FINDING, image) for check in _IMAGE_CHECKS)


def _ids(m: Match, f: Finding, _: ImageContext) -> bool:
    return m.ids is None or any(i.casefold() in m.ids for i in (f.id, *f.aliases))


def _packages(m: Match, f: Finding, _: ImageContext) -> bool:
    return m.packages is None or package_matches(f.package, m.packages)


def _category(m: Match, f: Finding, _: ImageContext) -> bool:
    return m.category is None or f.category == m.category


def _severity(m: Match, f: Finding, _: ImageContext) -> bool:
    return m.severity_at_most is None or SEVERITY_RANK[f.severity] <= SEVERITY_RANK[m.severity_at_most]


def _cvss(m: Match, f: Finding, _: ImageContext) -> bool:
    # No score: no match. A rule about scores cannot vouch for a vulnerability nobody has scored.
    return m.cvss_below is None or (f.cvss is not None and f.cvss.score < m.cvss_below)


def _patchable(m: Match, f: Finding, _: ImageContext) -> bool:
    return m.patchable is None or f.patchable == m.patchable


def _fix_status(m: Match, f: Finding, _: ImageContext) -> bool:
    return m.fix_status is None or f.fix_status in m.fix_status


def _digests(m: Match, _: Finding, image: ImageContext) -> bool:
    return m.image_digests is None or image.digest.lower() in m.image_digests


def _repositories(m: Match, _: Finding, image: ImageContext) -> bool:
    # An image with no repository (a local archive) matches no repository glob, not even "*".
    return m.repositories is None or name_matches(image.repository, m.repositories)


def _registries(m: Match, _: Finding, image: ImageContext) -> bool:
    return m.registries is None or name_matches(image.registry, m.registries)


def _os(m: Match, _: Finding, image: ImageContext) -> bool:
    return m.os is None or m.os.matches(image)


_CHECKS: tuple[Callable[[Match, Finding, ImageContext], bool], ...] = (
    _ids,
    _packages,
    _category,
    _severity,
    _cvss,
    _patchable,
    _fix_status,
    _digests,
    _repositories,
    _registries,
    _os,
)


_IMAGE_CHECKS: tuple[Callable[[Match, Finding, ImageContext], bool], ...] = (_digests, _repositories, _registries, _os)
_NO_FINDING = cast(Finding, None)  # the image checks never read the finding


@dataclass(frozen=True)
class Rule:
    name: str
    justification: str
    match: Match
    expires: date | None = None  # the last day the rule applies
    source: str = ""  # file it came from
    index: int = 0  # 1-based position in that file

    def active(self, today: date) -> bool:
        # Inclusive: a rule that expires on 2025-06-30 still applies on that day, and stops on 1 July.
        return self.expires is None or today <= self.expires

    def matches(self, finding: Finding, image: ImageContext) -> bool:
        return self.match.matches(finding, image)


def apply_rules(
    findings: Iterable[Finding], rules: Sequence[Rule], image: ImageContext, today: date | None = None
) -> list[Finding]:
    """Disable each finding the first active rule (file-name then in-file order) matches.

    A finding already disabled keeps its `disabled_by`.
    """
    day = today or date.today()
    active = [r for r in rules if r.active(day)]
    out: list[Finding] = []
    for finding in findings:
        if not finding.disabled:
            rule = next((r for r in active if r.matches(finding, image)), None)
            if rule is not None:
                finding = dataclasses.replace(finding, disabled=True, disabled_by=rule.name)
        out.append(finding)
    return out


def expired_rules(rules: Iterable[Rule], today: date | None = None) -> list[Rule]:
    """Rules past their expiry (to warn about: they no longer disable anything)."""
    day = today or date.today()
    return [r for r in rules if not r.active(day)]


def load_rules(directory: str | Path = DEFAULT_RULES_DIR, *, missing_ok: bool = False) -> list[Rule]:
    """Rules from `*.yaml` and `*.yml` files directly in `directory`, files in name order."""
    files = policy_files(directory, missing_ok=missing_ok, what="rules", error=RuleError)
    return load_unique(files, load_rule_file, "rule", RuleError)


def load_rule_file(path: str | Path) -> list[Rule]:
    path = Path(path)
    raw_rules = _checks.entries(path, "rules", not_a_list="expected a list of rules")
    return [_parse_rule(str(path), i, raw) for i, raw in enumerate(raw_rules, start=1)]


def parse_rule(raw: object, source: str, index: int = 1) -> Rule:
    """One rule as a mapping in the file schema (from YAML or JSON), checked as strictly as a file's."""
    return _parse_rule(source, index, raw)


def _parse_rule(source: str, index: int, raw: object) -> Rule:
    where = f"{source}: rule {index}"
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: expected a mapping, got {kind(raw)}")
    if "name" not in raw:
        _fail(where, "name", "missing")
    name = raw["name"]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        _fail(
            where,
            "name",
            f"{show(name)} must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    where = f"{where} ('{name}')"
    _no_unknown_keys(where, raw, _RULE_KEYS, "key")
    justification = raw.get("justification")
    if not isinstance(justification, str) or not justification.strip():
        _fail(where, "justification", "required: a non-empty text saying why these findings are accepted")
    expires = _parse_expires(where, raw["expires"]) if "expires" in raw else None
    if "match" not in raw:
        _fail(where, "match", f"missing: give at least one of {', '.join(_MATCH_KEYS)}")
    match = _parse_match(where, raw["match"])
    return Rule(name, " ".join(justification.split()), match, expires, source, index)


def _parse_expires(where: str, value: object) -> date:
    if isinstance(value, datetime):
        _fail(where, "expires", f"{show(value)} has a time; write a date, YYYY-MM-DD")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    _fail(where, "expires", f"{show(value)} is not a date (YYYY-MM-DD)")


def _parse_match(where: str, raw: object) -> Match:
    if not isinstance(raw, dict):
        _fail(where, "match", f"expected a mapping of criteria, got {kind(raw)}")
    _no_unknown_keys(where, raw, _MATCH_KEYS, "criterion in 'match'")
    if not raw:
        _fail(where, "match", f"needs at least one criterion: {', '.join(_MATCH_KEYS)}")
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        fields[key] = _PARSERS[key](where, key, value)
    return Match(**fields)


def _p_ids(where: str, key: str, value: object) -> frozenset[str]:
    return frozenset(s.casefold() for s in _strings(where, key, value))


def _p_category(where: str, key: str, value: object) -> Category:
    return _choice(where, key, value, CATEGORIES)


def _p_severity(where: str, key: str, value: object) -> Severity:
    return _choice(where, key, value, SEVERITY_ORDER)


def _p_cvss(where: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10:
        _fail(where, key, f"{show(value)} is not a number above 0 and at most 10")
    return float(value)


def _p_patchable(where: str, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        _fail(where, key, f"{show(value)} is not true or false")
    return value


def _p_fix_status(where: str, key: str, value: object) -> frozenset[FixStatus]:
    return _checks.choice_set(where, key, value, FIX_STATUSES)


def _p_digests(where: str, key: str, value: object) -> frozenset[str]:
    digests = [s.lower() for s in _strings(where, key, value)]
    for digest in digests:
        algorithm, _, encoded = digest.partition(":")
        length = _DIGEST_LENGTHS.get(algorithm)
        if not _DIGEST.fullmatch(digest) or (length is not None and len(encoded) != length):
            _fail(where, key, f"'{digest}' is not an image digest (sha256: and 64 hex digits)")
    return frozenset(digests)


def _p_os(where: str, key: str, value: object) -> OsMatch:
    if not isinstance(value, dict) or not value:
        _fail(where, key, f"expected a mapping with 'id' and/or 'version', got {kind(value)}")
    _no_unknown_keys(where, value, _OS_KEYS, "key in 'os'")
    ident = value.get("id", "")
    if not isinstance(ident, str) or ("id" in value and not ident.strip()):
        _fail(where, "os.id", f"{show(ident)} is not an os-release ID such as debian, alpine, rhel")
    version = value.get("version", "")
    if isinstance(version, float):
        # YAML reads 3.10 as the number 3.1: refuse rather than match the wrong release.
        _fail(where, "os.version", f"{show(version)} is a number; quote it, e.g. version: '3.10'")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or ("version" in value and not version.strip()):
        _fail(where, "os.version", f"{show(version)} is not a version such as '12' or '3.19'")
    return OsMatch(ident.strip().casefold(), version.strip())


_PARSERS: dict[str, Callable[[str, str, object], Any]] = {
    "ids": _p_ids,
    "packages": _globs,
    "category": _p_category,
    "severity_at_most": _p_severity,
    "cvss_below": _p_cvss,
    "patchable": _p_patchable,
    "fix_status": _p_fix_status,
    "image_digests": _p_digests,
    "repositories": _globs,
    "registries": _globs,
    "os": _p_os,
}
