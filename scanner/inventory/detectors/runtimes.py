"""Language runtimes installed without a package manager, from the files their own installers write.

Official Docker images install the runtime from the upstream release, not from the distribution: no
package database knows it. Each is read from a small text file of its own, at the path the official image
puts it, with evidence "runtime":

| runtime | where (official image)                                    | version from                          |
|---------|-----------------------------------------------------------|---------------------------------------|
| Go      | `/usr/local/go/VERSION` (golang)                          | first line `go1.22.5`                 |
| CPython | `/usr/local/include/python3.X/patchlevel.h` with          | `#define PY_VERSION "3.12.4"`         |
|         | `/usr/local/bin/python3.X` present (python)               |                                       |
| Node.js | `/usr/local/include/node/node_version.h` with             | `NODE_{MAJOR,MINOR,PATCH}_VERSION`    |
|         | `/usr/local/bin/node` present (node)                      |                                       |
| OpenJDK | `/opt/java/openjdk/release` (eclipse-temurin),            | `JAVA_VERSION="21.0.3"`               |
|         | `/usr/local/openjdk-*/release` (openjdk)                  |                                       |

The Go toolchain is its standard library: `stdlib` at `v1.22.5` in the Go ecosystem (Go's vulndb keys the
standard library as `stdlib`; the version is written as the Go binary detector writes a binary's toolchain,
with the `v` Go module versions carry), so it is matched against GO- advisories. CPython, Node.js and
OpenJDK have no OSV ecosystem (their advisories are CVEs against the product, not records with ranges an
OSV feed carries): they are listed (`pkg:generic/python@3.12.4`, `pkg:generic/node@20.14.0`,
`pkg:generic/openjdk@21.0.3`, as syft names them) with no ecosystem, and never looked up.

A runtime the distribution's package manager installed (Debian's python3.11 in /usr/bin, its JDKs in
/usr/lib/jvm) is not at these paths; should an OS package own one of these files anyway, the analysis drops
the runtime (`skip_os_owned`): it is that OS package, assessed through the distribution.

Bounds: each file is read whole, up to `max_package_db_bytes` (larger: not read, the inventory is
Incomplete); a file without a version it can read is a warning. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from packageurl import PackageURL

from scanner.ecosystems.languages import GO
from scanner.inventory.detectors.base import (
    DetectContext,
    Detector,
    DetectorError,
    Extraction,
    FileSet,
    language_package,
)
from scanner.inventory.detectors.golang import stdlib_version
from scanner.model.types import RawPackage, Warning_

GO_VERSION = "/usr/local/go/VERSION"
NODE_HEADER = "/usr/local/include/node/node_version.h"
NODE_BINARY = "/usr/local/bin/node"
TEMURIN_RELEASE = "/opt/java/openjdk/release"
_PYTHON_HEADER = re.compile(r"/usr/local/include/python(3\.\d+)[mt]?/patchlevel\.h\Z")
_PYTHON_BINARY = re.compile(r"/usr/local/bin/python3\.\d+\Z")
_OPENJDK_RELEASE = re.compile(r"/usr/local/openjdk-[^/]+/release\Z")

_PY_VERSION = re.compile(rb'^[ \t]*#[ \t]*define[ \t]+PY_VERSION[ \t]+"([^"\n]*)"', re.MULTILINE)
_NODE_PART = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+NODE_(MAJOR|MINOR|PATCH)_VERSION[ \t]+(\d{1,9})\b", re.MULTILINE)
_NODE_RELEASE = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+NODE_VERSION_IS_RELEASE[ \t]+0\b", re.MULTILINE)
_JAVA_VERSION = re.compile(rb'^JAVA_VERSION="([^"\n]*)"', re.MULTILINE)
_IMPLEMENTOR = re.compile(rb'^IMPLEMENTOR="([^"\n]*)"', re.MULTILINE)
# What a version read from a file may look like: a version, never markup or a whole line of prose.
_VERSION = re.compile(r"[0-9][0-9A-Za-z.+_-]{0,63}\Z")


class RuntimeDetector(Detector):
    name = "runtimes"
    version = 1
    group = "language"
    skip_os_owned = True

    def required(self, path: str) -> bool:
        # Hot path: every path of every layer; the regexes run only under /usr/local/ and /opt/java/.
        if path.startswith("/usr/local/"):
            return (
                path in (GO_VERSION, NODE_HEADER, NODE_BINARY)
                or (path.startswith("/usr/local/include/python") and _PYTHON_HEADER.match(path) is not None)
                or (path.startswith("/usr/local/bin/python") and _PYTHON_BINARY.match(path) is not None)
                or (path.startswith("/usr/local/openjdk-") and _OPENJDK_RELEASE.match(path) is not None)
            )
        return path == TEMURIN_RELEASE

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        present = set(files.paths())
        for path in self.own_paths(files):
            parse = self._parser(path, present)
            if parse is None:
                continue
            try:
                data = ctx.read_database(files, path)
            except DetectorError as err:
                out.bound(err.where, err.message)
                continue
            package = parse(path, data, out.warnings)
            if package is not None and not out.add_package(package, ctx, path):
                break
        return out

    @staticmethod
    def _parser(path: str, present: set[str]) -> _Parser | None:
        """The parser of one of this detector's files, None for a file that only tells what is present
        (a binary) or a header whose runtime is not there (headers left behind without the interpreter)."""
        if path == GO_VERSION:
            return _go
        if path == NODE_HEADER:
            return _node if NODE_BINARY in present else None
        match = _PYTHON_HEADER.match(path)
        if match is not None:
            return _python if f"/usr/local/bin/python{match.group(1)}" in present else None
        if path == TEMURIN_RELEASE or _OPENJDK_RELEASE.match(path):
            return _openjdk
        return None


_Parser = Callable[[str, bytes, list[Warning_]], RawPackage | None]


def _go(path: str, data: bytes, warnings: list[Warning_]) -> RawPackage | None:
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    version = stdlib_version(first)
    if not version:
        warnings.append(Warning_(path, f"Go toolchain version {first[:80]!r} is not a release; stdlib not reported"))
        return None
    metadata = [("go_version", first.split(" ", 1)[0])]
    return language_package(GO, "stdlib", version, path, metadata, evidence="runtime")


def _python(path: str, data: bytes, warnings: list[Warning_]) -> RawPackage | None:
    match = _PY_VERSION.search(data)
    return _generic(path, "python", match.group(1) if match else None, [], warnings, "PY_VERSION")


def _node(path: str, data: bytes, warnings: list[Warning_]) -> RawPackage | None:
    parts = {m.group(1): int(m.group(2)) for m in _NODE_PART.finditer(data)}
    version = None
    if len(parts) == 3:
        version = f"{parts[b'MAJOR']}.{parts[b'MINOR']}.{parts[b'PATCH']}".encode()
        if _NODE_RELEASE.search(data):
            version += b"-pre"  # as NODE_VERSION_STRING spells an unreleased build
    return _generic(path, "node", version, [], warnings, "NODE_MAJOR/MINOR/PATCH_VERSION")


def _openjdk(path: str, data: bytes, warnings: list[Warning_]) -> RawPackage | None:
    implementor = _IMPLEMENTOR.search(data)
    metadata = [("implementor", _text(implementor.group(1))[:200])] if implementor else []
    match = _JAVA_VERSION.search(data)
    return _generic(path, "openjdk", match.group(1) if match else None, metadata, warnings, "JAVA_VERSION")


def _generic(
    path: str,
    name: str,
    raw: bytes | None,
    metadata: list[tuple[str, str]],
    warnings: list[Warning_],
    field: str,
) -> RawPackage | None:
    version = _text(raw) if raw is not None else ""
    if not _VERSION.match(version):
        what = "no" if raw is None else f"an unreadable {version[:80]!r} as"
        warnings.append(Warning_(path, f"{what} {field}: {name} runtime not reported"))
        return None
    purl = PackageURL(type="generic", name=name, version=version).to_string()
    return RawPackage(
        name=name,
        version=version,
        ecosystem="",  # no advisory feed with ranges names it: listed, never looked up
        purl=str(purl),
        source_name=name,
        source_version=version,
        locations=(path,),
        kind="generic",
        metadata=tuple(metadata),
        evidence="runtime",
    )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").strip()
