""".NET: NuGet packages of published apps, NuGet lockfiles, and the shared runtimes (OSV ecosystem "NuGet").

Three sources:

- `*.deps.json` anywhere (the dependency manifest `dotnet publish` writes beside `App.dll`, which the host
  reads to load the app): evidence "installed", it is what ships. Its `libraries` section names each
  library `Name/Version` with a `type`: `package` (a NuGet package) is reported, `project` (the app and its
  project references: its own code) and `referenceassembly` (compile-time only) are not. A package is
  reported only when its entry in the runtime target (`targets[runtimeTarget.name]`) carries `runtime`,
  `runtimeTargets` or `native` assets, that is, when it ships code the app loads; meta-packages (old
  `Microsoft.NETCore.App/1.1.2`, `NETStandard.Library`) carry none. A file whose runtime target is absent
  has every package reported (nothing says which ones load). `runtimepack` libraries are the runtime a
  self-contained app carries (`runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.0`): reported under
  the runtime pack's NuGet name, evidence "runtime".
- `packages.lock.json` (NuGet's lockfile, `RestorePackagesWithLockFile`): evidence "lockfile". Entries
  are per target framework (`net8.0`, `net8.0/linux-x64`); each resolved package is reported once;
  `Project` entries are project references (the app's own code) and are skipped.
- The shared frameworks an image installs without a package manager (the official images' tarball install
  in `/usr/share/dotnet`, distribution packages in `/usr/lib/dotnet`, any other `dotnet` root):
  `.../shared/Microsoft.NETCore.App/<version>/` and `.../shared/Microsoft.AspNetCore.App/<version>/`,
  recognised from the directory's own files, evidence "runtime". GHSA publishes .NET runtime advisories
  on the runtime packs, NuGet packages named `<framework>.Runtime.<rid>` (GHSA-rh58-r7jh-xhx3 lists
  `Microsoft.NETCore.App.Runtime.linux-x64`, `...linux-musl-x64`, `...linux-arm64`…; ASP.NET Core
  advisories `Microsoft.AspNetCore.App.Runtime.linux-x64`…), so that is the name reported. The framework
  directory's own `<framework>.deps.json` is the runtime pack's manifest: its `libraries` name the pack
  exactly (`Microsoft.NETCore.App.Runtime.linux-musl-x64/8.0.11`), else its `runtimeTarget`
  (`.NETCoreApp,Version=v8.0/linux-x64`) gives the runtime identifier. The version is the pack's, else the
  last line of the directory's `.version` file (`<commit>\\n8.0.11`), else the directory's name. Without a
  runtime identifier the framework's own name is reported (`Microsoft.NETCore.App`), with a warning: no
  advisory matches it, but the runtime is in the inventory.

Pure: parses the bytes handed over in a FileSet, never touches the filesystem. Bad content (malformed
JSON, a library without a version) is a warning; a file over `max_package_db_bytes`, JSON nested deeper than
Python can parse, more than `MAX_FILES` manifests, more than `MAX_ENTRIES` entries in one file and more
packages than the image may hold are not read past the bound and make the inventory Incomplete.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

from scanner.ecosystems.languages import NUGET
from scanner.inventory.detectors.base import (
    BoundExceeded,
    DetectContext,
    Detector,
    DetectorError,
    Extraction,
    FileSet,
    json_object,
    language_package,
)
from scanner.model.types import Evidence, RawPackage, Warning_

_DEPS = ".deps.json"
_LOCK = "/packages.lock.json"
_VERSION_FILE = "/.version"
_FRAMEWORKS = ("Microsoft.NETCore.App", "Microsoft.AspNetCore.App")
_RUNTIME_PACK = "runtimepack."
# `.../shared/<framework>/<version>/<file>`: the version directory starts with a digit (8.0.11, 9.0.0-rc.1…).
_FRAMEWORK_FILE = re.compile(
    r"^(?P<dir>.*/shared/(?P<fw>Microsoft\.(?:NETCore|AspNetCore)\.App)/(?P<ver>\d[^/]*))/(?P<file>[^/]+)$"
)
# Bounds on hostile images and files (the capture limit already bounds sizes). A big SDK image holds a few
# hundred deps.json files; a big app a few thousand libraries.
MAX_FILES = 10_000
MAX_ENTRIES = 200_000
# NuGet's own limit on a package id is 100 characters; versions get 64 (SemVer 2 with metadata fits).
_MAX_NAME = 100
_MAX_VERSION = 64
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _valid_name(name: str) -> bool:
    return len(name) <= _MAX_NAME and _NAME.match(name) is not None


def _valid_version(version: str) -> bool:
    return bool(version) and len(version) <= _MAX_VERSION and not any(c.isspace() or c == "/" for c in version)


def _framework_file(path: str) -> re.Match[str] | None:
    """The match of a shared framework's `.version` or `<framework>.deps.json`, None for any other path."""
    if "/shared/Microsoft." not in path:
        return None
    match = _FRAMEWORK_FILE.match(path)
    if match is None or match["file"] not in (".version", match["fw"] + _DEPS):
        return None
    return match


