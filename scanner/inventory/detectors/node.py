"""npm packages: installed `node_modules` trees and npm lockfiles (OSV ecosystem "npm").

Two sources, one truth:

- `.../node_modules/<name>/package.json` and `.../node_modules/@scope/<name>/package.json`, at any nesting
  depth, are packages on disk: always reported (dev, private or not: if it is in the image, its code is).
- `package-lock.json` / `npm-shrinkwrap.json` outside `node_modules` (lockfile v1, v2, v3) list what
  *would* be installed. An image that ran `npm ci --omit=dev` still carries the dev entries in its lockfile,
  so once a tree is installed its lockfile says nothing the tree does not say better. Rule: a lockfile
  entry is reported only when no installed package.json was found under the same top-level
  `node_modules` directory the entry would live in (`/app/node_modules` for
  `/app/package-lock.json`'s `node_modules/x`, `/app/packages/a/node_modules` for a workspace's
  `packages/a/node_modules/y`). What is left is a lockfile whose tree is absent (bundled apps, multi-stage
  builds that copied the lockfile only). Every package is reported once per (name, version, install path),
  the package.json winning over any lockfile; a shrinkwrap wins over a package-lock, as in npm.
- `node_modules/.package-lock.json` (npm 7+'s "hidden lockfile") is not read: it is npm's cache of the very
  tree whose package.json files we read, so it can only duplicate them or, when stale, name packages that
  are no longer on disk.

- `yarn.lock` (yarn v1's own text format, and Berry's YAML, told apart by Berry's `__metadata` key) and
  `pnpm-lock.yaml` (lockfileVersion 5.x, 6.x and 9.0) outside `node_modules` obey the same rule as
  package-lock.json: reported only when no installed tree sits beside them (pnpm's own
  `node_modules/.pnpm/<name>@<version>/node_modules/<name>/package.json` is such a tree). They say nothing
  about where a package lands (yarn hoists, pnpm links), so their packages carry no `install_path`; each
  (name, version) is reported once per lockfile. Only packages from the npm registry are reported: yarn v1
  entries whose every specifier is a registry range, a tag or an `npm:` alias (the alias under the real
  name); Berry entries whose `resolution` is `name@npm:<version>` (or a `patch:` of one: yarn's built-in
  compatibility patches change a few lines, not the version advisories are about); pnpm packages whose
  key is `name@<version>` (v6 and v9; `/name/<version>` in v5), with peer suffixes (`(react@18.2.0)`,
  `_react@18.2.0`) stripped and scoped names kept. Workspaces and links (`workspace:`, `link:`, `portal:`,
  `file:` directories and tarballs) are the application's own code, and git or URL sources are not
  registry releases: neither is reported. pnpm v5/v6 `dev: true` becomes the `dev` flag (v9 does not say).
  YAML is read with the safe loader (libyaml when present; its nesting limit holds, and aliases are
  shared, never copied: nothing here walks deeper than an entry's own fields), bounded by `MAX_YAML_BYTES`.

Lockfile packages have evidence "lockfile"; package.json ones "installed".

In lockfiles v2/v3 (`packages`), the root entry `""` is the project itself and entries outside any
`node_modules` (`packages/a`) are workspace sources: both are the project's own code, not dependencies,
and are skipped. `link: true` entries are symlinks to those workspace sources and are skipped too (the
target is skipped for the reason above). Dev, optional and peer entries are reported with a
`dev`/`optional`/`peer` metadata flag so a consumer can filter them. In lockfile v1, versions that are not
registry versions (`file:`, `git+https:`, tarball URLs) are skipped but their nested dependencies are
not; `npm:name@version` aliases are reported under the real name.

Pure: parses the bytes handed over in a FileSet, never touches the filesystem. Bad content (malformed JSON,
an entry without a version) is a warning, but a yarn.lock or pnpm-lock.yaml that cannot be parsed at all is
Incomplete; a file over `max_package_db_bytes`, JSON nested deeper than Python
can parse, a lockfile over `MAX_LOCK_ENTRIES` or `MAX_LOCK_DEPTH`, and more packages than the image may hold
are not read past the bound and make the inventory Incomplete.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from scanner.ecosystems.languages import NPM
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

_NODE_MODULES = "/node_modules/"
_MANIFEST = "/package.json"
_LOCKFILES = ("/package-lock.json", "/npm-shrinkwrap.json", "/yarn.lock", "/pnpm-lock.yaml")
_YARN, _PNPM = "/yarn.lock", "/pnpm-lock.yaml"
_WANTED = (_MANIFEST, *_LOCKFILES)
# Bounds on hostile lockfiles (the capture limit already bounds their size). Real trees nest a few tens of
# levels and real lockfiles hold tens of thousands of entries.
MAX_LOCK_DEPTH = 128
MAX_LOCK_ENTRIES = 500_000
# npm's own limit on a name is 214 characters; versions get the same room.
_MAX_FIELD = 214
# YAML lockfiles are parsed whole into Python objects, several times their size: real ones are a few MB.
MAX_YAML_BYTES = 32 * 1024 * 1024
# A registry version as pnpm writes it in a package key (semver, with prerelease and build parts).
_PNPM_VERSION = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?\Z")


@dataclass(frozen=True)
class _Entry:
    """One package a lockfile names."""

    name: str
    version: str
    install_path: str  # absolute directory the package would be installed in
    flags: tuple[str, ...]  # "dev", "optional", "peer"
    license: str
    # False when the lockfile does not say where the package is installed (yarn, pnpm): `install_path` is
    # then only the lockfile's node_modules, for the installed-tree rule, and is not reported.
    placed: bool = True


def _installed_manifest(path: str) -> bool:
    """`path` (ending in /package.json) is `.../node_modules/<name>/package.json` or
    `.../node_modules/@scope/<name>/package.json`, not a file deeper inside a package."""
    start = path.rfind(_NODE_MODULES)
    if start < 0:
        return False
    rel = path[start + len(_NODE_MODULES) : -len(_MANIFEST)]
    # Dot directories (.bin, .cache, .pnpm itself) are npm's or other tools' housekeeping, not packages.
    if not rel or rel[0] == ".":
        return False
    slash = rel.find("/")
    if slash < 0:
        return rel[0] != "@"  # a scope directory holds packages, it is not one
    scoped = rel[slash + 1 :]
    return rel[0] == "@" and slash > 1 and bool(scoped) and scoped[0] != "." and "/" not in scoped


def _top_node_modules(path: str) -> str:
    """The outermost `node_modules` directory on `path` (`/app/node_modules/a/node_modules/b` ->
    `/app/node_modules`), or "" if there is none."""
    start = (path + "/").find(_NODE_MODULES)
    return "" if start < 0 else path[: start + len(_NODE_MODULES) - 1]


def _split_name(name: str) -> tuple[str, str] | None:
    """(namespace, name) of a package name (`@scope/a` -> (`@scope`, `a`)), None if it is not one."""
    if not name or len(name) > _MAX_FIELD or any(c.isspace() for c in name):
        return None
    if name[0] == "@":
        scope, slash, short = name.partition("/")
        if not slash or len(scope) < 2 or not short or "/" in short:
            return None
        return scope, short
    if "/" in name:
        return None
    return "", name


def _valid_version(version: str) -> bool:
    return bool(version) and len(version) <= _MAX_FIELD and not any(c.isspace() for c in version)


def _license(value: object) -> str:
    # package.json has a string (SPDX expression); old manifests an object {"type": ..., "url": ...}.
    if isinstance(value, dict):
        value = value.get("type")
    return value if isinstance(value, str) and len(value) <= _MAX_FIELD else ""


class NodeDetector(Detector):
    name = "node"
    version = 2
    group = "language"

    def required(self, path: str) -> bool:
        # Hot path (every file of every layer): one C-level suffix check rejects almost everything.
        if not path.endswith(_WANTED):
            return False
        if path.endswith(_MANIFEST):
            return _installed_manifest(path)
        return _NODE_MODULES not in path

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        manifests: list[str] = []
        # Sorted paths put npm-shrinkwrap.json before package-lock.json in a directory: npm's precedence.
        lockfiles: list[str] = []
        for path in self.own_paths(files):
            (manifests if path.endswith(_MANIFEST) else lockfiles).append(path)

        found: dict[tuple[str, str, str], RawPackage] = {}
        installed_roots: set[str] = set()
        for path in manifests:
            # Any manifest, even a broken one, shows the tree was installed here.
            installed_roots.add(_top_node_modules(path))
            try:
                package = _from_manifest(path, ctx.read_database(files, path), out.warnings)
            except DetectorError as err:
                out.bound(err.where, err.message)
                continue
            if package is not None:
                found.setdefault((package.name, package.version, posixpath.dirname(path)), package)

        for path in lockfiles:
            try:
                for entry in _any_lock_entries(path, ctx.read_database(files, path), out.warnings):
                    if _top_node_modules(entry.install_path) in installed_roots:
                        continue  # the installed tree is the truth for this part of the lockfile
                    key = (entry.name, entry.version, entry.install_path)
                    if key not in found:
                        found[key] = _package(
                            entry.name,
                            entry.version,
                            path,
                            entry.install_path if entry.placed else "",
                            entry.flags,
                            entry.license,
                            "lockfile",
                        )
            except DetectorError as err:  # what the lockfile gave before the bound is kept
                out.bound(err.where, err.message)

        for package in sorted(found.values(), key=lambda p: (p.locations, _install_path(p), p.name, p.version)):
            if not out.add_package(package, ctx, package.locations[0]):
                break
        return out


def _install_path(package: RawPackage) -> str:
    return dict(package.metadata).get("install_path", "")


def _package(
    name: str,
    version: str,
    location: str,
    install_path: str,
    flags: tuple[str, ...],
    licence: str,
    evidence: Evidence = "installed",
) -> RawPackage:
    namespace, short = _split_name(name) or ("", name)
    metadata = [("install_path", install_path)] if install_path else []
    metadata += [(flag, "true") for flag in flags]
    if licence:
        metadata.append(("license", licence))
    return language_package(
        NPM, name, version, location, metadata, purl_namespace=namespace, purl_name=short, evidence=evidence
    )


def _from_manifest(path: str, data: bytes, warnings: list[Warning_]) -> RawPackage | None:
    manifest = json_object(path, data, warnings)
    if manifest is None:
        return None
    name, version = manifest.get("name"), manifest.get("version")
    if name is None and version is None:
        # A stub manifest (test fixtures shipped inside packages, `{"main": ...}` shims): npm cannot
        # publish it, so it is not an installed package. Common enough that warning would be noise.
        return None
    if not isinstance(name, str) or _split_name(name) is None:
        warnings.append(Warning_(path, f"package.json has no valid name ({name!r}); skipped"))
        return None
    if not isinstance(version, str) or not _valid_version(version.strip()):
        warnings.append(Warning_(path, f"package.json of {name} has no valid version ({version!r}); skipped"))
        return None
    return _package(name, version.strip(), path, posixpath.dirname(path), (), _license(manifest.get("license")))


def _flags(entry: dict[str, Any]) -> tuple[str, ...]:
    flags = [flag for flag in ("dev", "optional", "peer") if entry.get(flag) is True]
    # npm writes devOptional for a package that is a dev dependency of one path and optional of another.
    if entry.get("devOptional") is True:
        flags += [flag for flag in ("dev", "optional") if flag not in flags]
    return tuple(flags)


def _lock_entries(path: str, data: bytes, warnings: list[Warning_]) -> Iterator[_Entry]:
    lock = json_object(path, data, warnings)
    if lock is None:
        return
    root = posixpath.dirname(path)
    lock_version = lock.get("lockfileVersion")
    if lock_version not in (1, 2, 3):
        warnings.append(Warning_(path, f"unknown lockfileVersion {lock_version!r}; read as best we can"))
    packages, dependencies = lock.get("packages"), lock.get("dependencies")
    # v2 carries both sections for old npm versions; `packages` is the complete one.
    if isinstance(packages, dict) and lock_version != 1:
        yield from _packages_section(path, root, packages, warnings)
    elif isinstance(dependencies, dict):
        yield from _dependencies_section(path, root, dependencies, warnings)
    elif packages is not None or dependencies is not None:
        warnings.append(Warning_(path, "lockfile packages/dependencies is not an object; skipped"))


def _packages_section(path: str, root: str, packages: dict[str, Any], warnings: list[Warning_]) -> Iterator[_Entry]:
    """Lockfile v2/v3: keys are install paths relative to the lockfile's directory."""
    for count, (key, entry) in enumerate(packages.items()):
        if count >= MAX_LOCK_ENTRIES:
            raise BoundExceeded(path, f"more than {MAX_LOCK_ENTRIES} entries; the rest not read")
        # "" is the project; keys outside node_modules are workspace sources: the project's own code.
        if not (key.startswith("node_modules/") or "/node_modules/" in key):
            continue
        if not isinstance(entry, dict):
            warnings.append(Warning_(path, f"entry {key!r} is not an object; skipped"))
            continue
        if entry.get("link") is True:
            continue  # a symlink to a workspace source, skipped above
        # An alias (`"x": "npm:y@1"`) installs y under node_modules/x and records "name": "y".
        name = entry.get("name", key.rsplit("node_modules/", 1)[1])
        version = entry.get("version")
        if not isinstance(name, str) or _split_name(name) is None:
            warnings.append(Warning_(path, f"entry {key!r} has no valid name ({name!r}); skipped"))
            continue
        if not isinstance(version, str) or not _valid_version(version):
            warnings.append(Warning_(path, f"entry {key!r} has no valid version ({version!r}); skipped"))
            continue
        install_path = posixpath.normpath(posixpath.join(root, key))
        yield _Entry(name, version, install_path, _flags(entry), _license(entry.get("license")))


