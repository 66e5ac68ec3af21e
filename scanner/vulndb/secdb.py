"""Alpine secdb documents (secdb.alpinelinux.org `v3.19/main.json`, or the YAML of the alpine-secdb repository)
and their conversion to OSV records as osv.dev makes them.

A secdb document says, per release and repository, for each package: `secfixes: {fixed-version: [CVE ...]}`.
The same CVE appears under many releases and packages; osv.dev publishes ONE record per CVE, id `ALPINE-<CVE>`,
with one affected entry per (release, package, fixed version): range ECOSYSTEM introduced "0", fixed there. A
fixed version of `0` is Alpine's way to say "never affected in this release": it yields no affected entry.

Documents are first reduced to rows (`SecfixRow`), because merging happens in the database across documents
imported at different times (v3.10 today, v3.11 tomorrow); `build_record` turns all rows of one CVE into the record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