def _package(name: str, version: str, path: str, evidence: Evidence, metadata: list[tuple[str, str]]) -> RawPackage:
    return language_package(NUGET, name, version, path, metadata, evidence=evidence)


def _split_library(key: str) -> tuple[str, str] | None:
    name, slash, version = key.partition("/")
    if not slash or not _valid_name(name) or not _valid_version(version):
        return None
    return name, version


@dataclass(frozen=True)
class _Runtime:
    """What a shared framework directory's own files say about it."""

    name: str  # the runtime pack's NuGet name, or the framework's when no runtime identifier is known
    version: str
    location: str
    rid: str


class DotnetDetector(Detector):
    name = "dotnet"
    version = 1
    group = "language"

    def required(self, path: str) -> bool:
        # Hot path (every file of every layer): one C-level suffix check rejects almost everything.
        if path.endswith((_DEPS, _LOCK)):
            return True
        return path.endswith(_VERSION_FILE) and _framework_file(path) is not None

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        frameworks: dict[str, dict[str, str]] = {}  # framework directory -> file name -> path
        found: list[RawPackage] = []
        for count, path in enumerate(self.own_paths(files)):
            if count >= MAX_FILES:
                out.bound(path, f"more than {MAX_FILES} .NET manifests in the image; the rest not read")
                break
            match = _framework_file(path)
            if match is not None:
                frameworks.setdefault(match["dir"], {})[match["file"]] = path
                continue
            if path.endswith(_VERSION_FILE):
                continue
            try:
                data = ctx.read_database(files, path)
                if path.endswith(_LOCK):
                    found += _lock_packages(path, data, out.warnings)
                else:
                    found += _deps_packages(path, data, out.warnings)
            except DetectorError as err:
                out.bound(err.where, err.message)

        for directory, members in sorted(frameworks.items()):
            try:
                runtime = _runtime(directory, members, files, ctx, out.warnings)
            except DetectorError as err:
                out.bound(err.where, err.message)
                continue
            metadata = [("framework", posixpath.basename(posixpath.dirname(directory)))]
            if runtime.rid:
                metadata.append(("rid", runtime.rid))
            found.append(_package(runtime.name, runtime.version, runtime.location, "runtime", metadata))

        for package in found:
            if not out.add_package(package, ctx, package.locations[0]):
                break
        return out


def _runtime(
    directory: str, members: dict[str, str], files: FileSet, ctx: DetectContext, warnings: list[Warning_]
) -> _Runtime:
    framework = posixpath.basename(posixpath.dirname(directory))
    version = posixpath.basename(directory)
    location = directory
    rid = ""
    pack = ""
    version_path = members.get(".version")
    if version_path is not None:
        location = version_path
        lines = [
            line.strip() for line in ctx.read_database(files, version_path).decode("utf-8", "replace").splitlines()
        ]
        stated = next((line for line in reversed(lines) if line), "")
        if _valid_version(stated):
            version = stated
        else:
            warnings.append(Warning_(version_path, f"no version in the file ({stated[:80]!r}); the directory's used"))
    deps_path = members.get(framework + _DEPS)
    if deps_path is not None:
        location = deps_path
        manifest = json_object(deps_path, ctx.read_database(files, deps_path), warnings) or {}
        libraries = manifest.get("libraries")
        prefix = framework + ".Runtime."
        for key in libraries if isinstance(libraries, dict) else ():
            parsed = _split_library(key.removeprefix(_RUNTIME_PACK))
            if parsed is not None and parsed[0].startswith(prefix):
                pack, version = parsed
                rid = pack[len(prefix) :]
                break
        if not rid:
            target = manifest.get("runtimeTarget")
            target_name = target.get("name") if isinstance(target, dict) else None
            if isinstance(target_name, str) and "/" in target_name:
                candidate = target_name.rsplit("/", 1)[1]
                if _valid_name(candidate):
                    rid = candidate
    if rid:
        return _Runtime(pack or f"{framework}.Runtime.{rid}", version, location, rid)
    warnings.append(
        Warning_(location, f"{framework} {version}: no runtime identifier in its files; reported as {framework}")
    )
    return _Runtime(framework, version, location, "")