def _dependencies_section(
    path: str, root: str, dependencies: dict[str, Any], warnings: list[Warning_]
) -> Iterator[_Entry]:
    """Lockfile v1: a tree of `dependencies`, each nested one `node_modules` deeper than its parent.

    Walked iteratively with an explicit stack: recursion on hostile input would hit Python's limit.
    """
    stack: list[tuple[dict[str, Any], str, int]] = [(dependencies, root, 1)]
    count = 0
    too_deep = False
    while stack:
        deps, parent, depth = stack.pop()
        for key, entry in deps.items():
            count += 1
            if count > MAX_LOCK_ENTRIES:
                raise BoundExceeded(path, f"more than {MAX_LOCK_ENTRIES} entries; the rest not read")
            if not isinstance(entry, dict) or _split_name(key) is None:
                warnings.append(Warning_(path, f"dependency {key!r} is not a package entry; skipped"))
                continue
            install_path = posixpath.join(parent, "node_modules", key)
            nested = entry.get("dependencies")
            if isinstance(nested, dict) and nested:
                if depth < MAX_LOCK_DEPTH:
                    stack.append((nested, install_path, depth + 1))
                else:
                    too_deep = True
            version = entry.get("version")
            if not isinstance(version, str):
                warnings.append(Warning_(path, f"dependency {key!r} has no valid version ({version!r}); skipped"))
                continue
            name = key
            if version.startswith("npm:"):
                # Alias: "npm:<real name>@<version>"; the real name may be scoped, so split at the last @.
                name, _, version = version[4:].rpartition("@")
                if _split_name(name) is None:
                    warnings.append(Warning_(path, f"dependency {key!r} has a bad alias; skipped"))
                    continue
            elif ":" in version or "/" in version:
                continue  # file:, link:, git+…, github:user/repo, tarball URL: not a registry version
            if not _valid_version(version):
                warnings.append(Warning_(path, f"dependency {key!r} has no valid version ({version!r}); skipped"))
                continue
            yield _Entry(name, version, install_path, _flags(entry), "")
    if too_deep:  # raised once the levels within the bound are read, so that they are kept
        raise BoundExceeded(path, f"dependencies nested deeper than {MAX_LOCK_DEPTH}; the deeper ones not read")


