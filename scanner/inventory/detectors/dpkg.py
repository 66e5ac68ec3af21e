"""Debian packages from the dpkg database: `/var/lib/dpkg/status` and distroless `status.d/` entries.

Which stanzas count as installed (dpkg's third Status word, "state"):
  kept:    installed, triggers-pending, triggers-awaited, half-configured, unpacked, half-installed;
           the package's files are (at least partly) on disk, so its code can be vulnerable.
           `dpkg -l` lists these too (ii, iT, iW, iF, iU, iH).
  dropped: not-installed, config-files: no code left on disk (only conffiles, or nothing).
  no Status field: kept. Distroless `status.d/` entries never have one and mean "installed"; in
           `status` itself only hand-written databases lack it, and they mean the same.
The first two Status words (want: install/hold/deinstall/purge; error: ok/reinstreq) do not say
whether files are present, so they are not used: "deinstall ok installed" is still installed.

Bad content never raises: a stanza with no Package, no Version, an invalid version (dpkg's own rules,
e.g. `1:5.#`), an unknown or malformed Status, or a line that is neither `Field: value` nor a
continuation is skipped with a warning; the other stanzas of the file are kept. dpkg-query refuses a
whole file for some of these; a scanner reporting what it can is more useful than reporting nothing.

Owned files: `info/<pkg>[:<arch>].list` (every path dpkg unpacked, directories included); when a
package has no `.list` (images with pruned databases), `info/<pkg>[:<arch>].md5sums` (regular files
only); for `status.d/<entry>`, `status.d/<entry>.md5sums`. Conffiles from the stanza are added, since
md5sums files leave them out.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from packageurl import PackageURL

from scanner.ecosystems.distributions import os_ecosystem, purl_distro, purl_namespace
from scanner.inventory.detectors.base import DetectContext, Detector, Extraction, FileSet
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


# ---------------------------------------------------------------- deb822


@dataclass
class Stanza:
    """One deb822 paragraph: field names lower-cased, multi-line values joined with newlines."""

    line: int  # 1-based line number where the paragraph starts
    fields: dict[str, str] = field(default_factory=dict)
    problem: str = ""  # first syntax error met, if any


def parse_deb822(text: str) -> list[Stanza]:
    """Split deb822 text (dpkg status, status.d entries) into paragraphs.

    Paragraphs are separated by blank (or whitespace-only) lines; a line starting with a space or tab
    continues the previous field. Syntax errors are recorded on the paragraph, not raised.
    """
    stanzas: list[Stanza] = []
    current: Stanza | None = None
    last_field = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            current = None
            continue
        if line.startswith("#"):
            continue  # deb822 comment
        if current is None:
            current = Stanza(line=number)
            stanzas.append(current)
            last_field = ""
        last_field = _add_line(current, line, number, last_field)
    return stanzas


def _add_line(stanza: Stanza, line: str, number: int, last_field: str) -> str:
    """Add one line to the paragraph; return the field a following continuation line extends."""
    if line[0].isspace():
        if last_field:
            stanza.fields[last_field] += "\n" + line.strip()
        elif not stanza.problem:
            stanza.problem = f"line {number}: continuation line with no field before it"
        return last_field
    match = _FIELD.fullmatch(line)
    if match is None:
        if not stanza.problem:
            stanza.problem = f"line {number}: not a 'Field: value' line"
        return ""
    name = match.group(1).lower()
    stanza.fields[name] = match.group(2).strip()
    return name


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


def _installed_state(stanza: Stanza) -> tuple[bool, str]:
    """(keep?, problem). No Status field means installed (distroless status.d)."""
    status = stanza.fields.get("status")
    if status is None:
        return True, ""
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


def parse_status(text: str, where: str) -> tuple[list[DebEntry], list[Warning_]]:
    """Installed packages in a dpkg status (or status.d) file, in file order, plus warnings."""
    entries: list[DebEntry] = []
    warnings: list[Warning_] = []
    for stanza in parse_deb822(text):
        entry, problems = _entry(stanza)
        warnings.extend(Warning_(where, f"stanza at line {stanza.line}: {p}") for p in problems)
        if entry is not None:
            entries.append(entry)
    return entries, warnings


def _entry(stanza: Stanza) -> tuple[DebEntry | None, list[str]]:
    """The installed package a stanza describes (None if none or unusable) and what went wrong."""
    name = stanza.fields.get("package", "").strip()
    label = f"package '{name}'" if name else "stanza"
    if stanza.problem:
        return None, [f"{label} skipped: {stanza.problem}"]
    if not name:
        return None, ["skipped: no Package name"]
    keep, problem = _installed_state(stanza)
    if not keep:
        return None, [f"{label} skipped: {problem}"] if problem else []
    version = stanza.fields.get("version", "").strip()
    if not version:
        return None, [f"{label} skipped: no Version"]
    problem = version_problem(version)
    if problem:
        return None, [f"{label} skipped: {problem}"]
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
    """Looks up a package's file list among the captured info/ and status.d/ files."""

    def __init__(self, files: FileSet, present: set[str]) -> None:
        self._files = files
        self._present = present

    def _text(self, path: str) -> str | None:
        if path not in self._present:
            return None
        return self._files.read(path).decode("utf-8", errors="replace")

    def for_info(self, entry: DebEntry) -> frozenset[str]:
        # Multi-Arch: same packages are stored as <name>:<arch>.list; others as <name>.list.
        stems = (f"{INFO}/{entry.name}:{entry.arch}", f"{INFO}/{entry.name}")
        for suffix, parse in ((".list", list_paths), (_MD5SUMS, md5sums_paths)):
            for stem in stems:
                text = self._text(stem + suffix)
                if text is not None:
                    return parse(text) | frozenset(entry.conffiles)
        return frozenset(entry.conffiles)

    def for_status_d(self, entry: DebEntry, entry_path: str) -> frozenset[str]:
        text = self._text(entry_path + _MD5SUMS)
        listed = md5sums_paths(text) if text is not None else frozenset()
        return listed | frozenset(entry.conffiles)


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
    version = 1
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
        owned = _OwnedFiles(files, present)
        result = Extraction()
        if STATUS in present:
            self._read(files, STATUS, ctx, result, owned.for_info)
        for path in sorted(p for p in present if _is_status_d_entry(p)):
            self._read(files, path, ctx, result, partial(owned.for_status_d, entry_path=path))
        return result

    def _read(
        self,
        files: FileSet,
        path: str,
        ctx: DetectContext,
        result: Extraction,
        owner: Callable[[DebEntry], frozenset[str]],
    ) -> None:
        entries, warnings = parse_status(files.read(path).decode("utf-8", errors="replace"), path)
        result.warnings.extend(warnings)
        ecosystem = os_ecosystem(ctx.os)
        for entry in entries:
            result.packages.append(
                RawPackage(
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
            )