def _assets(entry: object) -> bool:
    """A target entry ships code the app loads."""
    return isinstance(entry, dict) and any(entry.get(kind) for kind in ("runtime", "runtimeTargets", "native"))


def _deps_packages(path: str, data: bytes, warnings: list[Warning_]) -> Iterator[RawPackage]:
    manifest = json_object(path, data, warnings)
    if manifest is None:
        return
    libraries = manifest.get("libraries")
    if libraries is None:
        return  # a manifest without libraries (trivy's no-libraries case) names no packages
    if not isinstance(libraries, dict):
        warnings.append(Warning_(path, "libraries is not an object; skipped"))
        return
    if len(libraries) > MAX_ENTRIES:
        raise BoundExceeded(path, f"more than {MAX_ENTRIES} libraries; not read")
    runtime_target = manifest.get("runtimeTarget")
    target_name = runtime_target.get("name") if isinstance(runtime_target, dict) else None
    targets = manifest.get("targets")
    target = targets.get(target_name) if isinstance(targets, dict) and isinstance(target_name, str) else None
    seen: set[tuple[str, str]] = set()
    for key, library in libraries.items():
        if not isinstance(library, dict):
            warnings.append(Warning_(path, f"library {key[:120]!r} is not an object; skipped"))
            continue
        kind = library.get("type")
        kind = kind.lower() if isinstance(kind, str) else ""
        if kind not in ("package", "runtimepack"):
            continue  # project (the app's own code), referenceassembly (compile time only), unknown kinds
        parsed = _split_library(key.removeprefix(_RUNTIME_PACK) if kind == "runtimepack" else key)
        if parsed is None:
            warnings.append(Warning_(path, f"library {key[:120]!r} is not Name/Version; skipped"))
            continue
        if isinstance(target, dict) and key in target and not _assets(target[key]):
            continue  # a meta-package: no assets of its own in the app
        if parsed in seen:
            continue
        seen.add(parsed)
        name, version = parsed
        if kind == "runtimepack":
            yield _package(name, version, path, "runtime", [("self_contained", "true")])
        else:
            yield _package(name, version, path, "installed", [])


def _lock_packages(path: str, data: bytes, warnings: list[Warning_]) -> Iterator[RawPackage]:
    lock = json_object(path, data, warnings)
    if lock is None:
        return
    if lock.get("version") not in (1, 2):
        warnings.append(Warning_(path, f"unknown lockfile version {lock.get('version')!r}; read as best we can"))
    frameworks = lock.get("dependencies")
    if not isinstance(frameworks, dict):
        warnings.append(Warning_(path, "dependencies is not an object; skipped"))
        return
    seen: set[tuple[str, str]] = set()
    count = 0
    for framework, entries in frameworks.items():
        if not isinstance(entries, dict):
            warnings.append(Warning_(path, f"target framework {framework[:120]!r} is not an object; skipped"))
            continue
        for name, entry in entries.items():
            count += 1
            if count > MAX_ENTRIES:
                raise BoundExceeded(path, f"more than {MAX_ENTRIES} entries; the rest not read")
            if not isinstance(entry, dict):
                warnings.append(Warning_(path, f"entry {name[:120]!r} is not an object; skipped"))
                continue
            kind = entry.get("type")
            kind = kind.lower() if isinstance(kind, str) else ""
            if kind == "project":
                continue  # a project reference: the app's own code
            version = entry.get("resolved")
            if not _valid_name(name) or not isinstance(version, str) or not _valid_version(version):
                warnings.append(Warning_(path, f"entry {name[:120]!r} has no valid name and version; skipped"))
                continue
            if (name, version) in seen:
                continue
            seen.add((name, version))
            metadata = [("dependency", kind)] if kind else []
            yield _package(name, version, path, "lockfile", metadata)
