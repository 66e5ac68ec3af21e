"""Java archives (jar, war, ear) and the Maven artifacts they carry (OSV ecosystem "Maven").

Identification, per archive:

1. Every usable `pom.properties` (what Maven, Gradle's maven-publish and the bundle plugins write, normally
   at `META-INF/maven/<groupId>/<artifactId>/pom.properties`, but accepted at any path in the archive):
   groupId, artifactId, version. A shaded ("uber") jar holds one per artifact it absorbed, and each is
   reported: that code is in the image. Under `META-INF/maven/<g>/<a>/` the directory names stand in for a
   missing groupId or artifactId; elsewhere the file must hold all three.
2. Only when an archive has no usable pom.properties: its file name (`artifact-1.2.3.jar`) gives artifactId
   and version; failing a version there, `META-INF/MANIFEST.MF` does (Implementation-Version, then
   Bundle-Version, in the main section, then Implementation-Version in a per-entry `Name:` section, where
   old Ant builds such as Apache Axis 1.4 put it). A manifest version with a build stamp after it
   (`1.4 1855 April 22 2006`) is its first word; the whole value is kept as `manifest_version`.
   The groupId is then inferred from the manifest (see `_infer_group`), first that gives a reverse-domain
   name wins:
   a. `Bundle-SymbolicName` (OSGi directives cut): made by bnd / the Maven Bundle Plugin, whose default is
      `${groupId}.${artifactId}`, it gives the groupId only when it ends in `.<artifactId>` (the rest);
      otherwise bnd may have rewritten it (`org.apache.commons.lang3` for commons-lang3) and it is not
      used. Written by hand (Ant builds: Apache Ivy's `org.apache.ivy`), it is the project's root package,
      which by convention is its groupId, and is used as is.
   b. `Implementation-Vendor-Id`: Maven Archiver wrote the groupId there (before 3.5.0).
   c. `Automatic-Module-Name`: less a trailing `.<artifactId>` (`io.micronaut.micronaut_aop` for
      micronaut-aop), otherwise as is (`com.fasterxml.jackson.core` for jackson-core); a module name that
      is just the artifactId (`spring.web`) is not a groupId.
   d. `Implementation-Title`, its first reverse-domain word (`org.elasticsearch#server;8.14.3`).
   This is osv-scalibr's idea (it tries Bundle-SymbolicName first, then vendor and title fields) and
   trivy's (Implementation-Vendor-Id, then Bundle-SymbolicName less its last segment), made stricter:
   only lower-case dotted names, and bnd's rewritten names refused. A jar so identified is
   `pkg:maven/<group>/<artifact>@<version>` with `group_from` naming the field, matchable against Maven
   advisories; without a group it is `pkg:maven/<artifact>@<version>` (inventory only). The `evidence`
   metadata says where the version came from (`filename` or `MANIFEST.MF`). An archive with no version
   anywhere (application classes, `app.jar` without a manifest version) is skipped silently.

Archives nested in archives (Spring Boot `BOOT-INF/lib`, `WEB-INF/lib`, an ear's modules, any `*.jar`,
`*.war`, `*.ear` member) are opened from memory down to `MAX_NESTING` levels. Archives are hostile input:
every member is read through a size cap rather than trusting the sizes the zip declares, and all reads
under one top-level archive share a budget of `MAX_INFLATED_BYTES` (zip bombs, overlapping entries), a
cap on entries per archive and on nested archives. Over a bound, what was read is kept and the rest is
not read: the inventory is Incomplete (a bound is never a warning). A zip that is not readable, or a
member that cannot be decompressed, is bad content: a warning.

A package found in a nested archive is located at the top-level archive (the file in the image) and names
the nested path in its `archive` metadata (`BOOT-INF/lib/a.jar!/lib/b.jar`). One package is reported per
(groupId, artifactId, version) per top-level archive.

Pure: parses the bytes handed over in a FileSet, never touches the filesystem.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections import deque
from dataclasses import dataclass

from scanner.ecosystems.languages import MAVEN
from scanner.inventory.detectors.base import (
    ZIP_ERRORS,
    DetectContext,
    Detector,
    Extraction,
    FileSet,
    language_package,
)
from scanner.model.types import RawPackage, Warning_

_ARCHIVES = (".jar", ".war", ".ear")
# Levels of archives inside the top-level one (a Spring Boot jar inside an ear is 2).
MAX_NESTING = 4
# Decompressed bytes read under one top-level archive, nested archives included.
MAX_INFLATED_BYTES = 512 * 1024 * 1024
# pom.properties and MANIFEST.MF are a few KB; anything bigger is not one.
MAX_METADATA_FILE = 1024 * 1024
# Entries in one archive's central directory, and nested archives under one top-level archive.
MAX_ENTRIES = 200_000
MAX_NESTED_ARCHIVES = 5_000

# Maven coordinates: groupId and artifactId are restricted to these characters by Maven itself.
_COORDINATE = re.compile(r"[A-Za-z0-9_.\-]{1,256}\Z")
_VERSION = re.compile(r"[!-~]{1,128}\Z")
# `name-1.2.3`, `name_2.13-4.0.7`, `name-1.0.0-alpha`: the version starts at the first "-" + digit.
_NAME_VERSION = re.compile(r"(.+?)-(\d.*)\Z")
_POM_PROPERTIES = re.compile(r"META-INF/maven/([^/]+)/([^/]+)/pom\.properties\Z")
_GROUP = re.compile(r"[a-z][a-z0-9_\-]*(?:\.[a-z0-9_\-]+)+")
# Manifest fields a groupId is inferred from, in order (see the module docstring).
_GROUP_FIELDS = ("Bundle-SymbolicName", "Implementation-Vendor-Id", "Automatic-Module-Name", "Implementation-Title")


@dataclass(frozen=True)
class _Artifact:
    group: str
    artifact: str
    version: str
    archive: str  # nested path inside the top-level archive, "" for the archive itself
    evidence: str  # "pom.properties", "filename" or "MANIFEST.MF"
    extra: tuple[tuple[str, str], ...] = ()  # group_from, manifest_version


@dataclass
class _Budget:
    """Shared by every read under one top-level archive."""

    remaining: int
    archives: int = 0


class _OverBudget(Exception):
    pass


class JavaDetector(Detector):
    name = "java"
    version = 2
    group = "language"
    per_file = True

    def required(self, path: str) -> bool:
        # Hot path (every file of every layer): one C-level suffix check. Upper-case suffixes are rare
        # enough in images not to cost a lower() on every path.
        return path.endswith(_ARCHIVES)

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        for path, data in self.read_each(files, out):
            found: dict[tuple[str, str, str], _Artifact] = {}
            for artifact in _scan(path, data, out.warnings, out.incomplete):
                found.setdefault((artifact.group, artifact.artifact, artifact.version), artifact)
            for artifact in found.values():
                if not out.add_package(_package(path, artifact), ctx, path):
                    return out
        return out


def _package(path: str, artifact: _Artifact) -> RawPackage:
    name = f"{artifact.group}:{artifact.artifact}" if artifact.group else artifact.artifact
    metadata = [("evidence", artifact.evidence), *artifact.extra]
    if artifact.archive:
        metadata.append(("archive", artifact.archive))
    return language_package(
        MAVEN, name, artifact.version, path, metadata, purl_namespace=artifact.group, purl_name=artifact.artifact
    )


def _scan(path: str, data: bytes, warnings: list[Warning_], incomplete: list[Warning_]) -> list[_Artifact]:
    """Every artifact in the archive at `path` and in the archives nested in it (breadth first); the bounds
    hit go to `incomplete`."""
    budget = _Budget(remaining=MAX_INFLATED_BYTES)
    found: list[_Artifact] = []
    # (bytes, nested path inside the top-level archive, nesting level)
    queue: deque[tuple[bytes, str, int]] = deque([(data, "", 0)])
    while queue:
        blob, inner, level = queue.popleft()
        where = f"{path}!/{inner}" if inner else path
        try:
            archive = zipfile.ZipFile(io.BytesIO(blob))
        except ZIP_ERRORS as err:
            warnings.append(Warning_(where, f"not a readable zip archive ({err}); skipped"))
            continue
        with archive:
            try:
                nested = _read_archive(archive, inner, level, where, budget, found, warnings, incomplete)
            except _OverBudget:
                incomplete.append(
                    Warning_(path, f"more than {MAX_INFLATED_BYTES} bytes to decompress; the rest not read")
                )
                return found
        queue.extend(nested)
    return found


def _read_archive(
    archive: zipfile.ZipFile,
    inner: str,
    level: int,
    where: str,
    budget: _Budget,
    found: list[_Artifact],
    warnings: list[Warning_],
    incomplete: list[Warning_],
) -> list[tuple[bytes, str, int]]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        incomplete.append(Warning_(where, f"more than {MAX_ENTRIES} entries; not read"))
        return []
    poms: list[zipfile.ZipInfo] = []
    manifest: zipfile.ZipInfo | None = None
    children: list[zipfile.ZipInfo] = []
    for info in infos:
        name = info.filename
        if info.is_dir():
            continue
        if name == "pom.properties" or name.endswith("/pom.properties"):
            poms.append(info)
        elif name == "META-INF/MANIFEST.MF":
            manifest = info
        elif name.lower().endswith(_ARCHIVES):
            children.append(info)

    usable = 0
    for info in poms:
        text = _read_text(archive, info, where, budget, warnings, incomplete)
        if text is not None:
            artifact = _from_pom_properties(text, info.filename, inner, where, warnings)
            if artifact is not None:
                found.append(artifact)
                usable += 1
    if not usable:
        text = None if manifest is None else _read_text(archive, manifest, where, budget, warnings, incomplete)
        artifact = _from_name(inner or where, text, inner)
        if artifact is not None:
            found.append(artifact)

    nested: list[tuple[bytes, str, int]] = []
    if children and level >= MAX_NESTING:
        incomplete.append(Warning_(where, f"archives nested deeper than {MAX_NESTING} levels; not read"))
        return nested
    for info in children:
        if budget.archives >= MAX_NESTED_ARCHIVES:
            incomplete.append(Warning_(where, f"more than {MAX_NESTED_ARCHIVES} nested archives; the rest not read"))
            break
        budget.archives += 1
        blob = _read(archive, info, budget.remaining, where, warnings)
        if blob is None:
            continue
        _spend(budget, len(blob))
        nested.append((blob, f"{inner}!/{info.filename}" if inner else info.filename, level + 1))
    return nested


def _spend(budget: _Budget, size: int) -> None:
    budget.remaining -= size
    if budget.remaining < 0:
        raise _OverBudget


def _read(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, where: str, warnings: list[Warning_]
) -> bytes | None:
    """A member's content, at most `cap` bytes. Declared sizes are not trusted: reading stops at cap + 1
    whatever the header says, so a bomb costs at most cap + 1 bytes."""
    if cap <= 0:
        raise _OverBudget
    try:
        with archive.open(info) as member:
            data = member.read(cap + 1)
    except ZIP_ERRORS as err:
        warnings.append(Warning_(where, f"member {info.filename} unreadable ({err}); skipped"))
        return None
    if len(data) > cap:
        raise _OverBudget
    return data


def _read_text(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    where: str,
    budget: _Budget,
    warnings: list[Warning_],
    incomplete: list[Warning_],
) -> str | None:
    if info.file_size > MAX_METADATA_FILE:
        incomplete.append(Warning_(where, f"{info.filename} larger than {MAX_METADATA_FILE} bytes; not read"))
        return None
    data = _read(archive, info, min(MAX_METADATA_FILE, budget.remaining), where, warnings)
    if data is None:
        return None
    _spend(budget, len(data))
    # Both formats are specified as ISO-8859-1 (properties) or UTF-8 (manifest); the fields we use are
    # ASCII, so a lenient UTF-8 decode loses nothing that matters.
    return data.decode("utf-8", errors="replace")


def _properties(text: str) -> dict[str, str]:
    """java.util.Properties format: `key=value`, `key: value` or `key value`, `#`/`!` comments, a trailing
    backslash continues a line. Unicode escapes are not decoded (Maven coordinates never need them)."""
    values: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.lstrip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        match = re.match(r"((?:[^\\:=\s]|\\.)+)\s*[:=\s]\s*(.*)\Z", line)
        if match:
            values.setdefault(match.group(1), match.group(2).strip())
    return values


def _from_pom_properties(text: str, member: str, inner: str, where: str, warnings: list[Warning_]) -> _Artifact | None:
    values = _properties(text)
    path_match = _POM_PROPERTIES.match(member)
    # Under META-INF/maven the directory names are groupId/artifactId too; the file's own values win.
    group = values.get("groupId") or (path_match.group(1) if path_match else "")
    artifact = values.get("artifactId") or (path_match.group(2) if path_match else "")
    version = values.get("version", "")
    if not (_COORDINATE.match(group) and _COORDINATE.match(artifact) and _VERSION.match(version)):
        warnings.append(Warning_(where, f"{member}: unusable coordinates {group!r}:{artifact!r}:{version!r}; skipped"))
        return None
    return _Artifact(group, artifact, version, inner, "pom.properties")


def _manifest(text: str) -> list[dict[str, str]]:
    """A JAR manifest's sections, the main one first: `Name: value` lines, continuation lines start with one
    space, sections are separated by blank lines (several in a row are one separator)."""
    sections: list[dict[str, str]] = [{}]
    key = ""
    for line in text.splitlines():
        if not line:
            if sections[-1]:
                sections.append({})
            key = ""
            continue
        if line[0] == " ":
            if key:
                sections[-1][key] += line[1:]
            continue
        name, sep, value = line.partition(":")
        key = name.strip() if sep else ""
        if key:
            sections[-1].setdefault(key, value.strip())
    return [section for index, section in enumerate(sections) if section or index == 0]


def _manifest_version(sections: list[dict[str, str]]) -> str:
    main, entries = sections[0], sections[1:]
    candidates = [main.get("Implementation-Version"), main.get("Bundle-Version")]
    candidates += [entry.get("Implementation-Version") for entry in entries]
    return next((value.strip("\"' ") for value in candidates if value and value.strip("\"' ")), "")


def _infer_group(sections: list[dict[str, str]], artifact: str) -> tuple[str, str]:
    """(groupId, the field it came from) from a manifest, or ("", ""): see the module docstring."""
    main = sections[0]
    bnd = "Bundle Plugin" in main.get("Created-By", "") or main.get("Tool", "").startswith("Bnd")
    bnd = bnd or "Bnd-LastModified" in main
    # The artifactId as a module or bundle name spells it: `micronaut-aop` is `micronaut_aop` or `micronaut.aop`.
    spellings = {artifact.lower(), artifact.lower().replace("-", "_"), artifact.lower().replace("-", ".")}
    for field in _GROUP_FIELDS:
        for raw in (section[field] for section in sections if field in section):
            value = raw.split(";")[0].strip()
            if field == "Implementation-Title":
                first = re.match(r"[A-Za-z0-9_.\-]+", value)
                value = first.group(0) if first else ""
            elif field == "Automatic-Module-Name" or (field == "Bundle-SymbolicName" and bnd):
                value = _less_artifact(value, spellings, keep_other=field == "Automatic-Module-Name")
            if _GROUP.fullmatch(value) and len(value) <= 256 and value not in spellings:
                return value, field
    return "", ""


def _less_artifact(value: str, spellings: set[str], *, keep_other: bool) -> str:
    """`value` less a trailing `.<artifactId>`; a value without one is kept (`keep_other`) or refused ("")."""
    for spelling in spellings:
        if value.endswith("." + spelling):
            return value[: -len(spelling) - 1]
    return value if keep_other else ""


def _from_name(archive_name: str, manifest: str | None, inner: str) -> _Artifact | None:
    """The fallback for an archive without a usable pom.properties: `artifact-1.2.3.jar` is how Maven, Gradle
    and Spring Boot name the archives they copy, so the file name gives artifactId and version; the manifest
    gives the version when the name has none (`app.jar`), and the groupId when it can (see the module
    docstring)."""
    stem = posixpath.basename(archive_name).rsplit(".", 1)[0]
    split = _NAME_VERSION.match(stem)
    artifact, version = (split.group(1), split.group(2)) if split else (stem, "")
    evidence = "filename"
    extra: list[tuple[str, str]] = []
    sections = _manifest(manifest) if manifest is not None else [{}]
    if not version and manifest is not None:
        full = _manifest_version(sections)
        # `1.4 1855 April 22 2006`: the version, a build number and a date; the version is the first word.
        version = full.split()[0] if full else ""
        if version != full:
            extra.append(("manifest_version", full[:200]))
        evidence = "MANIFEST.MF"
    if not (version and _VERSION.match(version) and _COORDINATE.match(artifact)):
        return None
    group, field = _infer_group(sections, artifact)
    if group:
        extra.insert(0, ("group_from", field))
    return _Artifact(group, artifact, version, inner, evidence, tuple(extra))
