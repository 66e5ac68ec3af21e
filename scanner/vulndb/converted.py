"""Records acrguard converts itself from vendor feeds (Amazon ALAS updateinfo, Oracle ELSA OVAL, Wolfi and
Chainguard secdb), and the checks they pass before they are written.

Their ecosystems (`Amazon Linux:2`, `Oracle Linux:8`) are not OSV ecosystems, so the OSV schema validator, which
imported OSV records must pass, would refuse them; they are checked here instead: required fields present, every
string and list bounded, versions without whitespace. A converted record that fails is skipped and named, like an
invalid OSV record.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scanner.versions import rpm
from scanner.vulndb.sqlite_db import modified_key

MAX_ID = 100
MAX_NAME = 256
MAX_VERSION = 256
MAX_SUMMARY = 1_000
MAX_DETAILS = 64 * 1024  # details longer than this are cut (ALAS descriptions quote whole CVE texts)
MAX_AFFECTED = 5_000  # one ALAS of a kernel lists ~100 packages; far more is a broken or hostile feed
MAX_IDS = 5_000  # related CVEs of one advisory (the largest ELSAs of a kernel name a few hundred)
MAX_REFERENCES = 200
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")


@dataclass
class Converted:
    """The records of one vendor document, and what was skipped on the way."""

    kind: str  # "updateinfo", "oval", "secdb"
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.warnings.append(reason)


def rpm_evr(epoch: str | None, version: str, release: str) -> str:
    """`[epoch:]version-release` as acrguard's rpm detector writes installed versions: a zero (or missing) epoch
    is left out, as rpm treats them alike (`1:1.1.1k-7.el8_6`, `8.2204.0-3.amzn2023.0.2`)."""
    epoch = (epoch or "").strip()
    vr = f"{version.strip()}-{release.strip()}" if release.strip() else version.strip()
    return f"{epoch}:{vr}" if epoch and epoch.strip("0") else vr


def normalise_evr(evr: str) -> str:
    """An OVAL EVR (`0:110-1.el8`, `2:1.1.1g-15.el8_3`) the same way: `110-1.el8`, `2:1.1.1g-15.el8_3`."""
    head, colon, rest = evr.strip().partition(":")
    if colon and head.isdigit():
        return rest if not head.strip("0") else f"{int(head)}:{rest}"
    return evr.strip()


def lowest_rpm(versions: Iterable[str]) -> str:
    """The lowest of rpm EVRs (rpm's own order)."""
    best: str | None = None
    for version in versions:
        if best is None or rpm.compare(version, best) < 0:
            best = version
    if best is None:
        raise ValueError("no versions")
    return best


def rfc3339(text: str) -> str | None:
    """Vendor dates (`2018-01-16 01:28`, `2023-02-17 20:41:00`, `2024-05-24`, ISO forms) as RFC 3339 UTC."""
    text = text.strip()
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, pattern).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            continue
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def cve_list(values: Iterable[str]) -> list[str]:
    """The CVE ids among `values`, in order, without repeats."""
    return list(dict.fromkeys(v.strip() for v in values if _CVE.match(v.strip())))


def clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded_str(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def check_record(record: Mapping[str, Any]) -> str | None:
    """Why a converted record must not be written, or None: the checks the OSV schema would make of the fields
    acrguard reads, and bounds on every size."""
    record_id = record.get("id")
    if not _bounded_str(record_id, MAX_ID) or not _ID.match(str(record_id)):
        return f"bad id {record_id!r}"
    modified = record.get("modified")
    if not isinstance(modified, str) or modified_key(modified) is None:
        return f"modified {modified!r} is not an RFC 3339 UTC time"
    published = record.get("published")
    if published is not None and (not isinstance(published, str) or modified_key(published) is None):
        return f"published {published!r} is not an RFC 3339 UTC time"
    for key, limit in (("summary", MAX_SUMMARY), ("details", MAX_DETAILS)):
        value = record.get(key)
        if value is not None and not (isinstance(value, str) and len(value) <= limit):
            return f"{key} longer than {limit} characters"
    for key in ("aliases", "related", "upstream"):
        values = record.get(key, [])
        if not isinstance(values, list) or len(values) > MAX_IDS or not all(_bounded_str(v, MAX_ID) for v in values):
            return f"{key}: not a list of at most {MAX_IDS} ids"
    references = record.get("references", [])
    if not isinstance(references, list) or len(references) > MAX_REFERENCES:
        return f"more than {MAX_REFERENCES} references"
    affected = record.get("affected")
    if not isinstance(affected, list) or not affected or len(affected) > MAX_AFFECTED:
        return f"affected: not a list of 1 to {MAX_AFFECTED} entries"
    for entry in affected:
        package = entry.get("package") if isinstance(entry, Mapping) else None
        if not isinstance(package, Mapping):
            return "an affected entry without a package"
        if not _bounded_str(package.get("ecosystem"), MAX_NAME) or not _bounded_str(package.get("name"), MAX_NAME):
            return "an affected package without an ecosystem or name"
        ranges = entry.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            return f"{package['name']}: no ranges"
        for item in ranges:
            events = item.get("events") if isinstance(item, Mapping) else None
            if not isinstance(events, list) or not events:
                return f"{package['name']}: a range without events"
            for event in events:
                if not isinstance(event, Mapping) or len(event) != 1:
                    return f"{package['name']}: a malformed range event"
                (version,) = event.values()
                if not _bounded_str(version, MAX_VERSION) or any(c.isspace() for c in version):
                    return f"{package['name']}: bad version {version!r}"
    return None


MAX_CWES = 20  # CWE ids kept per record
_CWE = re.compile(r"CWE-[0-9]{1,6}")


def cwe_list(values: Iterable[object]) -> list[str]:
    """The distinct `CWE-<n>` ids among `values`, first seen first, at most MAX_CWES (NVD's `NVD-CWE-Other` and
    `NVD-CWE-noinfo` are not weaknesses and are left out)."""
    found: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and _CWE.fullmatch(value) and len(found) < MAX_CWES:
            found[value] = None
    return list(found)


def english_description(holder: Mapping[str, Any], limit: int) -> str:
    """The first English `descriptions[].value` of a CVE record's container or an NVD CVE object ("" when none);
    at most `limit` entries are looked at."""
    descriptions = holder.get("descriptions")
    for item in descriptions[:limit] if isinstance(descriptions, list) else []:
        if isinstance(item, Mapping) and str(item.get("lang", "")).startswith("en"):
            value = item.get("value")
            if isinstance(value, str):
                return value
    return ""
