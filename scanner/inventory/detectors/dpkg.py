"""Debian packages from the dpkg database: `/var/lib/dpkg/status` and distroless `status.d/` entries.

Which stanzas count as installed (dpkg's third Status word, "state"):
  kept:    installed, triggers-pending, triggers-awaited, half-configured, unpacked, half-installed;
           the package's files are (at least partly) on disk, so its code can be vulnerable.
           `dpkg -l` lists these too (ii, iT, iW, iF, iU, iH).
  dropped: not-installed, config-files: no code left on disk (only conffiles, or nothing).
  no Status field: in distroless `status.d/` entries, kept: they never have one and mean "installed".
           In `status` itself, dropped: dpkg reads a stanza without Status as "not-installed" (its
           parser defaults the state to not-installed, and `dpkg -s` says "not installed"), so a
           package listed there without one has no files on disk as far as dpkg knows (a warning says so).
The first two Status words (want: install/hold/deinstall/purge; error: ok/reinstreq) do not say
whether files are present, so they are not used: "deinstall ok installed" is still installed.

Bad content never raises: a stanza with no Package, no Version, an invalid version (dpkg's own rules,
e.g. `1:5.#`), an unknown or malformed Status, or a line that is neither `Field: value` nor a
continuation is skipped with a warning; the other stanzas of the file are kept. dpkg-query refuses a
whole file for some of these; a scanner reporting what it can is more useful than reporting nothing.

Bounded: a file is read as a stream of stanzas (one stanza in memory at a time, never a list of every
line); a file over `max_package_db_bytes`, a stanza of more than `MAX_STANZA_LINES` lines, more packages
than the image may hold or more owned files than `max_owned_files` stop the reading of that file, keep
what was read and make the inventory Incomplete.

Owned files: `info/<pkg>[:<arch>].list` (every path dpkg unpacked, directories included); when a
package has no `.list` (images with pruned databases), `info/<pkg>[:<arch>].md5sums` (regular files
only); for `status.d/<entry>`, `status.d/<entry>.md5sums`. Conffiles from the stanza are added, since
md5sums files leave them out.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

from packageurl import PackageURL

from scanner.ecosystems.distributions import os_ecosystem, purl_distro, purl_namespace
from scanner.inventory.detectors.base import (
    BoundExceeded,
    DetectContext,
    Detector,
    DetectorError,
    Extraction,
    FileSet,
    text_lines,
)
from scanner.model.types import OSInfo, RawPackage, Warning_

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d"
INFO = "/var/lib/dpkg/info"

# Maintainer scripts and other control files that sit next to distroless status.d entries: not
# package stanzas. `.md5sums` is read (owned files), the rest is never requested.
_UNNEEDED_SUFFIXES = (
    ".preinst",
    ".postinst",
    ".prerm",
    ".postrm",
    ".conffiles",
    ".triggers",
    ".shlibs",
    ".symbols",
    ".templates",
    ".config",
    ".list",
)
_MD5SUMS = ".md5sums"

_PRESENT_STATES = frozenset(
    ("installed", "triggers-pending", "triggers-awaited", "half-configured", "unpacked", "half-installed")
)
_ABSENT_STATES = frozenset(("not-installed", "config-files"))

_FIELD = re.compile(r"([!-9;-~]+):(.*)")  # deb822 field name: printable ASCII, no space or colon
_SOURCE = re.compile(r"(\S+)(?:\s*\((\S+)\))?")
_EPOCH = re.compile(r"\d+")
_UPSTREAM = re.compile(r"[A-Za-z0-9.+~:-]+")  # dpkg's parseversion character sets
_REVISION = re.compile(r"[A-Za-z0-9.+~]+")

DEFAULT_NAMESPACE = "debian"  # purl namespace when no OS was identified (dpkg is overwhelmingly Debian)
# Lines of one stanza: real ones have tens (a few thousand for a package with many conffiles); without a
# bound one stanza of short distinct fields could fill the whole file and claim gigabytes as Python objects.
MAX_STANZA_LINES = 100_000


# ---------------------------------------------------------------- deb822


@dataclass
class Stanza:
    """One deb822 paragraph: field names lower-cased, multi-line values joined with newlines."""

    line: int  # 1-based line number where the paragraph starts
    fields: dict[str, str] = field(default_factory=dict)
    problem: str = ""  # first syntax error met, if any


def parse_deb822(text: str) -> Iterator[Stanza]:
    """Split deb822 text (dpkg status, status.d entries) into paragraphs, one at a time.

    Paragraphs are separated by blank (or whitespace-only) lines; a line starting with a space or tab
    continues the previous field. Syntax errors are recorded on the paragraph, not raised.
    """
    return iter_deb822(text.splitlines())


def iter_deb822(lines: Iterable[str], where: str = "") -> Iterator[Stanza]:
    """`parse_deb822` over lines; a paragraph of more than `MAX_STANZA_LINES` lines raises BoundExceeded."""
    current: _Paragraph | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if current is not None:
                yield current.stanza()
            current = None
            continue
        if line.startswith("#"):
            continue  # deb822 comment
        if current is None:
            current = _Paragraph(number)
        elif current.lines >= MAX_STANZA_LINES:
            raise BoundExceeded(where, f"stanza at line {current.line} has more than {MAX_STANZA_LINES} lines")
        current.add(line, number)
    if current is not None:
        yield current.stanza()


class _Paragraph:
    """A paragraph being read: continuation lines are collected and joined once (no quadratic `+=`)."""

    def __init__(self, line: int) -> None:
        self.line = line
        self.lines = 0
        self.parts: dict[str, list[str]] = {}
        self.problem = ""
        self.last_field = ""

    def add(self, line: str, number: int) -> None:
        self.lines += 1
        if line[0].isspace():
            if self.last_field:
                self.parts[self.last_field].append(line.strip())
            elif not self.problem:
                self.problem = f"line {number}: continuation line with no field before it"
            return
        match = _FIELD.fullmatch(line)
        if match is None:
            if not self.problem:
                self.problem = f"line {number}: not a 'Field: value' line"
            self.last_field = ""
            return
        self.last_field = match.group(1).lower()
        self.parts[self.last_field] = [match.group(2).strip()]

    def stanza(self) -> Stanza:
        return Stanza(self.line, {name: "\n".join(parts) for name, parts in self.parts.items()}, self.problem)


# ---------------------------------------------------------------- versions and fields


def version_problem(version: str) -> str:
    """Why dpkg would reject this version ("" if valid): [epoch:]upstream[-revision]."""
    if not version:
        return "empty version"
    rest = version
    if ":" in version:
        epoch, rest = version.split(":", 1)
        if not _EPOCH.fullmatch(epoch):
            return f"epoch in '{version}' is not a number"
    upstream = rest
    if "-" in rest:  # the revision follows the last hyphen; the upstream part may hold hyphens too
        upstream, revision = rest.rsplit("-", 1)
        if not _REVISION.fullmatch(revision):
            return f"invalid or empty revision in version '{version}'"
    if not upstream:
        return f"'{version}' has an empty upstream version"
    if not _UPSTREAM.fullmatch(upstream):
        return f"invalid character in version '{version}'"
    return ""


def _installed_state(stanza: Stanza, status_required: bool) -> tuple[bool, str]:
    """(keep?, problem). No Status field means installed in a distroless status.d entry (`status_required`
    False), not-installed in dpkg's own status file (as dpkg reads it)."""
    status = stanza.fields.get("status")
    if status is None:
        # Said, not silent: a status file written by something other than dpkg may mean "installed".
        return (False, "no Status field (dpkg reads that as not-installed)") if status_required else (True, "")
    words = status.split()
    if len(words) != 3:
        return False, f"malformed Status '{status}'"
    if words[2] in _PRESENT_STATES:
        return True, ""
    if words[2] in _ABSENT_STATES:
        return False, ""
    return False, f"unknown package state in Status '{status}'"


