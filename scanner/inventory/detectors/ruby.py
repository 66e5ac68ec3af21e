"""Ruby gems: installed gem specifications and Bundler lockfiles (OSV ecosystem "RubyGems").

- `.../specifications/<name>-<version>[-<platform>].gemspec` (also `specifications/default/`, RubyGems' own
  default gems) under any gem directory (`/usr/local/bundle`, `/usr/lib/ruby/gems/3.1.0`,
  `/var/lib/gems/3.1.0`, `vendor/bundle/ruby/3.1.0`…): what RubyGems installed, evidence "installed". These
  files are Ruby code that RubyGems writes from the gem's metadata; they are read as text and never run.
  Only the `Gem::Specification.new do |s|` block's `s.name = "…"` and `s.version = "…"` (or
  `Gem::Version.new("…")`) assignments are read, with `.freeze` allowed: the forms RubyGems writes (the forms
  syft and trivy parse). A gemspec without both literal values is a warning.
- `Gemfile.lock` (and `gems.locked`, Bundler's other name for it) outside an installed gem's own directory:
  the `specs:` of each `GEM` section (gems from a RubyGems server), evidence "lockfile". `GIT` and `PATH`
  sections are skipped: their gems are a repository's or a directory's code, which a RubyGems advisory does
  not describe. Bundler writes a gem built for one platform as `nokogiri (1.16.0-x86_64-linux)` and reads it
  back by splitting at the first `-` (its versions never hold one); the platform is dropped from the version,
  because advisories name the gem's version (`< 1.16.2`), and kept in the `platform` metadata. A lockfile
  lists every group (development and test too) with no mark of which: all are reported.

The same gem in an installed gemspec and a lockfile is reported with the same name, version and purl
(`pkg:gem/<name>@<version>`, no platform qualifier), the evidence differing, so that the inventory can merge them.

Pure: parses the bytes handed over in a FileSet, never touches the filesystem. A file over
`max_package_db_bytes`, a lockfile over `MAX_LOCK_ENTRIES` entries, and more packages than the image may hold
are not read past the bound and make the inventory Incomplete.
"""

from __future__ import annotations

import re

from scanner.ecosystems.languages import RUBYGEMS
from scanner.inventory.detectors.base import (
    DetectContext,
    Detector,
    Extraction,
    FileSet,
    language_package,
    text_lines,
)
from scanner.model.types import RawPackage, Warning_

_GEMSPEC = ".gemspec"
_LOCKFILES = ("/Gemfile.lock", "/gems.locked")
# A lockfile inside an installed gem's directory (`.../gems/rake-13.0.3/Gemfile.lock`) is the gem author's
# development lockfile, shipped by accident: it says nothing about what this image runs.
_IN_GEM_DIR = re.compile(r"/gems/[^/]+-\d[^/]*/")
# RubyGems names: letters, digits, `.`, `_`, `-`. Versions: Gem::Version's characters (`1.2.3`, `1.0.pre`).
_VALID_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,213}\Z")
_VALID_VERSION = re.compile(r"[0-9][0-9A-Za-z.]{0,127}\Z")
MAX_LOCK_ENTRIES = 100_000
_SECTIONS = frozenset({"GEM", "GIT", "PATH", "PLUGIN SOURCE", "PLATFORMS", "DEPENDENCIES", "BUNDLED WITH"})

_SPEC_START = re.compile(r"Gem::Specification\.new\s*(?:do|\{)\s*\|\s*([a-z_][A-Za-z0-9_]*)\s*\|")
_STRING = r"""(?:"([^"\\]*)"|'([^'\\]*)')(?:\.freeze)?"""
_VERSION_VALUE = re.compile(rf"\s*=\s*(?:Gem::Version\.new\(\s*{_STRING}\s*\)|{_STRING})")
_STRING_VALUE = re.compile(rf"\s*=\s*{_STRING}")
_LICENSES = re.compile(r"""\s*=\s*\[?((?:\s*(?:"[^"\\]*"|'[^'\\]*')(?:\.freeze)?\s*,?)*)\]?""")
_QUOTED = re.compile(r""""([^"\\]*)"|'([^'\\]*)'""")
# `    nokogiri (1.16.0-x86_64-linux)`: a spec line, four spaces in (its dependencies are six in).
_SPEC_LINE = re.compile(r"    ([^ ()]+) \(([^)]*)\)\Z")


