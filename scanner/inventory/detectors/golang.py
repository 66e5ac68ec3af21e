"""Go modules compiled into ELF executables, from the build info the Go linker embeds (OSV ecosystem "Go").

Since Go 1.18 the linker writes a 32-byte header into the `.go.buildinfo` section: the magic
`\\xff Go buildinf:`, the pointer size, a flags byte whose bit 0x2 says the strings follow inline, then two
uvarint-length-prefixed strings: the toolchain version (`go1.22.5`) and the module info, wrapped in two
16-byte sentinels, in `runtime/debug.BuildInfo.String()` form (fields tab-separated):

    path  example.com/cmd/app
    mod  example.com/app  v1.2.0  h1:…
    dep  golang.org/x/text  v0.14.0  h1:…
    =>  golang.org/x/text  v0.13.0  h1:…     (replaces the module on the line before)
    build  GOOS=linux

Reported, each with evidence "binary": every `dep` (its replacement when there is one with a version; a
replacement by a local directory has no version, its code is not the module's, so nothing is reported for
it), the main module (with the version Go 1.24+ stamps from VCS tags; a binary built from a checkout says
`(devel)`, and is kept with that version, as syft keeps it: the SBOM lists it, but no advisory range can
order `(devel)`, so it gets no ecosystem and is never looked up), and the Go standard library as `stdlib`
(OSV's name for it) at the toolchain version, `go1.22.5` -> `v1.22.5`.

Paths (`required`): only a path test is possible before content is captured, and a Go program may be
installed anywhere (`/opt/app/bin/server`, `/home/user/go/bin/tool`, `/usr/bin/…`). Every file is wanted
except where no program lives or where a hit would be noise: the kernel's and the package managers' trees
(`/proc`, `/sys`, `/dev`, `/etc`, `/usr/share`, include directories, `/var/lib/{dpkg,rpm,apk}`, caches,
logs), language package trees (`node_modules`, `site-packages`, `dist-packages`, the Go module cache and
the Go toolchain's own sources and `testdata`, which hold test ELF files), and names with a dot (`.so`,
`.py`, `.json`…: Go's linker writes executables without an extension). What is captured is bounded as every
captured file is (`max_file_size`, `max_captured_bytes`, `max_members`); what is parsed is only the build
info (`max_package_db_bytes`); what is reported, by `max_packages`.

OS-owned binaries: a detector cannot know which files an OS package owns (the path test comes before any
package database is read, and the package database may come in a later layer). So the binaries are read
and reported, and the analysis drops the packages of this detector whose file an OS package owns
(`skip_os_owned`): a Debian `docker.io` binary is assessed through Debian's advisory for `docker.io`,
never again through the Go modules compiled into it.

Files that are not ELF or carry no build info are skipped silently. The pre-1.18 format (pointers into the
data segment instead of inline strings) is not read: a warning says so. Module information over
`max_package_db_bytes`, more than `_MAX_CANDIDATES` build-info headers without a readable one, and more
packages than the image may hold are bounds: not read, and the inventory is Incomplete.

Pure: parses the bytes handed over in a FileSet, never touches the filesystem.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace

from scanner.ecosystems.languages import GO
from scanner.image.tree import ByteView
from scanner.inventory.detectors.base import (
    BoundExceeded,
    DetectContext,
    Detector,
    DetectorError,
    Extraction,
    FileSet,
    language_package,
)
from scanner.model.types import RawPackage, Warning_

# Trees no Go program is installed in, or whose ELF files are not programs of the image (the Go toolchain's
# test data). Prefixes end with "/" so that `/etc` does not exclude `/etcd`.
_SKIP_PREFIXES = (
    "/proc/",
    "/sys/",
    "/dev/",
    "/etc/",
    "/usr/share/",
    "/usr/include/",
    "/usr/local/include/",
    "/usr/src/",
    "/usr/local/go/src/",
    "/usr/local/go/test/",
    "/usr/local/go/misc/",
    "/usr/lib/locale/",
    "/var/lib/dpkg/",
    "/var/lib/rpm/",
    "/var/lib/apk/",
    "/lib/apk/",
    "/var/cache/",
    "/var/log/",
)
_SKIP_PARTS = (
    "/node_modules/",
    "/site-packages/",
    "/dist-packages/",
    "/testdata/",
    "/pkg/mod/",  # the Go module cache: sources
    "/.git/",
    "/__pycache__/",
)

_ELF = b"\x7fELF"
_MAGIC = b"\xff Go buildinf:"
# The magic does not overlap itself (its first byte occurs once in it): non-overlapping matches are every match.
_MAGIC_PATTERN = re.compile(re.escape(_MAGIC))
_HEADER_SIZE = 32
_ALIGN = 16
_FLAG_INLINE = 0x2
# cmd/go/internal/modload's infoStart/infoEnd sentinels are 16 bytes each around the module info.
_SENTINEL = 16
_NO_SECTION = (-1, -1)
# Most section headers one ELF file may declare (the field is 16 bits anyway).
_MAX_SECTIONS = 0xFFFF
# Build-info headers tried in a binary without section headers (a real one has one).
_MAX_CANDIDATES = 64
# Toolchain versions: go1.21.0, go1.20 (before 1.21 the first release had no .0), go1.21rc2, go1.9beta1.
_DEVEL = "(devel)"
_GO_VERSION = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?(?:(rc|beta)(\d+))?\Z")


@dataclass(frozen=True)
class _Module:
    path: str
    version: str
    replaces: str = ""  # "<path>@<version>" of the module a `=>` line replaced
    main: bool = False


class GoBinaryDetector(Detector):
    name = "go-binary"
    version = 2
    group = "language"
    per_file = True
    skip_os_owned = True
    magic = _ELF

    def required(self, path: str) -> bool:
        return may_be_program(path)

    def unread_matters(self, files: FileSet, path: str) -> bool:
        # Too large to keep: only an ELF file (which may be a Go program) is something not read.
        return files.head(path, len(_ELF)) == _ELF

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        for path, data in self.read_each(files, out, files.view):
            if data[: len(_ELF)] != _ELF:
                continue  # scripts, text, other formats: not a Go binary, nothing to say
            try:
                info = _build_info(path, data, out.warnings, ctx.limits.max_package_db_bytes)
            except DetectorError as err:
                out.bound(err.where, err.message)
                continue
            if info is None:
                continue
            go_version, modinfo = info
            for package in _packages(path, go_version, modinfo, out.warnings):
                if not out.add_package(package, ctx, path):
                    return out
        return out


def _section(data: ByteView, wanted: bytes) -> tuple[int, int] | None:
    """(file offset, size) of the ELF section named `wanted`; `_NO_SECTION` if the section headers were
    read and name no such section; None if there are no usable section headers. Every offset is checked
    against the data: headers are hostile input."""
    try:
        is64 = data[4] == 2
        endian = ">" if data[5] == 2 else "<"
        if is64:
            (shoff,) = struct.unpack_from(endian + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
            header = endian + "IIQQQQ"  # name, type, flags, addr, offset, size
        else:
            (shoff,) = struct.unpack_from(endian + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
            header = endian + "IIIIII"
        if shoff == 0 or shnum == 0 or shnum > _MAX_SECTIONS or shentsize < struct.calcsize(header):
            return None
        sections = [struct.unpack_from(header, data, shoff + i * shentsize) for i in range(shnum)]
        if shstrndx >= shnum:
            return None
        strtab = sections[shstrndx][4]
        for name, kind, _flags, _addr, offset, size in sections:
            start = strtab + name
            if data[start : start + len(wanted) + 1] == wanted + b"\0":
                # SHT_NOBITS (8) has no bytes in the file.
                if kind == 8 or offset + size > len(data):
                    return None
                return offset, size
    except (struct.error, IndexError):
        return None
    return _NO_SECTION


def _uvarint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """encoding/binary.Uvarint: (value, position after it); (-1, pos) if malformed or over 10 bytes."""
    value = shift = 0
    for i in range(pos, min(pos + 10, len(data))):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    return -1, pos


def _inline_strings(blob: memoryview, path: str, limit: int) -> tuple[str, str] | None:
    """(toolchain version, module info) from a build info header at the start of `blob`, as Go's
    debug/buildinfo decodes them; None if a length runs past the data. A string over `limit` bytes is
    not read: BoundExceeded."""
    strings: list[bytes] = []
    pos = _HEADER_SIZE
    for _ in range(2):
        length, pos = _uvarint(blob, pos)
        if length < 0 or length > len(blob) - pos:
            return None
        if length > limit:
            raise BoundExceeded(
                path, f"Go build info of {length} bytes, over the limit of {limit} (limit max_package_db_bytes)"
            )
        strings.append(bytes(blob[pos : pos + length]))
        pos += length
    version, modinfo = strings
    # Strip the sentinels (binary, so before decoding); without them the module info is absent, as in Go.
    if len(modinfo) >= 2 * _SENTINEL + 1 and modinfo[-_SENTINEL - 1] == ord("\n"):
        modinfo = modinfo[_SENTINEL:-_SENTINEL]
    else:
        modinfo = b""
    return version.decode("utf-8", errors="replace"), modinfo.decode("utf-8", errors="replace")


def _build_info(path: str, data: ByteView, warnings: list[Warning_], limit: int) -> tuple[str, str] | None:
    section = _section(data, b".go.buildinfo")
    if section == _NO_SECTION:
        # Every Go toolchain since 1.13 emits the section: a file with readable section headers and no
        # .go.buildinfo is a C (or Rust, …) program. Not scanning it spares a pass over every such binary.
        return None
    view = memoryview(data)  # slices of it copy nothing: a candidate may run to the end of the file
    more = False
    if section is not None:
        offset, size = section
        candidates = [view[offset : offset + size]]
    else:
        # Stripped section headers: look for the header where Go's reader would, 16-byte aligned (the
        # section is aligned in memory, and file offsets match memory addresses modulo the page size).
        candidates = []
        for found in _MAGIC_PATTERN.finditer(data):  # `re`, not `find`: a view may be a memoryview
            start = found.start()
            if start % _ALIGN == 0:
                if len(candidates) == _MAX_CANDIDATES:
                    more = True
                    break
                candidates.append(view[start:])
    old_format = False
    for blob in candidates:
        if len(blob) < _HEADER_SIZE or blob[: len(_MAGIC)] != _MAGIC:
            continue
        if not blob[15] & _FLAG_INLINE:
            old_format = True
            continue
        decoded = _inline_strings(blob, path, limit)
        # A literal copy of the magic (a scanner binary embeds it as a constant) does not decode to a
        # version: keep looking.
        if decoded is not None and decoded[0].startswith(("go", "devel")):
            return decoded
    if more:
        raise BoundExceeded(path, f"more than {_MAX_CANDIDATES} Go build info headers and none readable; not read")
    if old_format:
        warnings.append(Warning_(path, "Go build info in the pre-1.18 format is not supported; skipped"))
    elif section is not None:
        warnings.append(Warning_(path, "unreadable .go.buildinfo section; skipped"))
    return None


def stdlib_version(toolchain: str) -> str:
    """`go1.22.5` -> `v1.22.5`, `go1.20` -> `v1.20.0`, `go1.21rc2` -> `v1.21.0-rc.2`; "" if not a release.
    Experiment suffixes (`go1.22.0 X:boringcrypto`) are ignored."""
    match = _GO_VERSION.match(toolchain.split(" ", 1)[0])
    if not match:
        return ""
    major, minor, patch, pre, number = match.groups()
    version = f"v{major}.{minor}.{patch or 0}"
    return f"{version}-{pre}.{number}" if pre else version


def _modules(modinfo: str) -> list[_Module]:
    modules: list[_Module] = []
    for line in modinfo.split("\n"):
        fields = line.split("\t")
        if fields[0] not in ("mod", "dep", "=>") or len(fields) < 3:
            continue
        module = _Module(fields[1], fields[2], main=fields[0] == "mod")
        if fields[0] == "=>":
            if not modules:
                continue
            replaced = modules.pop()
            module = _Module(fields[1], fields[2], f"{replaced.path}@{replaced.version}", replaced.main)
        modules.append(module)
    return modules


def _packages(path: str, toolchain: str, modinfo: str, warnings: list[Warning_]) -> list[RawPackage]:
    packages: dict[tuple[str, str], RawPackage] = {}
    stdlib = stdlib_version(toolchain)
    if stdlib:
        packages[("stdlib", stdlib)] = _package(path, "stdlib", stdlib, [("go_version", toolchain)])
    else:
        warnings.append(Warning_(path, f"Go toolchain version {toolchain!r} is not a release; stdlib not reported"))
    for module in _modules(modinfo):
        if not module.path or module.path.startswith("."):
            continue
        devel = module.version == _DEVEL
        # A dependency replaced by a local directory has "(devel)" or nothing: its code is not the module's.
        if not module.version or (devel and not module.main):
            continue
        metadata = [("main", "true")] if module.main else []
        if module.replaces:
            metadata.append(("replaces", module.replaces))
        package = _package(path, module.path, module.version, metadata)
        if devel:
            package = replace(package, ecosystem="")  # listed, never looked up: no range orders "(devel)"
        packages.setdefault((module.path, module.version), package)
    return list(packages.values())


def _package(path: str, module: str, version: str, metadata: list[tuple[str, str]]) -> RawPackage:
    namespace, _, name = module.rpartition("/")
    return language_package(
        GO, module, version, path, metadata, purl_namespace=namespace, purl_name=name, evidence="binary"
    )


def may_be_program(path: str) -> bool:
    """Whether the file at `path` may be a compiled program of the image (Go's, or a Rust `cargo auditable`
    one): a name without a dot, outside the trees no program is installed in."""
    # Hot path (every file of every layer): string tests only, no regex.
    if "." in path[path.rfind("/") :]:
        return False
    return not path.startswith(_SKIP_PREFIXES) and not any(part in path for part in _SKIP_PARTS)


# Shared with the Rust detector: `cargo auditable` programs are found by the same section-header reader.
elf_section = _section
ELF_MAGIC = _ELF