def _source(stanza: Stanza, name: str, version: str) -> tuple[str, str, str]:
    """(source name, source version, problem). dpkg's defaults: no Source -> the binary's own name;
    no "(version)" -> the binary's version (the two differ for binNMUs such as 1.0.4-3+b2)."""
    raw = stanza.fields.get("source", "").strip()
    if not raw:
        return name, version, ""
    match = _SOURCE.fullmatch(raw)
    if match is None:
        return name, version, f"malformed Source '{raw}'; using the binary name and version"
    source_version = match.group(2) or version
    if version_problem(source_version):
        return match.group(1), version, f"invalid source version in '{raw}'; using the binary version"
    return match.group(1), source_version, ""


# ---------------------------------------------------------------- entries


@dataclass(frozen=True)
class DebEntry:
    """An installed package as its stanza says it."""

    name: str
    version: str
    arch: str
    source_name: str
    source_version: str
    status: str  # "" when the stanza has none
    maintainer: str
    conffiles: tuple[str, ...]


def parse_status(text: str, where: str, *, status_required: bool = True) -> tuple[list[DebEntry], list[Warning_]]:
    """Installed packages in a dpkg status file (or, `status_required=False`, a distroless status.d entry,
    whose stanzas have no Status), in file order, plus warnings."""
    warnings: list[Warning_] = []
    return list(iter_status(text.splitlines(), where, warnings, status_required=status_required)), warnings


