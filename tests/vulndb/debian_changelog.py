"""Debian 12 OSV records derived from Debian's own package changelogs (`changelog.Debian`).

No public repository holds osv.dev's Debian records as files, so the bundled snapshot's `debian-osv/` is
derived, one record per CVE, from the bookworm update entries (versions with `deb12u`: uploads to bookworm
after its release, through bookworm-security or a point release) of the changelogs kept, as slices, in
tests/fixtures/debian-changelogs/. The record says what the changelog says: source package, the first
bookworm update whose entry names the CVE (its version is the fix), that entry's distribution and date.
The snapshot test derives every record again from the slices and compares, so the files stay faithful.

Regenerate (after adding or refreshing a slice):
    .venv/bin/python -m tests.vulndb.debian_changelog tests/fixtures/debian-changelogs \
        scanner/data/osv-snapshot/debian-osv
"""

from __future__ import annotations

import email.utils
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

ECOSYSTEM = "Debian:12"
UPDATE = re.compile(r"\+deb12u\d+|~deb12u\d+")  # a bookworm update's version suffix
HEADER = re.compile(r"^(?P<source>[a-z0-9][a-z0-9+.-]*) \((?P<version>[^)]+)\) (?P<dists>[^;]+);", re.M)
TRAILER = re.compile(r"^ -- .+?  (?P<date>\S.*)$", re.M)
CVE = re.compile(r"CVE-\d{4}-\d{4,}")
# Entries that name a CVE without fixing it (a revert, a regression of an earlier fix) are not fixes.
NOT_A_FIX = re.compile(r"\brevert|\bregression\b", re.I)


@dataclass(frozen=True)
class Entry:
    source: str
    version: str
    distributions: str
    date: str  # RFC 3339, UTC
    body: str


def entries(text: str) -> Iterator[Entry]:
    """The entries of a changelog, newest first (the file's order)."""
    headers = list(HEADER.finditer(text))
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        chunk = text[header.end() : end]
        trailer = TRAILER.search(chunk)
        if trailer is None:
            raise ValueError(f"changelog entry {header['source']} {header['version']} has no trailer line")
        when = email.utils.parsedate_to_datetime(trailer["date"]).astimezone(UTC)
        yield Entry(
            header["source"],
            header["version"],
            header["dists"].strip(),
            when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            chunk[: trailer.start()],
        )


def fixes(text: str) -> dict[str, Entry]:
    """CVE id -> the oldest bookworm update entry that names it in a line that is not a revert."""
    found: dict[str, Entry] = {}
    for entry in entries(text):  # newest first: older entries overwrite
        if not UPDATE.search(entry.version):
            continue
        for line in _items(entry.body):
            if NOT_A_FIX.search(line):
                continue
            for cve in CVE.findall(line):
                found[cve] = entry
    return found


def _items(body: str) -> list[str]:
    # One changelog item (a `*` or `-` bullet with its continuation lines) per string.
    items: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith(("* ", "- ", "+ ")) or not items:
            items.append(stripped)
        else:
            items[-1] += " " + stripped
    return items


def records(slices: Path) -> dict[str, dict[str, Any]]:
    """Every record the changelog slices in `slices` give, by id."""
    by_cve: dict[str, list[Entry]] = {}
    for path in sorted(slices.glob("*.changelog")):
        for cve, entry in fixes(path.read_text(encoding="utf-8")).items():
            by_cve.setdefault(cve, []).append(entry)
    return {f"DEBIAN-{cve}": _record(cve, found) for cve, found in sorted(by_cve.items())}


def _record(cve: str, found: list[Entry]) -> dict[str, Any]:
    found = sorted(found, key=lambda e: e.source)
    return {
        "schema_version": "1.6.0",
        "id": f"DEBIAN-{cve}",
        "modified": max(e.date for e in found),
        "published": min(e.date for e in found),
        "upstream": [cve],
        "details": " ".join(
            f"Fixed in {e.source} {e.version} ({e.distributions}), per the package's changelog.Debian." for e in found
        ),
        "affected": [
            {
                "package": {
                    "ecosystem": ECOSYSTEM,
                    "name": e.source,
                    "purl": f"pkg:deb/debian/{e.source}?arch=source&distro=bookworm",
                },
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": e.version}]}],
            }
            for e in found
        ],
        "references": [{"type": "ADVISORY", "url": f"https://security-tracker.debian.org/tracker/{cve}"}],
    }


def render(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    slices, target = Path(argv[0]), Path(argv[1])
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("DEBIAN-CVE-*.json"):
        old.unlink()
    made = records(slices)
    for record_id, record in made.items():
        (target / f"{record_id}.json").write_text(render(record), encoding="utf-8")
    print(f"{len(made)} records written to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
