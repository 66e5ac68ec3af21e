"""Alpine (and Wolfi/Chainguard) packages from apk's installed database.

The database is a list of packages separated by blank lines; each line is `X:value` with a one-letter
key (P name, V version, A arch, o origin, L licence, m maintainer, c aports commit, F directory, R file
in the last F directory; a/M/Z per-file attributes and unknown keys are ignored, as apk itself does).

Bad content never raises: a package with no P or no V is skipped with a warning, and a line that is
not `X:value` (a corrupt or truncated database) is skipped with a warning while the packages around
it are kept. apk refuses such a database; a scanner reporting what it can is more useful.

Bounded: the database is read as a stream of stanzas, one in memory at a time; a database over
`max_package_db_bytes` is not read, and more packages than the image may hold or more file paths than
`max_owned_files` stop the reading, keep what was read and make the inventory Incomplete.

`/lib/apk/db/installed` is the database apk uses when it exists; `/usr/lib/apk/db/installed` (merged-
/usr images and apk-tools 3) only otherwise. Reading both would report every package twice where one
is a copy of the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from packageurl import PackageURL

from scanner.ecosystems.distributions import os_ecosystem, purl_distro, purl_namespace
from scanner.inventory.detectors.base import (
    BoundExceeded,
    DetectContext,
    Extraction,
    FileSet,
    FixedPathDetector,
    text_lines,
)
from scanner.model.types import OSInfo, RawPackage, Warning_

DB_PATHS = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")  # in order of preference
DEFAULT_NAMESPACE = "alpine"  # purl namespace when no OS was identified

# Keys kept as RawPackage metadata, under these names.
_METADATA_KEYS = {"L": "license", "m": "maintainer", "c": "commit"}


@dataclass
class ApkEntry:
    """One package stanza, as read."""

    line: int  # 1-based line where the stanza starts
    fields: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # absolute paths from F/R lines
    directory: str = ""  # the current F directory while reading


def parse_installed(text: str, where: str) -> tuple[list[ApkEntry], list[Warning_]]:
    """Stanzas with a name and a version, in file order, plus warnings for what was skipped."""
    warnings: list[Warning_] = []
    return list(iter_installed(text.splitlines(), where, warnings)), warnings


def iter_installed(
    lines: Iterable[str], where: str, warnings: list[Warning_], max_files: int | None = None
) -> Iterator[ApkEntry]:
    """`parse_installed` one stanza at a time; more than `max_files` file paths in all raise BoundExceeded."""
    for entry in _stanzas(lines, where, warnings, max_files):
        problem = _problem(entry)
        if problem:
            warnings.append(Warning_(where, f"stanza at line {entry.line}: {problem}"))
        else:
            yield entry


def _stanzas(lines: Iterable[str], where: str, warnings: list[Warning_], max_files: int | None) -> Iterator[ApkEntry]:
    """Group `X:value` lines into stanzas; garbage lines become warnings and are left out."""
    current: ApkEntry | None = None
    files = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if current is not None:
                yield current
            current = None
            continue
        if len(line) < 2 or line[1] != ":":
            warnings.append(Warning_(where, f"line {number}: not an 'X:value' line; skipped"))
            continue
        if current is None:
            current = ApkEntry(line=number)
        if line[0] == "R":
            files += 1
            if max_files is not None and files > max_files:
                raise BoundExceeded(where, f"more than {max_files} file paths (limit max_owned_files)")
        _add_line(current, line[0], line[2:])
    if current is not None:
        yield current


def _add_line(entry: ApkEntry, key: str, value: str) -> None:
    if key == "F":
        entry.directory = value.strip("/")
    elif key == "R":
        entry.files.append(f"/{entry.directory}/{value}" if entry.directory else f"/{value}")
    else:
        # First value wins: apk writes each package field once; a repeat is damage, not an update.
        entry.fields.setdefault(key, value.strip())


def _problem(entry: ApkEntry) -> str:
    name = entry.fields.get("P", "")
    if not name:
        return "no package name (P:); skipped"
    if not entry.fields.get("V"):
        return f"package '{name}' has no version (V:); skipped"
    return ""


def _purl(name: str, version: str, arch: str, os_info: OSInfo | None) -> str:
    qualifiers = {"arch": arch, "distro": purl_distro(os_info)}
    return PackageURL(
        type="apk",
        namespace=purl_namespace(os_info) or DEFAULT_NAMESPACE,
        name=name,
        version=version,
        qualifiers={k: v for k, v in qualifiers.items() if v},
    ).to_string()


def _package(entry: ApkEntry, path: str, os_info: OSInfo | None) -> RawPackage:
    name, version, arch = entry.fields["P"], entry.fields["V"], entry.fields.get("A", "")
    return RawPackage(
        name=name,
        version=version,
        ecosystem=os_ecosystem(os_info),
        purl=_purl(name, version, arch, os_info),
        # Advisories (secdb, OSV) are written against the origin (source) package; apk builds every
        # subpackage of an origin from the same APKBUILD, so it shares the origin's version.
        source_name=entry.fields.get("o") or name,
        source_version=version,
        arch=arch,
        locations=(path,),
        kind="apk",
        metadata=tuple((label, entry.fields[key]) for key, label in _METADATA_KEYS.items() if entry.fields.get(key)),
        owned_files=frozenset(entry.files),
    )


class ApkDetector(FixedPathDetector):
    name = "apk"
    version = 1
    group = "os-packages"
    paths = frozenset(DB_PATHS)

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        present = set(files.paths())
        path = next((p for p in DB_PATHS if p in present), None)
        out = Extraction()
        if path is None:
            return out
        try:
            lines = text_lines(ctx.read_database(files, path))
            for entry in iter_installed(lines, path, out.warnings, ctx.limits.max_owned_files):
                if not out.add_package(_package(entry, path, ctx.os), ctx, path):
                    break
        except BoundExceeded as err:  # the packages before it are kept
            out.bound(err.where, err.message)
        return out