def _any_lock_entries(path: str, data: bytes, warnings: list[Warning_]) -> Iterator[_Entry]:
    if path.endswith(_YARN):
        return _yarn_entries(path, data, warnings)
    if path.endswith(_PNPM):
        return _pnpm_entries(path, data, warnings)
    return _lock_entries(path, data, warnings)


def _split_spec(spec: str) -> tuple[str, str]:
    """`name@range` -> (name, range); the name may be scoped (`@scope/a@^1`). ("", "") if there is no `@`."""
    at = spec.find("@", 1)
    return ("", "") if at < 0 else (spec[:at], spec[at + 1 :])


def _unplaced(root: str, name: str, version: str, flags: tuple[str, ...] = ()) -> _Entry:
    return _Entry(name, version, posixpath.join(root, "node_modules", name), flags, "", placed=False)


def _load_yaml(path: str, data: bytes) -> Any:
    if len(data) > MAX_YAML_BYTES:
        raise BoundExceeded(path, f"{len(data)} bytes of YAML, over the limit of {MAX_YAML_BYTES}; not read")
    # Imported here: few images hold a pnpm lockfile, and PyYAML is a sixth of every scan's start-up.
    import yaml

    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(data, Loader=loader)  # a safe loader: plain data only
    except RecursionError:
        raise BoundExceeded(path, "YAML nested deeper than the parser's recursion limit; not read") from None
    except (yaml.YAMLError, ValueError) as err:
        raise DetectorError(path, f"not YAML ({' '.join(str(err).split())[:200]}); not read") from None