class RubyDetector(Detector):
    name = "ruby"
    version = 1
    group = "language"
    per_file = True

    def required(self, path: str) -> bool:
        # Hot path (every file of every layer): suffix checks first.
        if path.endswith(_GEMSPEC):
            parent = path[: path.rfind("/")]
            return parent.endswith(("/specifications", "/specifications/default"))
        if path.endswith(_LOCKFILES):
            return _IN_GEM_DIR.search(path) is None
        return False

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        for path, data in self.read_each(files, out, lambda path: ctx.read_database(files, path)):
            if path.endswith(_GEMSPEC):
                package = _from_gemspec(path, data, out.warnings)
                packages = [] if package is None else [package]
            else:
                packages = _from_lockfile(path, data, out)
            for package in packages:
                if not out.add_package(package, ctx, path):
                    return out
        return out


def _package(name: str, version: str, path: str, metadata: list[tuple[str, str]], lockfile: bool) -> RawPackage:
    return language_package(RUBYGEMS, name, version, path, metadata, evidence="lockfile" if lockfile else "installed")


def _literal(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    return next((group for group in match.groups() if group is not None), None)


def _from_gemspec(path: str, data: bytes, warnings: list[Warning_]) -> RawPackage | None:
    var = ""
    fields: dict[str, str] = {}
    licences: list[str] = []
    for line in text_lines(data):
        line = line.strip()
        if not var:
            start = _SPEC_START.search(line)
            if start:
                var = start.group(1) + "."
            continue
        if not line.startswith(var):
            continue
        attribute = line[len(var) :]
        for field in ("name", "version", "platform"):
            if attribute.startswith(field) and field not in fields:
                rest = attribute[len(field) :]
                value = _literal((_VERSION_VALUE if field == "version" else _STRING_VALUE).match(rest))
                if value is not None:
                    fields[field] = value
        if attribute.startswith(("licenses", "license")) and not licences:
            rest = attribute.removeprefix("licenses").removeprefix("license")
            listed = _LICENSES.match(rest)
            if listed:
                licences = [_literal(q) or "" for q in _QUOTED.finditer(listed.group(1))]
        if "name" in fields and "version" in fields and "platform" in fields and licences:
            break
    name, version = fields.get("name", ""), fields.get("version", "")
    if not var:
        warnings.append(Warning_(path, "no Gem::Specification.new block; skipped"))
        return None
    if not name or not version:
        missing = " and ".join(f for f, v in (("name", name), ("version", version)) if not v)
        warnings.append(Warning_(path, f"gemspec has no literal {missing}; skipped"))
        return None
    if not _VALID_NAME.match(name):
        warnings.append(Warning_(path, f"invalid gem name {name[:80]!r}; skipped"))
        return None
    if not _VALID_VERSION.match(version):
        warnings.append(Warning_(path, f"invalid version {version[:80]!r} for {name}; skipped"))
        return None
    metadata: list[tuple[str, str]] = []
    platform = fields.get("platform", "")
    if platform and platform != "ruby":
        metadata.append(("platform", platform))
    licence = ", ".join(licence for licence in licences if licence)
    if licence and len(licence) <= 200:
        metadata.append(("license", licence))
    return _package(name, version, path, metadata, lockfile=False)


def _from_lockfile(path: str, data: bytes, out: Extraction) -> list[RawPackage]:
    """The gems of a Gemfile.lock's GEM sections, one per (name, version), in the file's order."""
    found: dict[tuple[str, str], list[str]] = {}
    section = ""
    known = False  # a section Bundler writes was seen
    in_specs = False
    entries = 0
    for line in text_lines(data):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if not line[0].isspace():
            section, in_specs = line.strip(), False
            known = known or section in _SECTIONS
            continue
        if section != "GEM":
            continue
        if line.startswith("  ") and not line.startswith("   "):
            in_specs = line.strip() == "specs:"
            continue
        if not in_specs or line.startswith("     "):
            continue  # a spec's dependency (six spaces in), or a key of the section
        entries += 1
        if entries > MAX_LOCK_ENTRIES:
            out.bound(path, f"more than {MAX_LOCK_ENTRIES} gems; the rest not read")
            break
        spec = _SPEC_LINE.match(line)
        if spec is None:
            out.warnings.append(Warning_(path, f"malformed spec line {line.strip()[:80]!r}; skipped"))
            continue
        name, full = spec.groups()
        version, _, platform = full.partition("-")
        if not _VALID_NAME.match(name) or not _VALID_VERSION.match(version):
            out.warnings.append(Warning_(path, f"invalid gem {name[:80]!r} ({full[:80]!r}); skipped"))
            continue
        platforms = found.setdefault((name, version), [])
        if platform and platform not in platforms:
            platforms.append(platform)
    if not known and data.strip():
        out.warnings.append(Warning_(path, "not a Gemfile.lock (no GEM, GIT, PATH or PLATFORMS section); skipped"))
    return [
        _package(name, version, path, [("platform", ", ".join(platforms))] if platforms else [], lockfile=True)
        for (name, version), platforms in found.items()
    ]
