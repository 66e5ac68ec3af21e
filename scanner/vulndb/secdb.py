"""Alpine secdb documents (secdb.alpinelinux.org `v3.19/main.json`, or the YAML of the alpine-secdb repository)
and their conversion to OSV records as osv.dev makes them.

A secdb document says, per release and repository, for each package: `secfixes: {fixed-version: [CVE ...]}`.
The same CVE appears under many releases and packages; osv.dev publishes ONE record per CVE, id `ALPINE-<CVE>`,
with one affected entry per (release, package, fixed version): range ECOSYSTEM introduced "0", fixed there. A
fixed version of `0` is Alpine's way to say "never affected in this release": it yields no affected entry.

Documents are first reduced to rows (`SecfixRow`), because merging happens in the database across documents
imported at different times (v3.10 today, v3.11 tomorrow); `build_record` turns all rows of one CVE into the record.

Wolfi (packages.wolfi.dev/os/security.json) and Chainguard (packages.cgr.dev/chainguard/security.json) publish the
same format without a release: one rolling distribution per document. They are told from Alpine's by their content
(`urlprefix`/`apkurl` host, else `reponame` when no `distroversion` is given; `apk_distribution`) and converted
whole by `convert_rolling`: one record per vulnerability id (`WOLFI-CVE-…`, `CHAINGUARD-GHSA-…`), ecosystem `Wolfi`
or `Chainguard`, one affected entry per (package, fixed version). Their ids are CVE and GHSA ids. A fixed version
of `0` is wolfictl's rendering of a false-positive determination ("this package was never affected"): as in
Alpine, it yields no affected entry, and an id listed only under `0` yields no record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scanner.vulndb.converted import Converted

NOT_AFFECTED = "0"
ID_PREFIX = "ALPINE-"
# "CVE-2019-1234", also as written by hand in secfixes: "CVE_2019-2426", "CVE 2018-16859", "CVE-2017-8073.patch",
# "CVE-2018-14468 (FrameRelay)", "CVE-2019-1 CVE-2019-2 XSA-254". Placeholders like "CVE-????-?????" do not match.
_CVE = re.compile(r"(?<![A-Za-z0-9])CVE[-_ ](\d{4})-(\d{4,})(?!\d)", re.IGNORECASE)
_RELEASE = re.compile(r"^v?(\d+\.\d+)$")


@dataclass(frozen=True)
class SecfixRow:
    package: str
    fixed: str
    cve: str


@dataclass
class SecdbDocument:
    release: str  # "v3.11", or "edge"
    repo: str  # "main", "community"
    rows: list[SecfixRow] = field(default_factory=list)
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)


def is_secdb(data: Any) -> bool:
    # An OSV record has an `id`; a secdb document has `packages` (a list, or null when a repo fixed nothing).
    return (
        isinstance(data, Mapping)
        and "id" not in data
        and "packages" in data
        and isinstance(data["packages"], list | None)
    )


def normalise_release(value: str) -> str | None:
    """`v3.11` and `3.11` → `v3.11` (osv.dev's `Alpine:v3.11`); `edge` stays; anything else is unknown."""
    value = value.strip()
    if value == "edge":
        return value
    match = _RELEASE.match(value)
    return f"v{match.group(1)}" if match else None


def cve_ids(entry: str) -> list[str]:
    """The CVE ids in one secfixes line, normalised to `CVE-YYYY-NNNN`, in order, without repeats."""
    seen: dict[str, None] = {}
    for year, number in _CVE.findall(entry):
        seen.setdefault(f"CVE-{year}-{number}", None)
    return list(seen)


def parse_secdb(data: Mapping[str, Any], *, origin: str, parent_name: str, stem: str) -> SecdbDocument:
    """Rows of one document; release from `distroversion` or else the directory (`v3.11/main.yaml`), repository
    from `reponame` or else the file name. A secfixes line without a CVE id is counted as skipped."""
    release = normalise_release(str(data.get("distroversion") or "")) or normalise_release(parent_name)
    if release is None:
        raise ValueError(f"{origin}: Alpine secdb without a release (no distroversion, not under a vX.Y directory)")
    repo = str(data.get("reponame") or stem)
    doc = SecdbDocument(release, repo)
    for index, item in enumerate(data.get("packages") or []):
        pkg = item.get("pkg") if isinstance(item, Mapping) else None
        name = pkg.get("name") if isinstance(pkg, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            doc.skipped += 1
            doc.warnings.append(f"{origin}: packages[{index}] has no pkg.name")
            continue
        secfixes = pkg.get("secfixes") if isinstance(pkg, Mapping) else None
        if not isinstance(secfixes, Mapping):
            continue  # no secfixes (or `secfixes:` left empty): nothing was fixed
        for version, entries in secfixes.items():
            fixed = str(version).strip()
            if isinstance(entries, str):
                entries = [entries]
            elif not isinstance(entries, list):
                continue  # `1.2-r0:` with nothing under it
            for entry in entries:
                ids = cve_ids(str(entry)) if entry is not None else []
                if not ids or not fixed:
                    doc.skipped += 1
                    doc.warnings.append(f"{origin}: {name} {fixed or '(no version)'}: no CVE id in {entry!r}")
                    continue
                doc.rows.extend(SecfixRow(name, fixed, cve) for cve in ids)
    return doc


@dataclass(frozen=True)
class ReleaseRow:
    """A row as stored: which release it came from, for the record's ecosystem."""

    release: str
    package: str
    fixed: str


def build_record(cve: str, rows: Iterable[ReleaseRow], modified: str) -> dict[str, Any] | None:
    """The `ALPINE-<cve>` record of all rows for `cve`, or None when no row makes anything affected."""
    seen: set[tuple[str, str, str]] = set()
    affected: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r.package, r.release, r.fixed)):
        key = (row.release, row.package, row.fixed)
        if row.fixed == NOT_AFFECTED or key in seen:
            continue
        seen.add(key)
        affected.append(
            {
                "package": {
                    "ecosystem": f"Alpine:{row.release}",
                    "name": row.package,
                    "purl": f"pkg:apk/alpine/{row.package}?arch=source",
                },
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": row.fixed}]}],
            }
        )
    if not affected:
        return None
    return {
        "id": ID_PREFIX + cve,
        "modified": modified,
        "aliases": [cve],
        "upstream": [cve],
        "details": f"{cve} as fixed in Alpine Linux packages, per the Alpine secdb.",
        "affected": affected,
        "references": [{"type": "ADVISORY", "url": f"https://security.alpinelinux.org/vuln/{cve}"}],
    }


