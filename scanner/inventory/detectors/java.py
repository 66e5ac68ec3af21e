"""Java archives (jar, war, ear) and the Maven artifacts they carry (OSV ecosystem "Maven").

Identification, per archive:

1. Every `META-INF/maven/<groupId>/<artifactId>/pom.properties` (what Maven, Gradle's maven-publish and the
   bundle plugins write): groupId, artifactId, version. A shaded ("uber") jar holds one per artifact it
   absorbed, and each is reported: that code is in the image.
2. Only when an archive has no pom.properties at all: its file name (`artifact-1.2.3.jar`), or failing
   that `META-INF/MANIFEST.MF` (Implementation-Version, Bundle-Version) with the file name as artifactId.
   No groupId is guessed (see `_from_name`), so these are reported as `pkg:maven/<artifact>@<version>`
   with `evidence=filename` or `evidence=MANIFEST.MF`: inventory, not matchable against Maven advisories.
   An archive with no version anywhere (application classes, `app.jar` without a manifest version) is
   skipped silently.

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
import zlib
from collections import deque
from dataclasses import dataclass

from scanner.ecosystems.languages import MAVEN
from scanner.inventory.detectors.base import (
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

# What reading a broken or hostile zip can raise: corrupt structures and streams, truncation, encrypted
# members (RuntimeError), unsupported compression methods (NotImplementedError).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    RuntimeError,
    ValueError,
    NotImplementedError,
)
# Maven coordinates: groupId and artifactId are restricted to these characters by Maven itself.
_COORDINATE = re.compile(r"[A-Za-z0-9_.\-]{1,256}\Z")
_VERSION = re.compile(r"[!-~]{1,128}\Z")
# `name-1.2.3`, `name_2.13-4.0.7`, `name-1.0.0-alpha`: the version starts at the first "-" + digit.
_NAME_VERSION = re.compile(r"(.+?)-(\d.*)\Z")
_POM_PROPERTIES = re.compile(r"META-INF/maven/([^/]+)/([^/]+)/pom\.properties\Z")


@dataclass(frozen=True)
class _Artifact:
    group: str
    artifact: str
    version: str
    archive: str  # nested path inside the top-level archive, "" for the archive itself
    evidence: str  # "pom.properties", "filename" or "MANIFEST.MF"


@dataclass
class _Budget:
    """Shared by every read under one top-level archive."""

    remaining: int
    archives: int = 0


class _OverBudget(Exception):
    pass


class JavaDetector(Detector):
    name = "java"
    version = 1
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
    metadata = [("evidence", artifact.evidence)]
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
        except _ZIP_ERRORS as err:
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
        if _POM_PROPERTIES.match(name):
            poms.append(info)
        elif name == "META-INF/MANIFEST.MF":
            manifest = info
        elif name.lower().endswith(_ARCHIVES):
            children.append(info)

    for info in poms:
        text = _read_text(archive, info, where, budget, warnings, incomplete)
        if text is not None:
            artifact = _from_pom_properties(text, info.filename, inner, where, warnings)
            if artifact is not None:
                found.append(artifact)
    if not poms:
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
    except _ZIP_ERRORS as err:
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
    assert path_match is not None  # only called for members that matched
    # The directory names are groupId/artifactId too; the file's own values win when present.
    group = values.get("groupId") or path_match.group(1)
    artifact = values.get("artifactId") or path_match.group(2)
    version = values.get("version", "")
    if not (_COORDINATE.match(group) and _COORDINATE.match(artifact) and _VERSION.match(version)):
        warnings.append(Warning_(where, f"{member}: unusable coordinates {group!r}:{artifact!r}:{version!r}; skipped"))
        return None
    return _Artifact(group, artifact, version, inner, "pom.properties")


def _manifest(text: str) -> dict[str, str]:
    """The main section of a JAR manifest: `Name: value`, continuation lines start with one space."""
    values: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line:
            break  # end of the main section
        if line[0] == " ":
            if key:
                values[key] += line[1:]
            continue
        name, sep, value = line.partition(":")
        key = name.strip() if sep else ""
        if key:
            values.setdefault(key, value.strip())
    return values


def _from_name(archive_name: str, manifest: str | None, inner: str) -> _Artifact | None:
    """The fallback for an archive without pom.properties: `artifact-1.2.3.jar` is how Maven, Gradle and
    Spring Boot name the archives they copy, so the file name gives artifactId and version; the manifest's
    Implementation-Version or Bundle-Version is used when the name has none (`app.jar`). No groupId:
    manifests do not carry one reliably (Implementation-Vendor-Id is `org.apache` in old Apache Commons
    jars, Bundle-SymbolicName is a package name as often as a groupId), and a wrong one is worse than none.
    """
    stem = posixpath.basename(archive_name).rsplit(".", 1)[0]
    split = _NAME_VERSION.match(stem)
    artifact, version = (split.group(1), split.group(2)) if split else (stem, "")
    evidence = "filename"
    if not version and manifest is not None:
        values = _manifest(manifest)
        version = (values.get("Implementation-Version") or values.get("Bundle-Version") or "").strip("\"' ")
        evidence = "MANIFEST.MF"
    if not (version and _VERSION.match(version) and _COORDINATE.match(artifact)):
        return None
    return _Artifact("", artifact, version, inner, evidence)
