"""RuntimeDetector: Go, CPython, Node.js and OpenJDK installed from upstream releases, on real files.

The files (tests/fixtures/runtimes, SOURCES.md there): Go's own `VERSION` of a release branch and the one in
syft's classifier test data, CPython's `Include/patchlevel.h` (3.7.13), Node.js's `src/node_version.h`
(0.12.1, installed as `include/node/node_version.h` by the release tarball) and the JDK `release` file of
syft's JVM-install test data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.inventory.detectors.base import DetectContext, MemoryFileSet
from scanner.inventory.detectors.runtimes import RuntimeDetector
from scanner.model.limits import Limits
from scanner.model.types import RawPackage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "runtimes"
DETECTOR = RuntimeDetector()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def extract(files: dict[str, bytes], limits: Limits | None = None) -> tuple[list[RawPackage], list[str], list[str]]:
    out = DETECTOR.extract(MemoryFileSet(files), DetectContext(limits=limits or Limits()))
    return out.packages, [str(w) for w in out.warnings], [str(w) for w in out.incomplete]


def generic(name: str, version: str, location: str, *meta: tuple[str, str]) -> RawPackage:
    return RawPackage(
        name=name,
        version=version,
        ecosystem="",
        purl=f"pkg:generic/{name}@{version}",
        source_name=name,
        source_version=version,
        locations=(location,),
        kind="generic",
        metadata=meta,
        evidence="runtime",
    )


def test_plugin_identity() -> None:
    assert (DETECTOR.name, DETECTOR.version, DETECTOR.group) == ("runtimes", 1, "language")
    assert DETECTOR.skip_os_owned  # a runtime an OS package owns is that package


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("/usr/local/go/VERSION", True),
        ("/usr/local/include/python3.12/patchlevel.h", True),
        ("/usr/local/include/python3.13t/patchlevel.h", True),  # free-threaded build
        ("/usr/local/bin/python3.12", True),
        ("/usr/local/include/node/node_version.h", True),
        ("/usr/local/bin/node", True),
        ("/opt/java/openjdk/release", True),
        ("/usr/local/openjdk-11/release", True),
        # The distribution's runtimes: OS packages, not read here.
        ("/usr/include/python3.11/patchlevel.h", False),
        ("/usr/bin/python3.11", False),
        ("/usr/lib/go-1.19/VERSION", False),
        ("/usr/lib/jvm/java-17-openjdk-amd64/release", False),
        ("/usr/include/node/node_version.h", False),
        # Near misses.
        ("/usr/local/bin/python3", False),
        ("/usr/local/bin/python3.12-config", False),
        ("/usr/local/include/python3.12/Python.h", False),
        ("/usr/local/openjdk-11/lib/release", False),
        ("/opt/java/openjdk/release.bak", False),
    ],
)
def test_required(path: str, wanted: bool) -> None:
    assert DETECTOR.required(path) is wanted


@pytest.mark.parametrize(
    ("name", "version", "toolchain"),
    [
        ("go-VERSION-go1.27.2", "v1.27.2", "go1.27.2"),  # release branch: version, then `time …`
        ("go-VERSION-go1.21", "v1.21.0", "go1.21"),  # syft's hint file: first release of 1.21, no `.0`
    ],
)
def test_go_toolchain_is_stdlib(name: str, version: str, toolchain: str) -> None:
    packages, warnings, incomplete = extract({"/usr/local/go/VERSION": fixture(name)})
    assert (warnings, incomplete) == ([], [])
    assert packages == [
        RawPackage(
            name="stdlib",
            version=version,
            ecosystem="Go",
            purl=f"pkg:golang/stdlib@{version}",
            source_name="stdlib",
            source_version=version,
            locations=("/usr/local/go/VERSION",),
            kind="golang",
            metadata=(("go_version", toolchain),),
            evidence="runtime",
        )
    ]


@pytest.mark.parametrize("content", [b"", b"devel go1.23-abcdef Tue Jan 1\n", b"\xff\xfe<html>\n"])
def test_go_version_that_is_not_a_release_is_a_warning(content: bytes) -> None:
    packages, warnings, incomplete = extract({"/usr/local/go/VERSION": content})
    assert packages == [] and incomplete == []
    assert len(warnings) == 1 and "is not a release; stdlib not reported" in warnings[0]


@pytest.mark.parametrize("directory", ["python3.7", "python3.7m"])  # 3.7 and older: python3.7m
def test_cpython_from_patchlevel_h_with_its_interpreter(directory: str) -> None:
    header = f"/usr/local/include/{directory}/patchlevel.h"
    packages, warnings, incomplete = extract({header: fixture("patchlevel-3.7.13.h"), "/usr/local/bin/python3.7": b""})
    assert (warnings, incomplete) == ([], [])
    assert packages == [generic("python", "3.7.13", header)]


def test_cpython_headers_without_the_interpreter_are_not_a_runtime() -> None:
    packages, warnings, _ = extract({"/usr/local/include/python3.7/patchlevel.h": fixture("patchlevel-3.7.13.h")})
    assert (packages, warnings) == ([], [])


def test_node_from_node_version_h_with_its_binary() -> None:
    files = {"/usr/local/include/node/node_version.h": fixture("node_version-0.12.1.h"), "/usr/local/bin/node": b""}
    packages, warnings, incomplete = extract(files)
    assert (warnings, incomplete) == ([], [])
    assert packages == [generic("node", "0.12.1", "/usr/local/include/node/node_version.h")]


def test_node_headers_without_the_binary_are_not_a_runtime() -> None:
    packages, warnings, _ = extract({"/usr/local/include/node/node_version.h": fixture("node_version-0.12.1.h")})
    assert (packages, warnings) == ([], [])


def test_unreleased_node_build_is_pre() -> None:
    header = fixture("node_version-0.12.1.h").replace(b"NODE_VERSION_IS_RELEASE 1", b"NODE_VERSION_IS_RELEASE 0")
    packages, _, _ = extract({"/usr/local/include/node/node_version.h": header, "/usr/local/bin/node": b""})
    assert [p.version for p in packages] == ["0.12.1-pre"]


@pytest.mark.parametrize("path", ["/opt/java/openjdk/release", "/usr/local/openjdk-8/release"])
def test_openjdk_from_its_release_file(path: str) -> None:
    packages, warnings, incomplete = extract({path: fixture("jdk-release-1.8.0_411")})
    assert (warnings, incomplete) == ([], [])
    assert packages == [generic("openjdk", "1.8.0_411", path)]


def test_openjdk_implementor_is_kept() -> None:
    release = b'IMPLEMENTOR="Eclipse Adoptium"\n' + fixture("jdk-release-1.8.0_411")
    packages, _, _ = extract({"/opt/java/openjdk/release": release})
    assert packages[0].metadata == (("implementor", "Eclipse Adoptium"),)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"/usr/local/include/python3.7/patchlevel.h": b"/* empty */\n", "/usr/local/bin/python3.7": b""},
            "/usr/local/include/python3.7/patchlevel.h: no PY_VERSION: python runtime not reported",
        ),
        (
            {"/usr/local/include/node/node_version.h": b"#define NODE_MAJOR_VERSION 20\n", "/usr/local/bin/node": b""},
            "/usr/local/include/node/node_version.h: no NODE_MAJOR/MINOR/PATCH_VERSION: node runtime not reported",
        ),
        (
            {"/opt/java/openjdk/release": b'JAVA_VERSION="<script>"\n'},
            "/opt/java/openjdk/release: an unreadable '<script>' as JAVA_VERSION: openjdk runtime not reported",
        ),
    ],
)
def test_a_file_without_a_readable_version_is_a_warning(files: dict[str, bytes], message: str) -> None:
    packages, warnings, incomplete = extract(files)
    assert (packages, warnings, incomplete) == ([], [message], [])


def test_a_file_over_the_byte_bound_is_incomplete() -> None:
    release = fixture("jdk-release-1.8.0_411")
    packages, warnings, incomplete = extract(
        {"/opt/java/openjdk/release": release}, Limits(max_package_db_bytes=len(release) - 1)
    )
    assert (packages, warnings) == ([], [])
    assert incomplete == [
        f"/opt/java/openjdk/release: {len(release)} bytes, over the limit of {len(release) - 1}"
        " (limit max_package_db_bytes)"
    ]


def test_every_runtime_of_one_image() -> None:
    files = {
        "/usr/local/go/VERSION": fixture("go-VERSION-go1.27.2"),
        "/usr/local/include/python3.7/patchlevel.h": fixture("patchlevel-3.7.13.h"),
        "/usr/local/bin/python3.7": b"",
        "/usr/local/include/node/node_version.h": fixture("node_version-0.12.1.h"),
        "/usr/local/bin/node": b"",
        "/opt/java/openjdk/release": fixture("jdk-release-1.8.0_411"),
    }
    packages, _, _ = extract(files)
    assert sorted((p.name, p.version, p.evidence) for p in packages) == [
        ("node", "0.12.1", "runtime"),
        ("openjdk", "1.8.0_411", "runtime"),
        ("python", "3.7.13", "runtime"),
        ("stdlib", "v1.27.2", "runtime"),
    ]