# Rolling apk distributions publishing secdb documents: host of their package repository → OSV ecosystem.
ROLLING_HOSTS = {"wolfi.dev": "Wolfi", "cgr.dev": "Chainguard"}
ROLLING_REPOS = {"os": "Wolfi", "chainguard": "Chainguard"}
ROLLING_PREFIXES = {"Wolfi": "WOLFI-", "Chainguard": "CHAINGUARD-"}
_GHSA = re.compile(r"(?<![A-Za-z0-9])GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}(?![A-Za-z0-9])")
MAX_ROLLING_IDS = 500_000  # Wolfi's whole feed names ~40,000


def _host_distribution(url: Any) -> str | None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    host = (urlsplit(url).hostname or "").lower()
    for domain, name in ROLLING_HOSTS.items():
        if host == domain or host.endswith("." + domain):
            return name
    return None


def apk_distribution(data: Mapping[str, Any]) -> str | None:
    """`Wolfi` or `Chainguard` for their secdb documents; None for Alpine's (which name a `distroversion` and
    alpinelinux.org hosts) and anything else."""
    by_host = _host_distribution(data.get("urlprefix")) or _host_distribution(data.get("apkurl"))
    if by_host is not None:
        return by_host
    if data.get("distroversion") or data.get("urlprefix"):
        return None
    return ROLLING_REPOS.get(str(data.get("reponame") or ""))


def vulnerability_ids(entry: str) -> list[str]:
    """The CVE and GHSA ids in one secfixes line, in order, without repeats."""
    found = cve_ids(entry) + _GHSA.findall(entry)
    return list(dict.fromkeys(found))


def convert_rolling(data: Mapping[str, Any], distribution: str, *, origin: str, modified: str) -> Converted:
    """The records of a Wolfi or Chainguard secdb document (no release). `modified` is the document's date."""
    result = Converted("secdb")
    fixes: dict[str, dict[tuple[str, str], None]] = {}
    for index, item in enumerate(data.get("packages") or []):
        pkg = item.get("pkg") if isinstance(item, Mapping) else None
        name = pkg.get("name") if isinstance(pkg, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            result.skip(f"{origin}: packages[{index}] has no pkg.name")
            continue
        secfixes = pkg.get("secfixes") if isinstance(pkg, Mapping) else None
        if not isinstance(secfixes, Mapping):
            continue
        for version, entries in secfixes.items():
            fixed = str(version).strip()
            entries = [entries] if isinstance(entries, str) else entries
            if not isinstance(entries, list):
                continue
            for entry in entries:
                ids = vulnerability_ids(str(entry)) if entry is not None else []
                if not ids or not fixed:
                    result.skip(f"{origin}: {name} {fixed or '(no version)'}: no CVE or GHSA id in {entry!r}")
                    continue
                for vid in ids:
                    fixes.setdefault(vid, {})[(name.strip(), fixed)] = None
                if len(fixes) > MAX_ROLLING_IDS:
                    raise ValueError(f"{origin}: more than {MAX_ROLLING_IDS} vulnerability ids")
    prefix = ROLLING_PREFIXES[distribution]
    for vid in sorted(fixes):
        affected = [
            {
                "package": {"ecosystem": distribution, "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
            for package, fixed in sorted(fixes[vid])
            if fixed != NOT_AFFECTED
        ]
        if not affected:
            continue  # only false-positive determinations: no package was ever affected
        result.records.append(
            {
                "id": prefix + vid,
                "modified": modified,
                "aliases": [vid],
                "upstream": [vid],
                "details": f"{vid} as fixed in {distribution} packages, per the {distribution} security database.",
                "affected": affected,
                "references": [{"type": "ADVISORY", "url": f"https://images.chainguard.dev/security/{vid}"}],
            }
        )
    return result