def iter_status(
    lines: Iterable[str], where: str, warnings: list[Warning_], *, status_required: bool = True
) -> Iterator[DebEntry]:
    """`parse_status` one entry at a time, warnings appended as they are met."""
    for stanza in iter_deb822(lines, where):
        entry, problems = _entry(stanza, status_required)
        warnings.extend(Warning_(where, f"stanza at line {stanza.line}: {p}") for p in problems)
        if entry is not None:
            yield entry


def _entry(stanza: Stanza, status_required: bool) -> tuple[DebEntry | None, list[str]]:
    """The installed package a stanza describes (None if none or unusable) and what went wrong."""
    name = stanza.fields.get("package", "").strip()
    label = f"package '{name}'" if name else "stanza"
    if stanza.problem:
        return None, [f"{label} skipped: {stanza.problem}"]
    if not name:
        return None, ["skipped: no Package name"]
    keep, state_problem = _installed_state(stanza, status_required)
    # A missing Status is said after a missing or invalid Version: those make the stanza unusable anyway.
    if not keep and "status" in stanza.fields:
        return None, [f"{label} skipped: {state_problem}"] if state_problem else []
    version = stanza.fields.get("version", "").strip()
    if not version:
        return None, [f"{label} skipped: no Version"]
    problem = version_problem(version)
    if problem:
        return None, [f"{label} skipped: {problem}"]
    if not keep:
        return None, [f"{label} skipped: {state_problem}"]
    source_name, source_version, source_problem = _source(stanza, name, version)
    entry = DebEntry(
        name=name,
        version=version,
        arch=stanza.fields.get("architecture", "").strip(),
        source_name=source_name,
        source_version=source_version,
        status=stanza.fields.get("status", ""),
        maintainer=stanza.fields.get("maintainer", ""),
        conffiles=_conffiles(stanza.fields.get("conffiles", "")),
    )
    return entry, [f"{label}: {source_problem}"] if source_problem else []


def _conffiles(value: str) -> tuple[str, ...]:
    # " /etc/pam.conf 87fc76f18e98ee7d3848f6b81b3391e5 [obsolete]" per line; the path has no spaces.
    return tuple(line.split()[0] for line in value.splitlines() if line.strip().startswith("/"))


# ---------------------------------------------------------------- owned files


def list_paths(text: str) -> frozenset[str]:
    """Paths of an info/*.list file (absolute already; "/." is the root itself)."""
    return frozenset(line for line in text.splitlines() if line.startswith("/") and line != "/.")


def md5sums_paths(text: str) -> frozenset[str]:
    """Paths of an md5sums file ("<md5>  usr/bin/x", relative to /), made absolute."""
    paths = set()
    for line in text.splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2:
            paths.add("/" + parts[1].lstrip("*/"))
    return frozenset(paths)


