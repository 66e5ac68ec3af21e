"""Amazon Linux security advisories (ALAS) from a repository's yum `updateinfo.xml`, converted to OSV records.

Each `<update type="security">` becomes one record:

* id: the ALAS id (`ALAS2-2018-939`, `ALAS2023-2023-001`, `ALAS-2018-1000`);
* ecosystem `Amazon Linux:<release>`: the release from the id prefix (`ALAS2023-` → 2023, `ALAS2022-` → 2022,
  `ALAS2-` → 2, `ALAS-` → 1), else from the collection the repository declares (`amazon-linux-2023`), else from
  the feed it was fetched as (`release_hint`);
* one affected entry per package name, range ECOSYSTEM introduced "0" fixed `[epoch:]version-release`, a zero
  epoch left out as acrguard's rpm detector writes installed versions. The arches of one package normally carry
  the same version; where they differ the lowest is kept (an image of either arch with the lowest fixed version
  installed is not reported; one below it is). Source packages (`arch="src"`) are left out: advisories are
  matched by binary name, and by source name through the binaries' `source_name`;
* the CVEs of its `<references>` as `related`, as osv.dev writes AlmaLinux errata: one erratum fixes several CVEs
  that other errata fix again, so they name the finding's CVEs without merging distinct errata of a package;
* `database_specific.severity`: Amazon's word (`critical`, `important`, `medium`, `low`), as the findings'
  vendor rating reads it; `published` from `issued`, `modified` from `updated`, else `issued`.

Not converted (counted as skipped, named in warnings): updates of the amazon-linux-extras topics
(`ALAS2KERNEL-5.10-…`, `ALAS2GOLANG1.19-…`, `ALAS2DOCKER-…`). Their packages are another version stream of a
core package of the same name (kernel 5.10 beside core 4.14): matched against the core package, every core
install would be reported. Updates of another type (bugfix, enhancement) are no advisories and are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element

from scanner.vulndb.converted import (
    MAX_AFFECTED,
    MAX_DETAILS,
    MAX_SUMMARY,
    Converted,
    clip,
    cve_list,
    lowest_rpm,
    rfc3339,
    rpm_evr,
)
from scanner.vulndb.xmlstream import local, text

ECOSYSTEM = "Amazon Linux"
# ALAS2023-2023-001, ALAS2022-2021-001, ALAS2-2018-939, ALAS-2018-1000; extras: ALAS2KERNEL-5.10-2022-001.
_ID = re.compile(r"^ALAS(?P<release>2023|2022|2)?(?P<topic>[A-Z][A-Za-z0-9._-]*?)?-(?P<year>\d{4})-(?P<number>\d+)$")
_COLLECTION = re.compile(r"amazon-linux-(\d+)$")
MAX_UPDATES = 200_000  # Amazon Linux 2 has published ~3,000 in seven years


def release_of(alas_id: str, declared: str | None) -> tuple[str | None, bool]:
    """(release, is an extras topic) of an ALAS id; the declared release where the id has none."""
    match = _ID.match(alas_id)
    if match is None:
        return None, False
    release = match.group("release") or ("1" if not match.group("topic") else None)
    return release or declared, bool(match.group("topic"))


def advisory_url(alas_id: str, release: str) -> str:
    """The page of an advisory on alas.aws.amazon.com: `AL2/ALAS-2018-939.html`, `AL2023/ALAS-2023-001.html`."""
    match = _ID.match(alas_id)
    short = f"ALAS-{match.group('year')}-{match.group('number')}" if match else alas_id
    folder = "" if release == "1" else f"AL{release}/"
    return f"https://alas.aws.amazon.com/{folder}{short}.html"


def parse_updateinfo(
    stream: Iterator[tuple[str, Element]], root: Element, origin: str, release_hint: str | None
) -> Converted:
    """The records of an `<updates>` document whose root start event has been read."""
    result = Converted("updateinfo")
    count = 0
    for event, element in stream:
        if event != "end" or local(element.tag) != "update":
            continue
        count += 1
        if count > MAX_UPDATES:
            result.skip(f"{origin}: more than {MAX_UPDATES} updates; the rest not read")
            break
        try:
            if element.get("type", "security") == "security":
                record = _convert(element, origin, release_hint, result)
                if record is not None:
                    result.records.append(record)
        finally:
            root.clear()  # the update is converted: drop its elements
    return result


def _declared_release(update: Element) -> str | None:
    for collection in update.iter("collection"):
        match = _COLLECTION.search(collection.get("short", ""))
        if match:
            return match.group(1)
    return None


def _convert(update: Element, origin: str, release_hint: str | None, result: Converted) -> dict[str, Any] | None:
    alas_id = text(update.find("id"))
    label = f"{alas_id or '(no id)'} ({origin})"
    release, extras = release_of(alas_id, _declared_release(update) or release_hint)
    if extras:
        result.skip(f"{label}: an amazon-linux-extras topic advisory, not converted")
        return None
    if release is None:
        result.skip(f"{label}: not an ALAS id with a known Amazon Linux release")
        return None
    issued, updated = _date(update, "issued"), _date(update, "updated")
    modified = updated or issued
    if modified is None:
        result.skip(f"{label}: no issued or updated date")
        return None
    fixes: dict[str, list[str]] = {}
    for package in update.iter("package"):
        name, version, arch = package.get("name", ""), package.get("version", ""), package.get("arch", "")
        if arch == "src" or not name.strip() or not version.strip():
            continue
        fixes.setdefault(name.strip(), []).append(rpm_evr(package.get("epoch"), version, package.get("release", "")))
        if len(fixes) > MAX_AFFECTED:
            break
    if not fixes:
        result.skip(f"{label}: no packages")
        return None
    try:
        affected = [_affected(release, name, lowest_rpm(versions)) for name, versions in sorted(fixes.items())]
    except (ValueError, IndexError) as exc:
        result.skip(f"{label}: unreadable package version ({exc})")
        return None
    references = update.find("references")
    cves = (
        cve_list(r.get("id", "") for r in references.iter("reference") if r.get("type") == "cve")
        if references is not None
        else []
    )
    record: dict[str, Any] = {
        "id": alas_id,
        "modified": modified,
        "summary": clip(text(update.find("title")), MAX_SUMMARY),
        "details": clip((update.findtext("description") or ""), MAX_DETAILS),
        "related": cves,
        "affected": affected,
        "references": [{"type": "ADVISORY", "url": advisory_url(alas_id, release)}],
    }
    if issued:
        record["published"] = issued
    severity = text(update.find("severity"))
    if severity:
        record["database_specific"] = {"severity": severity}
    return record


def _date(update: Element, tag: str) -> str | None:
    element = update.find(tag)
    return rfc3339(element.get("date", "")) if element is not None else None


def _affected(release: str, name: str, fixed: str) -> dict[str, Any]:
    return {
        "package": {"ecosystem": f"{ECOSYSTEM}:{release}", "name": name},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
    }