def _count(path: str, items: dict[Any, Any]) -> None:
    if len(items) > MAX_LOCK_ENTRIES:
        raise BoundExceeded(path, f"{len(items)} entries, over the limit of {MAX_LOCK_ENTRIES}; not read")


# yarn.lock ---------------------------------------------------------------------------------------------


def _yarn_entries(path: str, data: bytes, warnings: list[Warning_]) -> Iterator[_Entry]:
    text = data.decode("utf-8", errors="replace")
    # Berry writes YAML with a `__metadata` entry; yarn v1 its own format, which YAML cannot read.
    if re.search(r"^__metadata:", text, re.MULTILINE):
        yield from _berry_entries(path, data, warnings)
    else:
        yield from _yarn_v1_entries(path, text, warnings)


def _yarn_keys(header: str) -> list[str]:
    """The specifiers of a yarn v1 entry header (`"a@^1", a@~1.2:` -> [`a@^1`, `a@~1.2`])."""
    keys: list[str] = []
    rest = header.rstrip().removesuffix(":")
    while rest:
        rest = rest.lstrip(" ,")
        if rest.startswith('"'):
            end = rest.find('"', 1)
            if end < 0:
                return []
            keys.append(rest[1:end])
            rest = rest[end + 1 :]
        else:
            key, _, rest = rest.partition(",")
            if key.strip():
                keys.append(key.strip())
    return keys