class _OwnedFiles:
    """Looks up a package's file list among the captured info/ and status.d/ files, within the database's
    budget of owned files (`max_owned_files`): past it, packages get their conffiles only and the run is
    incomplete."""

    def __init__(self, files: FileSet, present: set[str], ctx: DetectContext, result: Extraction) -> None:
        self._files = files
        self._present = present
        self._ctx = ctx
        self._result = result
        self._left = ctx.limits.max_owned_files

    def _paths(self, path: str, parse: Callable[[str], frozenset[str]]) -> frozenset[str] | None:
        if path not in self._present:
            return None
        if self._left < 0:
            return frozenset()
        try:
            data = self._ctx.read_database(self._files, path)
        except DetectorError as err:
            self._result.bound(err.where, err.message)
            return frozenset()
        paths = parse(data.decode("utf-8", errors="replace"))
        self._left -= len(paths)
        if self._left < 0:
            limit = self._ctx.limits.max_owned_files
            self._result.bound(path, f"more than {limit} owned files in the database (limit max_owned_files)")
            return frozenset()
        return paths

    def for_info(self, entry: DebEntry) -> frozenset[str]:
        # Multi-Arch: same packages are stored as <name>:<arch>.list; others as <name>.list.
        stems = (f"{INFO}/{entry.name}:{entry.arch}", f"{INFO}/{entry.name}")
        for suffix, parse in ((".list", list_paths), (_MD5SUMS, md5sums_paths)):
            for stem in stems:
                paths = self._paths(stem + suffix, parse)
                if paths is not None:
                    return paths | frozenset(entry.conffiles)
        return frozenset(entry.conffiles)

    def for_status_d(self, entry: DebEntry, entry_path: str) -> frozenset[str]:
        listed = self._paths(entry_path + _MD5SUMS, md5sums_paths)
        return (listed or frozenset()) | frozenset(entry.conffiles)


# ---------------------------------------------------------------- the detector


def _is_status_d_entry(path: str) -> bool:
    return posixpath.dirname(path) == STATUS_D and not path.endswith((_MD5SUMS, *_UNNEEDED_SUFFIXES))


def _purl(entry: DebEntry, os_info: OSInfo | None) -> str:
    qualifiers = {"arch": entry.arch, "distro": purl_distro(os_info)}
    return PackageURL(
        type="deb",
        namespace=purl_namespace(os_info) or DEFAULT_NAMESPACE,
        name=entry.name,
        version=entry.version,
        qualifiers={k: v for k, v in qualifiers.items() if v},
    ).to_string()


def _metadata(entry: DebEntry) -> tuple[tuple[str, str], ...]:
    pairs = [("maintainer", entry.maintainer)]
    if entry.status and entry.status.split()[-1] != "installed":
        pairs.append(("status", entry.status))  # e.g. half-configured: present but not set up
    return tuple((k, v) for k, v in pairs if v)


class DpkgDetector(Detector):
    name = "dpkg"
    version = 2
    group = "os-packages"

    def required(self, path: str) -> bool:
        if path == STATUS:
            return True
        parent = posixpath.dirname(path)
        if parent == STATUS_D:
            return not path.endswith(_UNNEEDED_SUFFIXES)
        return parent == INFO and path.endswith((".list", _MD5SUMS))

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        present = set(files.paths())
        result = Extraction()
        owned = _OwnedFiles(files, present, ctx, result)
        databases = [STATUS] if STATUS in present else []
        databases += sorted(p for p in present if _is_status_d_entry(p))
        for path in databases:
            owner = owned.for_info if path == STATUS else partial(owned.for_status_d, entry_path=path)
            try:
                full = self._read(files, path, ctx, result, owner)
            except DetectorError as err:  # this file is not (or not wholly) read; the others still are
                result.bound(err.where or path, err.message)
                full = True
            if not full:
                break  # the image holds no more packages: the files left would add none
        return result

    def _read(
        self,
        files: FileSet,
        path: str,
        ctx: DetectContext,
        result: Extraction,
        owner: Callable[[DebEntry], frozenset[str]],
    ) -> bool:
        """Add the packages of one file; False when the package budget ran out before its end."""
        ecosystem = os_ecosystem(ctx.os)
        lines = text_lines(ctx.read_database(files, path))
        for entry in iter_status(lines, path, result.warnings, status_required=path == STATUS):
            package = RawPackage(
                name=entry.name,
                version=entry.version,
                ecosystem=ecosystem,
                purl=_purl(entry, ctx.os),
                source_name=entry.source_name,
                source_version=entry.source_version,
                arch=entry.arch,
                locations=(path,),
                kind="deb",
                metadata=_metadata(entry),
                owned_files=owner(entry),
            )
            if not result.add_package(package, ctx, path):
                return False
        return True
