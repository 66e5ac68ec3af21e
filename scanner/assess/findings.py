"""From an inventory and a vulnerability database to findings (pure given the database).

Distribution packages are looked up by the names and versions their advisories use: Debian and
Ubuntu by source package and source version, Alpine by origin, RPM distributions by binary name (and
by source RPM name where a feed names those). Language packages that the OS package manager installed
are assessed only through the distribution's advisory, never against upstream language advisories:
their files are the distribution's patched copies.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from scanner.assess.matching import Match, match_record
from scanner.assess.risk import with_risk
from scanner.assess.severity import assess
from scanner.ecosystems import sort_key
from scanner.ecosystems.catalog import advisory_names, advisory_prefixes, category_of_kind
from scanner.model.severity_order import DEFAULT_SEVERITY_ORDER
from scanner.model.types import BaseImage, Category, Coverage, Finding, FixStatus, Package
from scanner.vulndb.interface import VulnDatabase

# The ids of the distributions' own advisories, and of the language ecosystems' own databases (PYSEC, GO…).
_DISTRO_PREFIXES = advisory_prefixes("os")
_LANGUAGE_DB_PREFIXES = advisory_prefixes("language")
# The won't-fix states feeds write, compared after `_fix_word` folds case, `_`/`-` and Debian's angle brackets:
# the Debian security tracker's `<end-of-life>` and `<ignored>`; Red Hat's "Will not fix"; Trivy's documented
# fix statuses `will_not_fix` and `end_of_life`; `wont_fix`/`wont-fix`/"won't fix" as scanners' exports spell
# it. Deferred or postponed fixes and "not affected" are not won't-fix states and stay out.
_WONT_FIX_WORDS = frozenset({"will not fix", "wont fix", "end of life", "ignored"})
MAX_REFERENCES = 10


def category_of(package: Package) -> Category:
    return category_of_kind(package.kind)


def lookup_keys(package: Package) -> list[tuple[str, str]]:
    """(name, version) pairs to look the package up by, in order of preference: as its kind's advisories
    name packages."""
    names = advisory_names(package.kind)
    if names == "source":
        return [(package.source_name or package.name, package.source_version or package.version)]
    if names == "name+source" and package.source_name and package.source_name != package.name:
        return [(package.name, package.version), (package.source_name, package.version)]
    return [(package.name, package.version)]


# An image's findings (with their origin) and the database's coverage of its ecosystems: what depends only on
# its packages and its base image.
ImageMatch = tuple[tuple[Finding, ...], tuple[Coverage, ...]]


class MatchMemo:
    """The findings of each package (before exploitation signals, origin and rules), for one database and
    severity order, shared by the assessments of one rescan: images built on one base carry equal packages
    (the same name, version and layer), and a package's findings depend on nothing else, so each is matched
    once per rescan. Bounded: when full it starts again."""

    def __init__(self, db: VulnDatabase, severity_order: tuple[str, ...], max_packages: int = 100_000) -> None:
        self.db = db
        self.severity_order = severity_order
        self.max_packages = max_packages
        self.findings: dict[Package, tuple[Finding, ...]] = {}
        self.hits = 0
        self.max_images = 10_000
        self._images: dict[tuple[int, BaseImage | None], tuple[tuple[Package, ...], ImageMatch]] = {}

    def serves(self, db: VulnDatabase, severity_order: tuple[str, ...]) -> bool:
        return db is self.db and severity_order == self.severity_order

    def put(self, package: Package, findings: tuple[Finding, ...]) -> None:
        if len(self.findings) >= self.max_packages:
            self.findings.clear()
        self.findings[package] = findings

    # Whole images: inventories read with one stored package list share one tuple of packages
    # (`store.inventory_rows`, `model.codec.InventoryDecoder`); what an assessment derived from that very tuple
    # and base is kept with it. Keyed by the tuple's identity and held with it, so a key never outlives its tuple.
    def for_packages(self, packages: tuple[Package, ...], base: BaseImage | None) -> ImageMatch | None:
        found = self._images.get((id(packages), base))
        return found[1] if found is not None and found[0] is packages else None

    def put_for_packages(self, packages: tuple[Package, ...], base: BaseImage | None, value: ImageMatch) -> None:
        if len(self._images) >= self.max_images:
            self._images.clear()
        self._images[(id(packages), base)] = (packages, value)


def find_vulnerabilities(
    packages: Iterable[Package],
    db: VulnDatabase,
    severity_order: tuple[str, ...] = DEFAULT_SEVERITY_ORDER,
    memo: MatchMemo | None = None,
) -> list[Finding]:
    # Matching allocates tens of thousands of short-lived dicts and tuples next to the database's large
    # record cache; the cyclic collector would walk that cache again and again (measured: ~40% of the
    # time), and matching makes no reference cycles for it to find.
    paused = gc.isenabled()
    gc.disable()
    try:
        usable = memo if memo is not None and memo.serves(db, severity_order) else None
        return _find(packages, db, severity_order, usable)
    finally:
        if paused:
            gc.enable()


def _find(
    packages: Iterable[Package], db: VulnDatabase, severity_order: tuple[str, ...], memo: MatchMemo | None
) -> list[Finding]:
    findings: list[Finding] = []
    packages = list(packages)
    known = memo.findings if memo is not None else {}
    db.prefetch([(p.ecosystem, n) for p in packages if p.ecosystem and p not in known for n, _ in lookup_keys(p)])
    for package in packages:
        if not package.ecosystem or not package.version:
            continue
        category = category_of(package)
        if category == "language" and package.os_owned:
            continue
        if memo is not None and package in known:
            memo.hits += 1
            findings.extend(known[package])
            continue
        own = _package_findings(package, category, db, severity_order)
        if memo is not None:
            memo.put(package, tuple(own))
        findings.extend(own)
    # The risk score reads the exploitation signals: it is set once they are.
    return with_risk(with_exploitation(findings, db))


def _package_findings(
    package: Package, category: Category, db: VulnDatabase, severity_order: tuple[str, ...]
) -> list[Finding]:
    matches: list[Match] = []
    seen: set[str] = set()
    for name, version in lookup_keys(package):
        for record in db.lookup(package.ecosystem, name):
            rid = str(record.get("id", ""))
            if rid in seen:
                continue
            match = match_record(record, package.ecosystem, name, version)
            if match is not None:
                seen.add(rid)
                matches.append(match)
    return [_finding(package, category, group, db, severity_order) for group in _alias_groups(matches)]


def with_exploitation(findings: list[Finding], db: VulnDatabase) -> list[Finding]:
    """Each finding with the KEV entry of any of its CVE ids and the highest EPSS score among them (one batched
    lookup for the whole scan)."""
    ids = [finding.cve_ids for finding in findings]  # a property: computed once per finding
    signals = db.exploitation({cve for cves in ids for cve in cves})
    if not signals:
        return findings
    enriched: list[Finding] = []
    for finding, cves in zip(findings, ids, strict=True):
        found = [signals[cve] for cve in cves if cve in signals]
        if not found:
            enriched.append(finding)
            continue
        kev = min((k for k, _ in found if k is not None), key=lambda k: k.date_added, default=None)
        epss = max((e for _, e in found if e is not None), key=lambda e: e.score, default=None)
        enriched.append(replace(finding, kev=kev, epss=epss))
    return enriched


def _ids(record: Mapping[str, Any]) -> set[str]:
    """The record's id, aliases and `upstream` ids: distribution records such as DEBIAN-CVE-… name the
    CVE they track as upstream; for one package they are the same vulnerability."""
    others = [*(record.get("aliases") or []), *(record.get("upstream") or [])]
    return {str(record.get("id", ""))} | {str(a) for a in others if isinstance(a, str)}


def _related_cves(record: Mapping[str, Any]) -> set[str]:
    """The CVE ids in a distribution advisory's `related` list. AlmaLinux errata name the CVEs they fix
    only there (ALSA-2022:6157 relates CVE-2022-32206, -32207 and -32208), so they are the finding's
    CVE ids.

    OSV's `related` is weaker than `aliases` ("closely related", not "the same"). Language databases use
    it for other vulnerabilities (GO-2023-2102, CVE-2023-39325, relates HTTP/2 Rapid Reset's generic
    CVE-2023-44487), so only distribution advisories' are read. And one erratum fixes several CVEs that
    other errata fix again: grouping by them would chain distinct errata of a package into one finding
    with the earliest fix. So they name the finding and find CVE records for its severity, but never
    merge matches (`_ids` leaves them out)."""
    if not str(record.get("id", "")).startswith(_DISTRO_PREFIXES):
        return set()
    return {r for r in record.get("related") or () if isinstance(r, str) and r.startswith("CVE-")}


def _alias_groups(matches: list[Match]) -> list[list[Match]]:
    """Matches that name the same vulnerability (shared id or alias), each group once."""
    groups: list[tuple[set[str], list[Match]]] = []
    for match in matches:
        ids = _ids(match.record)
        joined = [g for g in groups if g[0] & ids]
        merged_ids, merged = set(ids), [match]
        for g in joined:
            merged_ids |= g[0]
            merged = g[1] + merged
            groups.remove(g)
        groups.append((merged_ids, merged))
    return [sorted(g[1], key=lambda m: str(m.record.get("id", ""))) for g in groups]


def _rank(record_id: str, category: Category) -> int:
    if category == "os" and record_id.startswith(_DISTRO_PREFIXES):
        return 0
    if record_id.startswith("GHSA-"):
        return 1
    if record_id.startswith(_LANGUAGE_DB_PREFIXES):
        return 2
    if record_id.startswith("CVE-"):
        return 3
    return 4


def _fix_word(value: str) -> str:
    """`<End_of-Life>` -> `end of life`, `won't fix` -> `wont fix`: one spelling per state."""
    folded = value.strip().strip("<>").lower().replace("'", "").replace("_", " ").replace("-", " ")
    return " ".join(folded.split())


def _wont_fix(match: Match) -> bool:
    for holder in (match.ecosystem_specific, match.database_specific):
        for key in ("fix_status", "status", "fix_state", "resolution"):
            value = holder.get(key) if isinstance(holder, Mapping) else None
            if isinstance(value, str) and _fix_word(value) in _WONT_FIX_WORDS:
                return True
    return False


def _finding(
    package: Package, category: Category, group: list[Match], db: VulnDatabase, severity_order: tuple[str, ...]
) -> Finding:
    preferred = min(group, key=lambda m: (_rank(str(m.record.get("id", "")), category), str(m.record.get("id"))))
    record = preferred.record
    all_ids: set[str] = set()
    for match in group:
        all_ids |= _ids(match.record) | _related_cves(match.record)
    rid = str(record.get("id", ""))
    fixed = preferred.fixed or _earliest_fix(package.ecosystem, [m.fixed for m in group if m.fixed])
    status: FixStatus = "fixed" if fixed else ("wont_fix" if any(_wont_fix(m) for m in group) else "not_fixed")
    others = [m.record for m in group if m is not preferred]
    severity, source, cvss = assess(
        record,
        preferred.ecosystem_specific,
        preferred.database_specific,
        _alias_records(others, sorted(i for i in all_ids if i.startswith("CVE-")), db),
        severity_order,
    )
    return Finding(
        id=rid,
        aliases=tuple(sorted(all_ids - {rid, ""})),
        package=package,
        # What is installed, even where matching compared another version: a Debian binNMU (binary
        # 2.0.5-1+b1, source 2.0.5-1) is matched by its source version against Debian's advisories.
        installed_version=package.version,
        fixed_version=fixed,
        fix_status=status,
        severity=severity,
        severity_source=source,
        cvss=cvss,
        category=category,
        summary=_summary(record),
        references=_references(group),
        published=str(record.get("published", "")),
        modified=str(record.get("modified", "")),
    )


def _alias_records(others: list[Mapping[str, Any]], cves: list[str], db: VulnDatabase) -> Iterable[Mapping[str, Any]]:
    """Other records of the same vulnerability, then (lazily) any record the database holds for its CVEs."""
    yield from others
    for cve in cves:
        yield from db.by_id(cve)


def _earliest_fix(ecosystem: str, fixes: list[str]) -> str:
    if not fixes:
        return ""
    return min(fixes, key=sort_key(ecosystem))


def _summary(record: Mapping[str, Any]) -> str:
    summary = record.get("summary")
    if isinstance(summary, str) and summary.strip():
        return summary.strip()
    details = record.get("details")
    if isinstance(details, str) and details.strip():
        return details.strip().splitlines()[0][:300]
    return ""


def _references(group: list[Match]) -> tuple[str, ...]:
    urls: list[str] = []
    for match in group:
        for ref in match.record.get("references") or []:
            url = ref.get("url") if isinstance(ref, Mapping) else None
            if isinstance(url, str) and url not in urls:
                urls.append(url)
    return tuple(urls[:MAX_REFERENCES])