def _yarn_registry_name(spec: str) -> str:
    """The npm package a yarn v1 specifier names when it is a registry range, tag or `npm:` alias; ""
    for everything else (file:, link:, git, tarball URLs, `user/repo` GitHub shorthands)."""
    name, wanted = _split_spec(spec)
    if wanted.startswith("npm:"):
        name, wanted = _split_spec(wanted[4:])
        if not name:
            return ""
    if ":" in wanted or "/" in wanted or _split_name(name) is None:
        return ""
    return name


def _yarn_v1_entries(path: str, text: str, warnings: list[Warning_]) -> Iterator[_Entry]:
    root = posixpath.dirname(path)
    seen: set[tuple[str, str]] = set()
    count = 0
    keys: list[str] = []
    version = ""

    def finish() -> Iterator[_Entry]:
        if not keys:
            return
        names = {_yarn_registry_name(key) for key in keys}
        if "" in names or len(names) != 1:
            return  # some specifier is not the registry's: the entry resolved to a file, link or git source
        (name,) = names
        if not _valid_version(version):
            warnings.append(Warning_(path, f"yarn.lock entry {keys[0]!r} has no valid version; skipped"))
        elif (name, version) not in seen:
            seen.add((name, version))
            yield _unplaced(root, name, version)

    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            yield from finish()
            count += 1
            if count > MAX_LOCK_ENTRIES:
                raise BoundExceeded(path, f"more than {MAX_LOCK_ENTRIES} entries; the rest not read")
            keys, version = _yarn_keys(line), ""
            if not keys:
                warnings.append(Warning_(path, f"unreadable yarn.lock entry header {line[:100]!r}; skipped"))
        elif line.startswith("  version ") and not line.startswith("   "):
            version = line[len("  version ") :].strip().strip('"')
    yield from finish()


