"""Python distributions installed in `site-packages` / `dist-packages` (OSV ecosystem "PyPI").

Every installer leaves a core-metadata file (RFC 822 style headers) next to the code it installed:

- `<name>-<version>.dist-info/METADATA`: wheels installed by pip, uv, poetry, conda's pip…
- `<name>-<version>.egg-info/PKG-INFO`: `setup.py install`/`develop`, and many Debian python3-* packages.
- `<name>-<version>.egg-info` as a single file: plain distutils (Debian's python3-rpm, python3-selinux…).
- `<name>-<version>-pyX.Y.egg/EGG-INFO/PKG-INFO`: eggs installed by easy_install.
- `<name>-<version>-pyX.Y.egg` as a zip file (a zipped egg): its `EGG-INFO/PKG-INFO` member. Only the
  zip's central directory and that one member are read, the member through a size cap; a central
  directory of more than `MAX_EGG_ENTRIES` entries is not read (Incomplete).

These are evidence "installed". Lockfiles anywhere outside site-packages (`poetry.lock`, `uv.lock`,
`Pipfile.lock`) are read too, as evidence "lockfile": see `python_locks`. Lockfiles inside
site-packages are some installed project's test data, not this image's resolution, and are not read.

Pure: parses the bytes handed over in a FileSet, never touches the filesystem. A metadata file or lockfile
over `max_package_db_bytes` is not read (a zipped egg, which holds code too, is bounded by `max_file_size`),
and more packages than the image may hold are not kept: either makes the inventory Incomplete.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile

from scanner.ecosystems.languages import PYPI
from scanner.inventory.detectors.base import (
    ZIP_ERRORS,
    DetectContext,
    Detector,
    DetectorError,
    Extraction,
    FileSet,
    language_package,
)
from scanner.inventory.detectors.python_locks import LOCKFILES, parse_lockfile
from scanner.model.types import RawPackage, Warning_

# Every metadata file we read ends with one of these; `str.endswith(tuple)` is a single C call, so the
# millions of files that are not metadata are rejected before any other work is done.
_METADATA_FILES = (".dist-info/METADATA", ".egg-info/PKG-INFO", ".egg/EGG-INFO/PKG-INFO", ".egg-info")
_WANTED = (*_METADATA_FILES, ".egg", *LOCKFILES)
_SITE_DIRS = ("/site-packages/", "/dist-packages/")
# A zipped egg holds a few hundred files; its central directory is read whole, so its size is bounded.
MAX_EGG_ENTRIES = 100_000
# PKG-INFO is a few KB (its description can be long); anything over this is not one.
MAX_EGG_PKG_INFO = 1024 * 1024
_EGG_MEMBER = "EGG-INFO/PKG-INFO"

# PEP 508 project names: ASCII letters and digits, with `.`, `_`, `-` inside.
_VALID_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
# Versions are PEP 440 in practice, but legacy and distribution-patched versions exist (`1.0-dev`,
# `2.0.0~rc1`): accept any printable ASCII token without whitespace rather than drop the package.
_VALID_VERSION = re.compile(r"[!-~]{1,128}\Z")
# Longest `License:` value kept in metadata; some projects paste the whole licence text there.
_MAX_LICENSE = 200


class PythonDetector(Detector):
    name = "python"
    version = 2
    group = "language"
    per_file = True

    def required(self, path: str) -> bool:
        # Hot path (every file of every layer): suffix checks first, substring search last.
        # A bare `*.egg-info` path is the single-file distutils form: the core asks only about files, so
        # the directory form never reaches here.
        if not path.endswith(_WANTED):
            return False
        in_site = _SITE_DIRS[0] in path or _SITE_DIRS[1] in path
        return not in_site if path.endswith(LOCKFILES) else in_site

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        for path in self.own_paths(files):
            try:
                packages = list(self._packages(files, path, ctx, out))
            except DetectorError as err:
                out.bound(err.where, err.message)
                continue
            for package in packages:
                if not out.add_package(package, ctx, path):
                    return out
        return out

    def _packages(self, files: FileSet, path: str, ctx: DetectContext, out: Extraction) -> list[RawPackage]:
        if path.endswith(LOCKFILES):
            data = ctx.read_database(files, path)
            return list(parse_lockfile(path, data, out.warnings, _problem))
        if path.endswith(".egg"):
            head = _egg_pkg_info(path, files.read(path), out.warnings)
            package = None if head is None else _parse(path, head, out.warnings)
        else:
            package = _parse(path, ctx.read_database(files, path), out.warnings)
        return [] if package is None else [package]


def _egg_pkg_info(path: str, data: bytes, warnings: list[Warning_]) -> bytes | None:
    """The `EGG-INFO/PKG-INFO` member of a zipped egg; None (and a warning) when the zip or the member is
    unreadable; DetectorError when the zip is over the bounds."""
    # The entry count is in the end-of-central-directory record: checked before zipfile reads every entry.
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end == -1 or end + 22 > len(data):
        warnings.append(Warning_(path, "not a readable zip archive (no end of central directory); skipped"))
        return None
    (entries,) = struct.unpack_from("<H", data, end + 10)
    if entries > MAX_EGG_ENTRIES or entries == 0xFFFF:  # 0xFFFF: a ZIP64 count, which eggs never need
        raise DetectorError(path, f"more than {MAX_EGG_ENTRIES} zip entries; not read")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            try:
                info = archive.getinfo(_EGG_MEMBER)
            except KeyError:
                warnings.append(Warning_(path, f"zipped egg without {_EGG_MEMBER}; skipped"))
                return None
            with archive.open(info) as member:
                content = member.read(MAX_EGG_PKG_INFO + 1)
    except ZIP_ERRORS as err:
        warnings.append(Warning_(path, f"not a readable zip archive ({err}); skipped"))
        return None
    if len(content) > MAX_EGG_PKG_INFO:
        raise DetectorError(path, f"{_EGG_MEMBER} larger than {MAX_EGG_PKG_INFO} bytes; not read")
    return content


def _problem(name: str, version: str) -> str:
    """Why a lockfile entry is not a usable PyPI package ("" when it is)."""
    if not name or not version:
        return f"package {name or '?'} without {'a name' if not name else 'a version'}; skipped"
    if not _VALID_NAME.match(name):
        return f"invalid project name {name!r}; skipped"
    if not _VALID_VERSION.match(version):
        return f"invalid version {version!r} for {name}; skipped"
    return ""


def _headers(text: str) -> dict[str, str]:
    """The header block of a core-metadata file, first occurrence of each field (lower-case keys).

    A hand-rolled reader rather than `email.parser`: we need five fields, must never raise on odd
    input, and the header block ends at the first blank line (the body is the long description).
    """
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            # Continuation of the previous field (metadata 1.x folds Description and License this way).
            if key:
                fields[key] += "\n" + line.strip()
            continue
        field, sep, value = line.partition(":")
        if not sep:
            # Not a header line: what follows is not headers either (email.parser does the same).
            break
        key = field.strip().lower()
        if key in fields:
            key = ""  # repeated field (Classifier, Requires-Dist…): keep the first, ignore the rest
            continue
        fields[key] = value.strip()
    return fields


def _license(fields: dict[str, str]) -> str:
    expression = fields.get("license-expression", "")
    if expression:
        return expression
    text = fields.get("license", "")
    # UNKNOWN is what old setuptools wrote for "not given"; multi-line values are licence texts.
    if not text or text == "UNKNOWN" or "\n" in text or len(text) > _MAX_LICENSE:
        return ""
    return text


def _parse(path: str, data: bytes, warnings: list[Warning_]) -> RawPackage | None:
    # Only the header block matters; cut before decoding so a huge description costs nothing. The
    # cut only has to come after the headers: `_headers` stops at the first blank line anyway.
    end = data.find(b"\n\n")
    crlf = data.find(b"\r\n\r\n")
    if crlf != -1 and (end == -1 or crlf < end):
        end = crlf
    head = data if end == -1 else data[:end]
    latin1 = False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The spec says UTF-8, but Python 2 era distutils wrote whatever the author's locale had. Name
        # and Version are ASCII, so reading the rest as Latin-1 (never fails) still finds them.
        text = head.decode("latin-1")
        latin1 = True
    text = text.removeprefix("\ufeff")
    fields = _headers(text)
    name = fields.get("name", "")
    version = fields.get("version", "")
    if not name or not version:
        missing = " and ".join(f for f, v in (("Name", name), ("Version", version)) if not v)
        warnings.append(Warning_(path, f"metadata has no {missing}; skipped"))
        return None
    if not _VALID_NAME.match(name):
        warnings.append(Warning_(path, f"invalid project name {name!r}; skipped"))
        return None
    if not _VALID_VERSION.match(version):
        warnings.append(Warning_(path, f"invalid version {version!r} for {name}; skipped"))
        return None
    if latin1:
        # Said only for a package we report: a skipped file already has its one warning.
        warnings.append(Warning_(path, "metadata is not valid UTF-8; read as Latin-1"))
    metadata: list[tuple[str, str]] = []
    if fields.get("metadata-version"):
        metadata.append(("metadata_version", fields["metadata-version"]))
    licence = _license(fields)
    if licence:
        metadata.append(("license", licence))
    # The purl names the project as PEP 503 normalises it, as the purl spec wants.
    return language_package(PYPI, name, version, path, metadata, purl_name=PYPI.normalise(name))
