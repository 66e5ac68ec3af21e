"""DotnetDetector: path selection, published apps' deps.json and NuGet lockfiles on real peers' files (see
tests/fixtures/dotnet/SOURCES.md), shared frameworks in the official layout, and hand-made hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.inventory.detectors import dotnet
from scanner.inventory.detectors.base import DetectContext, MemoryFileSet
from scanner.inventory.detectors.dotnet import DotnetDetector
from scanner.model.limits import Limits
from scanner.model.types import Evidence, RawPackage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dotnet"


def shared_framework(root: str, framework: str, version: str, rid: str) -> dict[str, bytes]:
    """A shared framework directory as the official tarballs lay it out: `.version` (commit, then version)
    and the runtime pack's manifest `<framework>.deps.json`, whose one library is the runtime pack. Made by
    hand after that layout (no peer publishes these files); the commit line is a placeholder."""
    directory = f"{root}/shared/{framework}/{version}"
    pack = f"{framework}.Runtime.{rid}/{version}"
    target = f".NETCoreApp,Version=v{version.rsplit('.', 1)[0]}"
    manifest = {
        "runtimeTarget": {"name": f"{target}/{rid}", "signature": ""},
        "compilationOptions": {},
        "targets": {target: {}, f"{target}/{rid}": {pack: {"runtime": {f"{framework}.dll": {}}}}},
        "libraries": {pack: {"type": "package", "serviceable": True, "sha512": "", "path": pack.lower()}},
    }
    return {
        f"{directory}/.version": f"{'0' * 40}\n{version}\n".encode(),
        f"{directory}/{framework}.deps.json": json.dumps(manifest, indent=2).encode(),
    }


def extract(files: dict[str, bytes], ctx: DetectContext | None = None) -> tuple[list[RawPackage], list[str]]:
    out = DotnetDetector().extract(MemoryFileSet(files), ctx or DetectContext())
    assert not out.incomplete
    return out.packages, [str(w) for w in out.warnings]


def nuget(name: str, version: str, location: str, evidence: Evidence = "installed", **meta: str) -> RawPackage:
    return RawPackage(
        name=name,
        version=version,
        ecosystem="NuGet",
        purl=f"pkg:nuget/{name}@{version}",
        source_name=name,
        source_version=version,
        locations=(location,),
        kind="nuget",
        metadata=tuple(meta.items()),
        evidence=evidence,
    )


def deps(case: str, path: str = "/app/App.deps.json") -> dict[str, bytes]:
    return {path: (FIXTURES / "deps" / f"{case}.deps.json").read_bytes()}


def test_plugin_identity_and_registration() -> None:
    from scanner.inventory.detectors.plugins import default_registry

    detector = default_registry().get("dotnet")
    assert (detector.name, detector.version, detector.group) == ("dotnet", 1, "language")


@pytest.mark.parametrize(
    "path",
    [
        "/app/App.deps.json",
        "/usr/share/dotnet/sdk/8.0.100/dotnet.deps.json",
        "/src/packages.lock.json",
        "/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.11/.version",
        "/usr/lib/dotnet/shared/Microsoft.AspNetCore.App/8.0.11/.version",
        "/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.11/Microsoft.NETCore.App.deps.json",
    ],
)
def test_required_accepts(path: str) -> None:
    assert DotnetDetector().required(path)


@pytest.mark.parametrize(
    "path",
    [
        "/app/App.dll",
        "/app/App.runtimeconfig.json",
        "/app/deps.json.bak",
        "/src/packages.lock.json.orig",
        "/app/.version",
        "/usr/share/dotnet/shared/Microsoft.WindowsDesktop.App/8.0.11/.version",
        "/usr/share/dotnet/shared/Microsoft.NETCore.App/current/.version",
        "/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.11/sub/.version",
    ],
)
def test_required_rejects(path: str) -> None:
    assert not DotnetDetector().required(path)


def test_single_package_app() -> None:
    # trivy's happy path: the app (type project) is its own code, Newtonsoft.Json the one package.
    assert extract(deps("single")) == ([nuget("Newtonsoft.Json", "13.0.1", "/app/App.deps.json")], [])


def test_many_packages_app() -> None:
    # syft's TestLibrary: 12 package libraries, two of them (TestCommon, TestLibrary) projects.
    packages, warnings = extract(deps("many"))
    assert warnings == []
    assert [(p.name, p.version) for p in packages] == [
        ("AWSSDK.Core", "3.7.10.6"),
        ("Microsoft.Extensions.DependencyInjection", "6.0.0"),
        ("Microsoft.Extensions.DependencyInjection.Abstractions", "6.0.0"),
        ("Microsoft.Extensions.Logging", "6.0.0"),
        ("Microsoft.Extensions.Logging.Abstractions", "6.0.0"),
        ("Microsoft.Extensions.Options", "6.0.0"),
        ("Microsoft.Extensions.Primitives", "6.0.0"),
        ("Newtonsoft.Json", "13.0.1"),
        ("Serilog", "2.10.0"),
        ("Serilog.Sinks.Console", "4.0.1"),
    ]
    assert {p.evidence for p in packages} == {"installed"}
    assert packages[0].purl == "pkg:nuget/AWSSDK.Core@3.7.10.6"


@pytest.mark.parametrize("case", ["empty", "no-libraries"])
def test_manifests_without_packages(case: str) -> None:
    assert extract(deps(case)) == ([], [])


def test_invalid_json_is_a_warning() -> None:
    packages, warnings = extract(deps("invalid"))
    assert packages == [] and len(warnings) == 1
    assert warnings[0].startswith("/app/App.deps.json: malformed JSON")


def test_meta_packages_without_assets_are_skipped() -> None:
    # trivy's "skipped libs": Microsoft.NETCore.App 1.1.2, NETStandard.Library, System.Net.Http and
    # Microsoft.NETCore.Platforms have no runtime/native assets in the target; System.Collections.Immutable
    # is absent from the target, so nothing says it does not load.
    packages, _ = extract(deps("without-runtime"))
    assert [(p.name, p.version) for p in packages] == [
        ("JsonDiffPatch", "2.0.61"),
        ("Libuv", "1.9.1"),
        ("System.Collections.Immutable", "1.3.0"),
    ]


@pytest.mark.parametrize(
    ("case", "expected"),
    [("missing-target", "13.0.1"), ("multi-project", "13.0.3"), ("referenceassembly", "13.0.3")],
)
def test_projects_reference_assemblies_and_missing_targets(case: str, expected: str) -> None:
    # Projects and reference assemblies are not packages; a manifest whose runtime target is absent has
    # every package reported.
    assert extract(deps(case)) == ([nuget("Newtonsoft.Json", expected, "/app/App.deps.json")], [])


def test_self_contained_app_reports_its_runtime_packs() -> None:
    packages, _ = extract(deps("self-contained"))
    location = "/app/App.deps.json"
    assert packages == [
        nuget("Newtonsoft.Json", "13.0.1", location),
        nuget("Microsoft.NETCore.App.Runtime.linux-x64", "8.0.0", location, "runtime", self_contained="true"),
        nuget("Microsoft.AspNetCore.App.Runtime.linux-x64", "8.0.0", location, "runtime", self_contained="true"),
    ]


def test_library_without_version_is_a_warning() -> None:
    packages, warnings = extract(deps("nopackagename"))
    assert [(p.name, p.version) for p in packages] == [("AWSSDK.Core", "3.7.10.6")]
    assert warnings == [
        "/app/App.deps.json: library 'Microsoft.Extensions.DependencyInjection' is not Name/Version; skipped"
    ]


def lock(case: str) -> dict[str, bytes]:
    return {"/src/packages.lock.json": (FIXTURES / "lock" / case / "packages.lock.json").read_bytes()}


def test_lockfile_many() -> None:
    # syft's net8.0 app: 51 entries (2 direct), and an empty net8.0/win-x64 section.
    packages, warnings = extract(lock("many"))
    assert warnings == [] and len(packages) == 51
    assert {p.evidence for p in packages} == {"lockfile"}
    direct = [(p.name, p.version) for p in packages if ("dependency", "direct") in p.metadata]
    assert direct == [("Humanizer", "2.14.1"), ("Newtonsoft.Json", "13.0.3")]


def test_lockfile_several() -> None:
    packages, _ = extract(lock("several"))
    assert packages[0] == nuget("Core.Dep", "1.24.0", "/src/packages.lock.json", "lockfile", dependency="direct")
    assert len(packages) == 8


def test_lockfile_invalid_and_project_entries_and_frameworks_once() -> None:
    packages, warnings = extract(lock("invalid"))
    assert packages == [] and warnings[0].startswith("/src/packages.lock.json: malformed JSON")
    entry = {"type": "Transitive", "resolved": "4.3.0"}
    document = {
        "version": 2,
        "dependencies": {
            "net8.0": {"System.Net.Http": entry, "Lib": {"type": "Project"}, "Bad Name": entry},
            "net8.0/linux-x64": {"System.Net.Http": entry},
        },
    }
    packages, warnings = extract({"/src/packages.lock.json": json.dumps(document).encode()})
    assert [(p.name, p.version) for p in packages] == [("System.Net.Http", "4.3.0")]
    assert warnings == ["/src/packages.lock.json: entry 'Bad Name' has no valid name and version; skipped"]


def test_shared_frameworks_of_the_aspnet_image() -> None:
    files = shared_framework("/usr/share/dotnet", "Microsoft.NETCore.App", "8.0.11", "linux-x64")
    files |= shared_framework("/usr/share/dotnet", "Microsoft.AspNetCore.App", "8.0.11", "linux-x64")
    packages, warnings = extract(files)
    base = "/usr/share/dotnet/shared"
    assert warnings == []
    assert packages == [
        nuget(
            "Microsoft.AspNetCore.App.Runtime.linux-x64",
            "8.0.11",
            f"{base}/Microsoft.AspNetCore.App/8.0.11/Microsoft.AspNetCore.App.deps.json",
            "runtime",
            framework="Microsoft.AspNetCore.App",
            rid="linux-x64",
        ),
        nuget(
            "Microsoft.NETCore.App.Runtime.linux-x64",
            "8.0.11",
            f"{base}/Microsoft.NETCore.App/8.0.11/Microsoft.NETCore.App.deps.json",
            "runtime",
            framework="Microsoft.NETCore.App",
            rid="linux-x64",
        ),
    ]


def test_musl_runtime_and_two_versions_side_by_side() -> None:
    files = shared_framework("/usr/lib/dotnet", "Microsoft.NETCore.App", "6.0.36", "linux-musl-x64")
    files |= shared_framework("/usr/lib/dotnet", "Microsoft.NETCore.App", "8.0.11", "linux-musl-x64")
    packages, _ = extract(files)
    assert [(p.name, p.version) for p in packages] == [
        ("Microsoft.NETCore.App.Runtime.linux-musl-x64", "6.0.36"),
        ("Microsoft.NETCore.App.Runtime.linux-musl-x64", "8.0.11"),
    ]


def test_runtime_identifier_from_the_runtime_target_or_unknown() -> None:
    files = shared_framework("/usr/share/dotnet", "Microsoft.NETCore.App", "8.0.11", "linux-arm64")
    manifest = next(p for p in files if p.endswith(".deps.json"))
    document = json.loads(files[manifest])
    document["libraries"] = {}
    files[manifest] = json.dumps(document).encode()
    packages, _ = extract(files)
    assert [(p.name, p.version) for p in packages] == [("Microsoft.NETCore.App.Runtime.linux-arm64", "8.0.11")]

    # Only `.version`: the version is known, the runtime identifier not: the framework's own name.
    only_version = {p: b for p, b in files.items() if p.endswith("/.version")}
    packages, warnings = extract(only_version)
    assert [(p.name, p.version, p.evidence) for p in packages] == [("Microsoft.NETCore.App", "8.0.11", "runtime")]
    assert "no runtime identifier" in warnings[0]


def test_version_file_without_a_version_falls_back_to_the_directory() -> None:
    files = {"/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.11/.version": b"\n \xff\xfe garbage here\n"}
    packages, warnings = extract(files)
    assert [(p.name, p.version) for p in packages] == [("Microsoft.NETCore.App", "8.0.11")]
    assert "no version in the file" in warnings[0]


def test_runtime_and_app_together() -> None:
    files = shared_framework("/usr/share/dotnet", "Microsoft.NETCore.App", "8.0.11", "linux-x64") | deps("single")
    packages, _ = extract(files)
    assert [(p.name, p.evidence) for p in packages] == [
        ("Newtonsoft.Json", "installed"),
        ("Microsoft.NETCore.App.Runtime.linux-x64", "runtime"),
    ]


@pytest.mark.parametrize(
    "document",
    [
        b"[1, 2]",
        b'{"libraries": []}',
        b'{"libraries": {"A/1.0": "x", "B/2.0": {"type": 3}}}',
        b'{"libraries": {"A/1.0": {"type": "package"}}, "targets": [], "runtimeTarget": "x"}',
        b'{"libraries": {"A/1 0": {"type": "package"}, "/1.0": {"type": "package"}}}',
        "\ufeff{}".encode(),
        b"\x00\xff\xfe",
    ],
)
def test_hostile_deps_json_never_crashes(document: bytes) -> None:
    out = DotnetDetector().extract(MemoryFileSet({"/app/A.deps.json": document}), DetectContext())
    assert not out.incomplete
    assert all(p.name == "A" for p in out.packages)


def test_deeply_nested_json_is_incomplete() -> None:
    document = b'{"libraries": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    out = DotnetDetector().extract(MemoryFileSet({"/app/A.deps.json": document}), DetectContext())
    assert out.packages == []
    assert out.incomplete and "nested deeper" in out.incomplete[0].message


def test_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    big = deps("many")
    out = DotnetDetector().extract(MemoryFileSet(big), DetectContext(limits=Limits(max_package_db_bytes=100)))
    assert out.packages == [] and "max_package_db_bytes" in out.incomplete[0].message

    out = DotnetDetector().extract(MemoryFileSet(big), DetectContext(packages_left=3))
    assert len(out.packages) == 3 and "max_packages" in out.incomplete[0].message

    monkeypatch.setattr(dotnet, "MAX_ENTRIES", 5)
    out = DotnetDetector().extract(MemoryFileSet(big | lock("many")), DetectContext())
    assert out.packages == [p for p in out.packages if p.evidence == "lockfile"] and len(out.packages) == 5
    assert len(out.incomplete) == 2

    monkeypatch.setattr(dotnet, "MAX_FILES", 1)
    files = deps("single", "/a/A.deps.json") | deps("single", "/b/B.deps.json")
    out = DotnetDetector().extract(MemoryFileSet(files), DetectContext())
    assert [p.locations for p in out.packages] == [("/a/A.deps.json",)]
    assert "more than 1 .NET manifests" in out.incomplete[0].message