def _berry_resolution(resolution: str) -> tuple[str, str]:
    """(name, version) of a Berry `resolution` from the npm registry, directly (`a@npm:1.2.3`) or patched
    (`a@patch:a@npm%3A1.2.3#~builtin<compat/a>::…`); ("", "") for any other protocol."""
    name, reference = _split_spec(resolution)
    if reference.startswith("patch:"):
        return _berry_resolution(unquote(reference[len("patch:") :].split("#", 1)[0]))
    if not reference.startswith("npm:"):
        return "", ""  # workspace:, link:, portal:, file:, exec:, git and tarball URLs
    return name, reference[len("npm:") :].split("::", 1)[0]


def _berry_entries(path: str, data: bytes, warnings: list[Warning_]) -> Iterator[_Entry]:
    lock = _load_yaml(path, data)
    if not isinstance(lock, dict):
        raise DetectorError(path, "yarn.lock is not a mapping of entries; not read")
    _count(path, lock)
    root = posixpath.dirname(path)
    seen: set[tuple[str, str]] = set()
    for key, entry in lock.items():
        if key == "__metadata":
            continue
        resolution = entry.get("resolution") if isinstance(entry, dict) else None
        if not isinstance(resolution, str):
            warnings.append(Warning_(path, f"yarn.lock entry {str(key)[:100]!r} has no resolution; skipped"))
            continue
        name, version = _berry_resolution(resolution)
        if not name:
            continue
        if _split_name(name) is None or not _valid_version(version):
            warnings.append(Warning_(path, f"yarn.lock resolution {resolution[:100]!r} is not name@version; skipped"))
        elif (name, version) not in seen:
            seen.add((name, version))
            yield _unplaced(root, name, version)


# pnpm-lock.yaml ----------------------------------------------------------------------------------------


def _pnpm_key(key: str, v5: bool) -> tuple[str, str]:
    """(name, version) of a pnpm package key from the registry, ("", "") for any other source.

    v5: `/name/1.2.3`, `/@scope/name/1.2.3_peer@1.0.0+other@2.0.0`; v6: `/name@1.2.3(peer@1.0.0)`;
    v9: `name@1.2.3(peer@1.0.0)`. File, link, git and tarball keys do not end in a version.
    """
    key = key.removeprefix("/")
    if v5:
        parts = key.split("/")
        scoped = key.startswith("@")
        if len(parts) != (3 if scoped else 2):
            return "", ""
        name, version = "/".join(parts[:-1]), parts[-1].split("_", 1)[0]
    else:
        name, version = _split_spec(key.split("(", 1)[0])
    if not _PNPM_VERSION.match(version) or _split_name(name) is None:
        return "", ""
    return name, version


def _pnpm_entries(path: str, data: bytes, warnings: list[Warning_]) -> Iterator[_Entry]:
    lock = _load_yaml(path, data)
    if lock is None:
        return  # an empty file (or only comments): nothing locked
    if not isinstance(lock, dict):
        raise DetectorError(path, "pnpm-lock.yaml is not a mapping; not read")
    raw_version = lock.get("lockfileVersion")
    try:
        major = int(float(str(raw_version)))
    except (ValueError, OverflowError):  # not a number, nan, inf
        major = 0
    if major not in (5, 6, 9):
        warnings.append(Warning_(path, f"unknown lockfileVersion {raw_version!r}; read as best we can"))
    root = posixpath.dirname(path)
    seen: set[tuple[str, str]] = set()
    for section in ("packages", "snapshots"):
        packages = lock.get(section)
        if packages is None:
            continue
        if not isinstance(packages, dict):
            warnings.append(Warning_(path, f"{section} is not a mapping; skipped"))
            continue
        _count(path, packages)
        for key, entry in packages.items():
            if not isinstance(key, str):
                continue
            name, version = _pnpm_key(key, major == 5)
            if not name and major not in (5, 6, 9):
                name, version = _pnpm_key(key, True)  # an unknown format: try the old keys too
            if not name or (name, version) in seen:
                continue
            seen.add((name, version))
            dev = isinstance(entry, dict) and entry.get("dev") is True
            yield _unplaced(root, name, version, ("dev",) if dev else ())
