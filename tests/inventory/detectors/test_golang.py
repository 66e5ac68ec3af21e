"""GoBinaryDetector: Go build info in ELF executables.

No Go toolchain is installed here, so the executables are ELF files built by hand (`elf()` below, 64-bit
little-endian and 32-bit big-endian, with or without section headers) around `.go.buildinfo` contents.
Two contents are real: the sections of Debian 12's `/usr/bin/umoci` (umoci 0.4.7+ds-3+b7, Go 1.19.8,
Apache-2.0) and of the Google Cloud SDK's `go-app-stager` (Apache-2.0, built by Google's internal
toolchain, with a local replacement), copied byte for byte without their trailing zero padding. The others
follow the format in Go's src/debug/buildinfo/buildinfo.go and src/runtime/debug/mod.go.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from scanner.inventory.detectors.base import DetectContext, MemoryFileSet
from scanner.inventory.detectors.golang import GoBinaryDetector, stdlib_version
from scanner.model.limits import Limits
from scanner.model.types import RawPackage
from tests.inventory.detectors.in_place import both_ways

UMOCI_BUILDINFO = bytes.fromhex(
    "ff20476f206275696c64696e663a08020000000000000000000000000000000008676f312e31392e38c0013077af0c92"
    "74080241e1c107e6d618e670617468096769746875622e636f6d2f6f70656e636f6e7461696e6572732f756d6f63692f"
    "636d642f756d6f63690a6275696c64092d636f6d70696c65723d67630a6275696c64092d7472696d706174683d747275"
    "650a6275696c640943474f5f454e41424c45443d310a6275696c6409474f415243483d616d6436340a6275696c640947"
    "4f4f533d6c696e75780a6275696c6409474f414d4436343d76310af932433186182072008242104116d8f2"
)
APP_STAGER_BUILDINFO = bytes.fromhex(
    "ff20476f206275696c64696e663a08020000000000000000000000000000000047676f312e32322d3230323331313238"
    "2d5243303220636c2f353836313137333031202b3631313161636338653620583a6669656c64747261636b2c626f7269"
    "6e6763727970746f92033077af0c9274080241e1c107e6d618e67061746809676f2d6170702d7374616765720a6d6f64"
    "09676f2d6170702d7374616765720928646576656c29090a64657009676f706b672e696e2f79616d6c2e76320976322e"
    "322e320a3d3e092e2f676f706b672e696e2f79616d6c0928646576656c29090a0a6275696c64092d6275696c646d6f64"
    "653d6578650a6275696c64092d636f6d70696c65723d67630a6275696c640944656661756c74474f44454255473d6874"
    "74706c6178636f6e74656e746c656e6774683d312c687474706d7578676f3132313d312c70616e69636e696c3d312c74"
    "6c7331307365727665723d312c746c737273616b65783d312c746c73756e73616665656b6d3d310a6275696c64094347"
    "4f5f454e41424c45443d300a6275696c6409474f415243483d616d6436340a6275696c6409474f4558504552494d454e"
    "543d6669656c64747261636b2c626f72696e6763727970746f0a6275696c6409474f4f533d6c696e75780a6275696c64"
    "09474f414d4436343d76310af932433186182072008242104116d8f2"
)

# cmd/go/internal/modload infoStart / infoEnd.
INFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
INFO_END = bytes.fromhex("f932433186182072008242104116d8f2")
MAGIC = b"\xff Go buildinf:"

DETECTOR = GoBinaryDetector()


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def buildinfo(version: str, modinfo: str | None, *, flags: int = 0x2) -> bytes:
    """A Go 1.18+ build info blob: header, then the two varint-prefixed strings."""
    mod = b"" if modinfo is None else INFO_START + modinfo.encode() + INFO_END
    header = MAGIC + bytes([8, flags]) + b"\0" * 16
    return header + uvarint(len(version)) + version.encode() + uvarint(len(mod)) + mod


def elf(
    section: bytes,
    *,
    bits: int = 64,
    big: bool = False,
    headers: bool = True,
    prefix: bytes = b"",
    name: bytes = b".go.buildinfo",
) -> bytes:
    """A minimal ELF file holding `section` as .go.buildinfo (16-byte aligned, as the linker places it).
    `prefix` goes in a .rodata section before it; `headers=False` drops the section headers, as
    `strip --strip-section-headers` does."""
    e = ">" if big else "<"
    ehsize, shentsize = (64, 64) if bits == 64 else (52, 40)
    shstrtab = b"\0.shstrtab\0.rodata\0" + name + b"\0"
    body = bytearray(b"\0" * ehsize)
    layout = []
    for data in (shstrtab, prefix, section):
        body += b"\0" * (-len(body) % 16)
        layout.append((len(body), len(data)))
        body += data
    body += b"\0" * (-len(body) % 16)
    shoff = len(body)
    names = (1, 11, 19)  # offsets of the three names in shstrtab
    table = bytearray(b"\0" * shentsize)  # section 0: SHT_NULL
    for (offset, size), name_at, kind in zip(layout, names, (3, 1, 1), strict=True):
        if bits == 64:
            entry = struct.pack(e + "IIQQQQIIQQ", name_at, kind, 0, 0, offset, size, 0, 0, 16, 0)
        else:
            entry = struct.pack(e + "IIIIIIIIII", name_at, kind, 0, 0, offset, size, 0, 0, 16, 0)
        table += entry
    body += table
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 2 if big else 1, 1]) + b"\0" * 9
    if bits == 64:
        header = ident + struct.pack(
            e + "HHIQQQIHHHHHH", 2, 62, 1, 0, 0, shoff if headers else 0, 0, ehsize, 0, 0, shentsize, 4, 1
        )
    else:
        header = ident + struct.pack(
            e + "HHIIIIIHHHHHH", 2, 3, 1, 0, 0, shoff if headers else 0, 0, ehsize, 0, 0, shentsize, 4, 1
        )
    body[: len(header)] = header
    return bytes(body)


def extract(files: dict[str, bytes]) -> tuple[list[RawPackage], list[str]]:
    out = DETECTOR.extract(MemoryFileSet(files), DetectContext())
    return out.packages, [str(w) for w in out.warnings]


def go(
    module: str, version: str, purl: str, location: str, *meta: tuple[str, str], ecosystem: str = "Go"
) -> RawPackage:
    return RawPackage(
        name=module,
        version=version,
        ecosystem=ecosystem,
        purl=purl,
        source_name=module,
        source_version=version,
        locations=(location,),
        kind="golang",
        metadata=meta,
        evidence="binary",
    )


def test_plugin_identity() -> None:
    assert (DETECTOR.name, DETECTOR.version, DETECTOR.group) == ("go-binary", 2, "language")
    assert DETECTOR.skip_os_owned  # a binary an OS package owns is that package: dropped by the analysis


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        # Anywhere a program may be installed, OS-owned directories included (the analysis drops those).
        ("/usr/bin/umoci", True),
        ("/usr/local/bin/terraform", True),
        ("/bin/skopeo", True),
        ("/usr/local/go/bin/go", True),
        ("/usr/local/go/pkg/tool/linux_amd64/compile", True),
        ("/go/bin/dlv", True),
        ("/app/server", True),
        ("/app/dist/server", True),
        ("/ko-app/controller", True),
        ("/manager", True),
        ("/usr/lib/cni/loopback", True),
        ("/usr/libexec/docker/cli-plugins/docker-compose", True),
        ("/home/user/go/bin/tool", True),
        ("/opt/app/bin/server", True),
        ("/usr/binx/tool", True),
        ("/etcd", True),
        # Names with a dot: not what Go's linker writes (libraries, scripts, data).
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", False),
        ("/app/main.py", False),
        ("/usr/local/go/VERSION.txt", False),
        # Trees where no program of the image lives, or whose ELF files are test data.
        ("/etc/passwd", False),
        ("/proc/self/exe", False),
        ("/usr/share/doc/x/copyright", False),
        ("/var/lib/dpkg/status", False),
        ("/app/node_modules/.bin/esbuild", False),
        ("/app/node_modules/esbuild/bin/esbuild", False),
        ("/usr/local/lib/python3.12/site-packages/x/bin/tool", False),
        ("/usr/local/go/src/debug/elf/testdata/go-relocation-test-gcc441-x86-64", False),
        ("/usr/local/go/src/cmd/go/main", False),
        ("/go/pkg/mod/github.com/x/y@v1.0.0/LICENSE", False),
        ("/src/app/testdata/binary", False),
    ],
)
def test_required(path: str, wanted: bool) -> None:
    assert DETECTOR.required(path) is wanted


def test_real_umoci_build_info() -> None:
    # Debian builds in GOPATH mode: no module lines, only the toolchain.
    packages, warnings = extract({"/usr/local/bin/umoci": elf(UMOCI_BUILDINFO)})
    assert warnings == []
    assert packages == [
        go("stdlib", "v1.19.8", "pkg:golang/stdlib@v1.19.8", "/usr/local/bin/umoci", ("go_version", "go1.19.8"))
    ]


def test_real_build_info_from_an_unreleased_toolchain() -> None:
    # Main module built from a checkout, `(devel)`: listed as syft lists it, with no ecosystem (no advisory
    # range orders it). A dependency replaced by a local directory: nothing of the module's to report.
    packages, warnings = extract({"/app/go-app-stager": elf(APP_STAGER_BUILDINFO)})
    assert packages == [
        go(
            "go-app-stager",
            "(devel)",
            "pkg:golang/go-app-stager@%28devel%29",
            "/app/go-app-stager",
            ("main", "true"),
            ecosystem="",
        )
    ]
    assert warnings == [
        "/app/go-app-stager: Go toolchain version 'go1.22-20231128-RC02 cl/586117301 +6111acc8e6"
        " X:fieldtrack,boringcrypto' is not a release; stdlib not reported"
    ]


MODINFO = (
    "path\texample.com/app/cmd/server\n"
    "mod\texample.com/app\tv1.4.0\th1:abc=\n"
    "dep\tgithub.com/google/uuid\tv1.6.0\th1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\n"
    "dep\tgolang.org/x/net\tv0.17.0\th1:pVaXccu2ozPjCXewfr1S7xza/zcXTity9cCdXQYSjIM=\n"
    "=>\tgolang.org/x/net\tv0.23.0\th1:7EYJ93RZ9vYSZAIb2x3lnuvqO5zneoD6IvWjuhfxjTs=\n"
    "dep\tgopkg.in/yaml.v3\tv3.0.1\n"
    "dep\texample.com/app/internal/lib\tv0.0.0-00010101000000-000000000000\n"
    "=>\t./internal/lib\t(devel)\t\n"
    "dep\tgithub.com/google/uuid\tv1.6.0\th1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\n"
    "build\t-buildmode=exe\n"
    'build\t-ldflags="-X main.version=dep\tfake"\n'
    "build\tGOOS=linux\n"
)


def test_modules_replacements_and_stdlib() -> None:
    path = "/app/server"
    packages, warnings = extract({path: elf(buildinfo("go1.21rc2", MODINFO))})
    assert warnings == []
    assert packages == [
        go("stdlib", "v1.21.0-rc.2", "pkg:golang/stdlib@v1.21.0-rc.2", path, ("go_version", "go1.21rc2")),
        go("example.com/app", "v1.4.0", "pkg:golang/example.com/app@v1.4.0", path, ("main", "true")),
        go("github.com/google/uuid", "v1.6.0", "pkg:golang/github.com/google/uuid@v1.6.0", path),
        go(
            "golang.org/x/net",
            "v0.23.0",
            "pkg:golang/golang.org/x/net@v0.23.0",
            path,
            ("replaces", "golang.org/x/net@v0.17.0"),
        ),
        go("gopkg.in/yaml.v3", "v3.0.1", "pkg:golang/gopkg.in/yaml.v3@v3.0.1", path),
    ]


@pytest.mark.parametrize(
    ("toolchain", "version"),
    [
        ("go1.22.5", "v1.22.5"),
        ("go1.20", "v1.20.0"),
        ("go1.21rc2", "v1.21.0-rc.2"),
        ("go1.9beta1", "v1.9.0-beta.1"),
        ("go1.22.0 X:boringcrypto", "v1.22.0"),
        ("devel go1.23-abcdef Tue Jan 1 00:00:00 2024 +0000", ""),
        ("go1.22-20231128-RC02 cl/586117301", ""),
        ("", ""),
    ],
)
def test_stdlib_versions(toolchain: str, version: str) -> None:
    assert stdlib_version(toolchain) == version


def test_32_bit_big_endian() -> None:
    packages, warnings = extract({"/usr/local/bin/tool": elf(buildinfo("go1.22.5", MODINFO), bits=32, big=True)})
    assert warnings == []
    assert [p.name for p in packages] == [
        "stdlib",
        "example.com/app",
        "github.com/google/uuid",
        "golang.org/x/net",
        "gopkg.in/yaml.v3",
    ]


def test_without_section_headers_the_aligned_header_is_found() -> None:
    # A literal copy of the magic (as a scanner binary embeds it) precedes the real header, aligned; one
    # more sits misaligned. Neither decodes to a version, so the search goes on to the real one.
    decoys = MAGIC + b"\x08\x02" + b"\0" * 16 + b"\x7f" + b"\0" * 11 + b"x" + MAGIC + b"\0" * 15
    binary = elf(buildinfo("go1.22.5", MODINFO), headers=False, prefix=decoys)
    packages, warnings = extract({"/usr/local/bin/tool": binary})
    assert warnings == []
    assert [p.name for p in packages][:2] == ["stdlib", "example.com/app"]


def test_build_info_outside_the_section_is_not_searched_when_section_headers_exist() -> None:
    # Readable section headers without .go.buildinfo: not a Go program, whatever bytes it holds.
    assert extract({"/usr/local/bin/c": elf(b"", prefix=buildinfo("go1.22.5", MODINFO), name=b".data")}) == ([], [])
    assert extract({"/usr/local/bin/c": elf(buildinfo("go1.22.5", None), name=b".data")}) == ([], [])


def test_module_info_without_sentinels_is_ignored() -> None:
    blob = MAGIC + bytes([8, 2]) + b"\0" * 16 + uvarint(8) + b"go1.22.5" + uvarint(len(MODINFO)) + MODINFO.encode()
    packages, warnings = extract({"/usr/local/bin/tool": elf(blob)})
    assert [p.name for p in packages] == ["stdlib"]
    assert warnings == []


def test_pre_1_18_format_is_a_warning() -> None:
    packages, warnings = extract({"/usr/local/bin/old": elf(MAGIC + bytes([8, 0]) + b"\0" * 16 + b"\0" * 16)})
    assert packages == []
    assert warnings == ["/usr/local/bin/old: Go build info in the pre-1.18 format is not supported; skipped"]


@pytest.mark.parametrize(
    "section",
    [
        buildinfo("go1.22.5", MODINFO)[:60],  # truncated: the module info length runs past the data
        MAGIC + bytes([8, 2]) + b"\0" * 16 + b"\xff" * 12,  # a varint longer than 10 bytes
        MAGIC + bytes([8, 2]) + b"\0" * 16 + uvarint(0) + uvarint(0),  # no version
        b"\0" * 64,  # no magic
    ],
)
def test_unreadable_section_is_a_warning(section: bytes) -> None:
    packages, warnings = extract({"/usr/local/bin/bad": elf(section)})
    assert packages == []
    assert warnings == ["/usr/local/bin/bad: unreadable .go.buildinfo section; skipped"]


@pytest.mark.parametrize(
    "data",
    [
        b"#!/bin/sh\necho hi\n",
        b"",
        b"\x7fELF",  # truncated header
        b"\x7fELF" + b"\xff" * 200,  # header fields pointing anywhere
        elf(b"", headers=False),  # a C program: ELF without build info
    ],
)
def test_other_files_are_skipped_silently(data: bytes) -> None:
    assert extract({"/usr/local/bin/x": data}) == ([], [])


def test_files_not_required_are_ignored() -> None:
    assert extract({"/app/node_modules/.bin/server": elf(buildinfo("go1.22.5", MODINFO))}) == ([], [])


def test_module_information_over_the_byte_bound_is_incomplete() -> None:
    modinfo = "path\texample.com/app\n" + "dep\texample.com/pad\tv1.0.0\th1:x=\n" * 100
    binary = elf(buildinfo("go1.22.5", modinfo), headers=False)
    limit = len(modinfo)  # the sentinels make the string longer than the text
    out = DETECTOR.extract(
        MemoryFileSet({"/app/server": binary}), DetectContext(limits=Limits(max_package_db_bytes=limit))
    )
    assert out.packages == [] and out.warnings == []
    assert [w.message for w in out.incomplete] == [
        f"Go build info of {len(modinfo) + 32} bytes, over the limit of {limit} (limit max_package_db_bytes)"
    ]


def test_too_many_build_info_headers_without_a_readable_one_are_incomplete() -> None:
    # 32-byte headers one after another: each one's string lengths run past the end of the file.
    fake = MAGIC + bytes([8, 0x2]) + b"\0" * 16
    binary = b"\x7fELF\x02\x01" + b"\0" * 58 + fake * 70  # no section headers
    out = DETECTOR.extract(MemoryFileSet({"/app/server": binary}), DetectContext())
    assert out.packages == []
    assert [w.message for w in out.incomplete] == ["more than 64 Go build info headers and none readable; not read"]


def test_packages_past_the_image_budget_are_incomplete() -> None:
    modinfo = "".join(f"dep\texample.com/m{n}\tv1.0.{n}\th1:x=\n" for n in range(5))
    binary = elf(buildinfo("go1.22.5", modinfo), headers=False)
    out = DETECTOR.extract(MemoryFileSet({"/app/server": binary}), DetectContext(limits=Limits(max_packages=3)))
    assert len(out.packages) == 3
    assert [w.message for w in out.incomplete] == ["more than 3 packages in the image (limit max_packages)"]


def test_programs_read_in_place_give_what_their_bytes_give(tmp_path: Path) -> None:
    """A program of a layer read in place is a view into a map of the layer's file (a memoryview): the same
    packages, warnings and incompleteness as from its bytes, with and without section headers."""
    decoys = MAGIC + b"\x08\x02" + b"\0" * 16 + b"\x7f" + b"\0" * 11 + b"x" + MAGIC + b"\0" * 15
    fake = MAGIC + bytes([8, 0x2]) + b"\0" * 16
    files = {
        "/usr/local/bin/tool": elf(buildinfo("go1.22.5", MODINFO)),
        "/usr/local/bin/stripped": elf(buildinfo("go1.22.5", MODINFO), headers=False, prefix=decoys),
        "/usr/local/bin/be32": elf(buildinfo("go1.22.5", MODINFO), bits=32, big=True),
        "/usr/local/bin/c": elf(b"", prefix=buildinfo("go1.22.5", MODINFO), name=b".data"),
        "/app/server": b"\x7fELF\x02\x01" + b"\0" * 58 + fake * 70,
        "/usr/local/bin/umoci": elf(UMOCI_BUILDINFO),
    }
    mapped, plain = both_ways(DETECTOR, files, tmp_path)
    assert mapped == plain
    assert len(plain.packages) >= 15 and plain.incomplete
