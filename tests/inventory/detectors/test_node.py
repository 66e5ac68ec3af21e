"""NodeDetector: path selection, installed node_modules trees and lockfiles v1/v2/v3, on real npm output
(see tests/fixtures/node/SOURCES.md) and on hand-made hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.inventory.detectors import node
from scanner.inventory.detectors.base import DetectContext, MemoryFileSet
from scanner.inventory.detectors.node import NodeDetector
from scanner.model.limits import Limits
from scanner.model.types import RawPackage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "node"


def fixture_tree(scenario: str) -> dict[str, bytes]:
    """One fixture scenario as image paths (`fixtures/node/<scenario>/app/...` -> `/app/...`)."""
    root = FIXTURES / scenario
    return {"/" + p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def extract(files: dict[str, bytes]) -> tuple[list[RawPackage], list[str]]:
    out = NodeDetector().extract(MemoryFileSet(files), DetectContext())
    return out.packages, [str(w) for w in out.warnings]


def npm(
    name: str, version: str, purl: str, location: str, install_path: str, *flags: str, licence: str = "MIT"
) -> RawPackage:
    metadata = [("install_path", install_path)] + [(flag, "true") for flag in flags]
    if licence:
        metadata.append(("license", licence))
    return RawPackage(
        name=name,
        version=version,
        ecosystem="npm",
        purl=purl,
        source_name=name,
        source_version=version,
        locations=(location,),
        kind="npm",
        metadata=tuple(metadata),
        # What a lockfile says is "lockfile" evidence; a package.json in node_modules is "installed".
        evidence="installed" if location.endswith("/package.json") else "lockfile",
    )


def installed(name: str, version: str, purl: str, install_path: str) -> RawPackage:
    return npm(name, version, purl, f"{install_path}/package.json", install_path)


def test_plugin_identity() -> None:
    detector = NodeDetector()
    assert (detector.name, detector.version, detector.group) == ("node", 2, "language")
    assert detector.ident == "node@2"


@pytest.mark.parametrize(
    "path",
    [
        "/app/node_modules/ms/package.json",
        "/app/node_modules/@types/node/package.json",
        "/node_modules/ms/package.json",
        "/app/node_modules/debug/node_modules/ms/package.json",
        "/a/node_modules/b/node_modules/c/package.json",
        "/a/node_modules/@s/b/node_modules/@t/c/package.json",
        "/usr/lib/node_modules/npm/package.json",
        "/usr/local/lib/node_modules/npm/node_modules/semver/package.json",
        # pnpm's content-addressed store: the real directory of each package.
        "/app/node_modules/.pnpm/ms@2.1.3/node_modules/ms/package.json",
        "/app/package-lock.json",
        "/package-lock.json",
        "/srv/www/site/npm-shrinkwrap.json",
        "/app/yarn.lock",
        "/app/pnpm-lock.yaml",
    ],
)
def test_required_accepts(path: str) -> None:
    assert NodeDetector().required(path)


@pytest.mark.parametrize(
    "path",
    [
        # Project manifests and files deeper inside a package are not installed packages.
        "/app/package.json",
        "/app/node_modules/foo/lib/package.json",
        "/app/node_modules/@scope/foo/lib/package.json",
        "/app/node_modules/foo/node_modules/bar/dist/esm/package.json",
        "/app/node_modules/@scope/package.json",
        "/app/node_modules/package.json",
        "/app/node_modules/.pnpm/package.json",
        "/app/node_modules/.cache/x/package.json",
        "/app/node_modules/@scope/.bin/package.json",
        "/app/node_modules/@/x/package.json",
        # Lockfiles inside node_modules: the hidden lockfile and ones shipped inside packages.
        "/app/node_modules/.package-lock.json",
        "/app/node_modules/foo/package-lock.json",
        "/app/node_modules/foo/npm-shrinkwrap.json",
        "/app/node_modules/package-lock.json",
        "/app/node_modules/foo/yarn.lock",
        "/app/node_modules/foo/pnpm-lock.yaml",
        "/app/yarn.lock.orig",
        # Look-alikes.
        "/app/node_modules/ms/package.json5",
        "/app/node_modules/ms/xpackage.json",
        "/app/package-lock.json.bak",
        "/app/node_modules/ms/index.js",
        "/",
    ],
)
def test_required_rejects(path: str) -> None:
    assert not NodeDetector().required(path)


V3_TREE = [
    installed("@types/node", "26.6.6", "pkg:npm/%40types/node@26.6.6", "/app/node_modules/@types/node"),
    installed("ms", "2.0.0", "pkg:npm/ms@2.0.0", "/app/node_modules/debug/node_modules/ms"),
    installed("debug", "2.6.9", "pkg:npm/debug@2.6.9", "/app/node_modules/debug"),
    installed("is-number", "7.0.0", "pkg:npm/is-number@7.0.0", "/app/node_modules/is-number"),
    installed("ms", "2.1.3", "pkg:npm/ms@2.1.3", "/app/node_modules/ms"),
    installed("undici-types", "8.9.0", "pkg:npm/undici-types@8.9.0", "/app/node_modules/undici-types"),
]


def test_v3_installed_tree_is_reported_once() -> None:
    # The whole `npm install` output: root package.json, package-lock.json v3, the hidden lockfile and
    # six installed packages (one nested). The lockfile adds nothing: the installed tree is the truth.
    packages, warnings = extract(fixture_tree("v3-installed"))
    assert warnings == []
    assert packages == V3_TREE


def test_v3_lockfile_alone() -> None:
    files = {"/app/package-lock.json": fixture_tree("v3-installed")["/app/package-lock.json"]}
    lock = "/app/package-lock.json"
    packages, warnings = extract(files)
    assert warnings == []
    assert packages == [
        npm("@types/node", "26.6.6", "pkg:npm/%40types/node@26.6.6", lock, "/app/node_modules/@types/node"),
        npm("debug", "2.6.9", "pkg:npm/debug@2.6.9", lock, "/app/node_modules/debug"),
        npm("ms", "2.0.0", "pkg:npm/ms@2.0.0", lock, "/app/node_modules/debug/node_modules/ms"),
        npm("is-number", "7.0.0", "pkg:npm/is-number@7.0.0", lock, "/app/node_modules/is-number"),
        npm("ms", "2.1.3", "pkg:npm/ms@2.1.3", lock, "/app/node_modules/ms"),
        npm("undici-types", "8.9.0", "pkg:npm/undici-types@8.9.0", lock, "/app/node_modules/undici-types"),
    ]


LOCK = "/app/package-lock.json"
V2_LOCK_ROOT = [
    npm("debug", "2.6.9", "pkg:npm/debug@2.6.9", LOCK, "/app/node_modules/debug", "dev"),
    npm("is-number", "7.0.0", "pkg:npm/is-number@7.0.0", LOCK, "/app/node_modules/is-number"),
    npm("ms", "2.0.0", "pkg:npm/ms@2.0.0", LOCK, "/app/node_modules/ms", "dev"),
    # The alias my-ms -> ms@2.1.2 is reported under the real name.
    npm("ms", "2.1.2", "pkg:npm/ms@2.1.2", LOCK, "/app/node_modules/my-ms"),
]
# From `packages` (a workspace's own node_modules), not from v2's legacy `dependencies` section, which
# puts this ms under node_modules/@demo/util/node_modules.
V2_LOCK_WORKSPACE = npm("ms", "2.1.3", "pkg:npm/ms@2.1.3", LOCK, "/app/packages/util/node_modules/ms")


def test_v2_workspace_lockfile_alone() -> None:
    # The workspace root "", the workspace source "packages/util" and its link "node_modules/@demo/util"
    # are the project's own code: not reported. Dev entries are, flagged.
    files = {LOCK: fixture_tree("v2-workspace")[LOCK]}
    packages, warnings = extract(files)
    assert warnings == []
    assert packages == [*V2_LOCK_ROOT, V2_LOCK_WORKSPACE]


def test_v2_workspace_installed() -> None:
    packages, warnings = extract(fixture_tree("v2-workspace"))
    assert warnings == []
    assert packages == [
        installed("debug", "2.6.9", "pkg:npm/debug@2.6.9", "/app/node_modules/debug"),
        installed("is-number", "7.0.0", "pkg:npm/is-number@7.0.0", "/app/node_modules/is-number"),
        installed("ms", "2.0.0", "pkg:npm/ms@2.0.0", "/app/node_modules/ms"),
        installed("ms", "2.1.2", "pkg:npm/ms@2.1.2", "/app/node_modules/my-ms"),
        installed("ms", "2.1.3", "pkg:npm/ms@2.1.3", "/app/packages/util/node_modules/ms"),
    ]


def test_omitted_dev_dependencies_are_not_resurrected_by_the_lockfile() -> None:
    # `npm ci --omit=dev`: debug and ms@2.0.0 are in the lockfile but not on disk.
    files = fixture_tree("v2-workspace")
    del files["/app/node_modules/debug/package.json"]
    del files["/app/node_modules/ms/package.json"]
    packages, _ = extract(files)
    assert [(p.name, p.version) for p in packages] == [("is-number", "7.0.0"), ("ms", "2.1.2"), ("ms", "2.1.3")]


def test_lockfile_fills_in_only_trees_that_are_absent() -> None:
    # The root tree is installed, the workspace's own node_modules is not: its entry comes from the lockfile.
    files = fixture_tree("v2-workspace")
    del files["/app/packages/util/node_modules/ms/package.json"]
    packages, warnings = extract(files)
    assert warnings == []
    assert [(p.name, p.version, p.locations[0]) for p in packages] == [
        ("debug", "2.6.9", "/app/node_modules/debug/package.json"),
        ("is-number", "7.0.0", "/app/node_modules/is-number/package.json"),
        ("ms", "2.0.0", "/app/node_modules/ms/package.json"),
        ("ms", "2.1.2", "/app/node_modules/my-ms/package.json"),
        ("ms", "2.1.3", LOCK),
    ]


def test_v1_lockfile() -> None:
    packages, warnings = extract(fixture_tree("v1-lockfile"))
    assert warnings == []
    # v1 entries carry no licence.
    assert packages == [
        npm(
            "@types/node", "20.11.0", "pkg:npm/%40types/node@20.11.0", LOCK, "/app/node_modules/@types/node", licence=""
        ),
        npm("debug", "2.6.9", "pkg:npm/debug@2.6.9", LOCK, "/app/node_modules/debug", licence=""),
        npm("ms", "2.0.0", "pkg:npm/ms@2.0.0", LOCK, "/app/node_modules/debug/node_modules/ms", licence=""),
        npm("is-number", "7.0.0", "pkg:npm/is-number@7.0.0", LOCK, "/app/node_modules/is-number", "dev", licence=""),
        npm("ms", "2.1.3", "pkg:npm/ms@2.1.3", LOCK, "/app/node_modules/ms", licence=""),
        npm("ms", "2.1.2", "pkg:npm/ms@2.1.2", LOCK, "/app/node_modules/my-ms", licence=""),
        npm(
            "undici-types", "5.26.5", "pkg:npm/undici-types@5.26.5", LOCK, "/app/node_modules/undici-types", licence=""
        ),
    ]


def lockfile(document: object) -> bytes:
    return json.dumps(document).encode()


def test_shrinkwrap_wins_over_package_lock_in_the_same_directory() -> None:
    entry = {"packages": {"node_modules/ms": {"version": "2.1.3"}}, "lockfileVersion": 3}
    files = {"/app/package-lock.json": lockfile(entry), "/app/npm-shrinkwrap.json": lockfile(entry)}
    packages, _ = extract(files)
    assert [(p.name, p.locations) for p in packages] == [("ms", ("/app/npm-shrinkwrap.json",))]


def test_lockfile_at_the_filesystem_root() -> None:
    files = {"/package-lock.json": lockfile({"lockfileVersion": 1, "dependencies": {"ms": {"version": "2.1.3"}}})}
    packages, _ = extract(files)
    assert [dict(p.metadata)["install_path"] for p in packages] == ["/node_modules/ms"]
    files["/node_modules/ms/package.json"] = b'{"name": "ms", "version": "2.1.3"}'
    assert [p.locations for p in extract(files)[0]] == [("/node_modules/ms/package.json",)]


def test_v1_non_registry_versions_and_flags() -> None:
    document = {
        "lockfileVersion": 1,
        "dependencies": {
            # A local link and a git dependency are skipped; what they bring in is not.
            "local": {"version": "file:packages/local", "dependencies": {"a": {"version": "1.0.0"}}},
            "gitdep": {"version": "git+https://github.com/x/gitdep.git#0123abc", "dependencies": {}},
            "gh": {"version": "github:x/gh#0123abc"},
            "@s/alias": {"version": "npm:@t/real@3.0.0", "optional": True},
            "both": {"version": "1.0.0", "devOptional": True},
            "peer": {"version": "1.0.0", "peer": True, "dev": True},
        },
    }
    packages, warnings = extract({LOCK: lockfile(document)})
    assert warnings == []
    assert [(p.name, p.version, p.purl, p.metadata) for p in packages] == [
        (
            "@t/real",
            "3.0.0",
            "pkg:npm/%40t/real@3.0.0",
            (("install_path", "/app/node_modules/@s/alias"), ("optional", "true")),
        ),
        (
            "both",
            "1.0.0",
            "pkg:npm/both@1.0.0",
            (("install_path", "/app/node_modules/both"), ("dev", "true"), ("optional", "true")),
        ),
        ("a", "1.0.0", "pkg:npm/a@1.0.0", (("install_path", "/app/node_modules/local/node_modules/a"),)),
        (
            "peer",
            "1.0.0",
            "pkg:npm/peer@1.0.0",
            (("install_path", "/app/node_modules/peer"), ("dev", "true"), ("peer", "true")),
        ),
    ]


def test_manifest_details() -> None:
    files = {
        # Installed dependencies are reported whatever they say about themselves.
        "/app/node_modules/a/package.json": b'{"name": "a", "version": " 1.0.0 ", "private": true}',
        # Old manifests give the licence as an object.
        "/app/node_modules/b/package.json": b'{"name": "b", "version": "2.0.0", "license": {"type": "ISC"}}',
        # A UTF-8 byte order mark is fine.
        "/app/node_modules/c/package.json": b'\xef\xbb\xbf{"name": "c", "version": "3.0.0", "license": ["x"]}',
        # A legacy mixed-case name: the purl lower-cases it, the name keeps it.
        "/app/node_modules/JSONStream/package.json": b'{"name": "JSONStream", "version": "1.3.5"}',
        # A stub manifest shipped inside a package (test fixture, shim): not a package, no warning.
        "/app/node_modules/x/node_modules/stub/package.json": b'{"main": "index.js"}',
    }
    packages, warnings = extract(files)
    assert warnings == []
    assert [(p.name, p.version, p.purl, p.metadata) for p in packages] == [
        ("JSONStream", "1.3.5", "pkg:npm/jsonstream@1.3.5", (("install_path", "/app/node_modules/JSONStream"),)),
        ("a", "1.0.0", "pkg:npm/a@1.0.0", (("install_path", "/app/node_modules/a"),)),
        ("b", "2.0.0", "pkg:npm/b@2.0.0", (("install_path", "/app/node_modules/b"), ("license", "ISC"))),
        ("c", "3.0.0", "pkg:npm/c@3.0.0", (("install_path", "/app/node_modules/c"),)),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"name": "a", "version": 1}', "package.json of a has no valid version (1); skipped"),
        (b'{"name": "a", "version": null}', "package.json of a has no valid version (None); skipped"),
        (b'{"name": "a", "version": "1.0 beta"}', "package.json of a has no valid version ('1.0 beta'); skipped"),
        (b'{"name": "a"}', "package.json of a has no valid version (None); skipped"),
        (b'{"version": "1.0.0"}', "package.json has no valid name (None); skipped"),
        (b'{"name": ["a"], "version": "1.0.0"}', "package.json has no valid name (['a']); skipped"),
        (b'{"name": "@scope", "version": "1.0.0"}', "package.json has no valid name ('@scope'); skipped"),
        (b'{"name": "a/b/c", "version": "1.0.0"}', "package.json has no valid name ('a/b/c'); skipped"),
        (b"[1, 2]", "JSON document is not an object; skipped"),
        (b"", "malformed JSON (Expecting value: line 1 column 1 (char 0)); skipped"),
        (
            b'{"name": "a",',
            "malformed JSON (Expecting property name enclosed in double quotes: line 1 column 14 (char 13)); skipped",
        ),
        (
            b'{"name": "\xff"}',
            "malformed JSON ('utf-8' codec can't decode byte 0xff in position 10: invalid start byte); skipped",
        ),
    ],
)
def test_bad_manifest_is_skipped_with_a_warning(data: bytes, message: str) -> None:
    path = "/app/node_modules/a/package.json"
    good = "/app/node_modules/good/package.json"
    packages, warnings = extract({path: data, good: b'{"name": "good", "version": "1.0.0"}'})
    assert [p.name for p in packages] == ["good"]
    assert warnings == [f"{path}: {message}"]


@pytest.mark.parametrize(
    ("document", "messages"),
    [
        ({"lockfileVersion": 3, "packages": []}, ["lockfile packages/dependencies is not an object; skipped"]),
        ({"lockfileVersion": 1, "dependencies": "x"}, ["lockfile packages/dependencies is not an object; skipped"]),
        (
            {"lockfileVersion": 3, "packages": {"node_modules/a": 1}},
            ["entry 'node_modules/a' is not an object; skipped"],
        ),
        (
            {"lockfileVersion": 3, "packages": {"node_modules/a": {"version": 1}}},
            ["entry 'node_modules/a' has no valid version (1); skipped"],
        ),
        (
            {"lockfileVersion": 3, "packages": {"node_modules/a": {}}},
            ["entry 'node_modules/a' has no valid version (None); skipped"],
        ),
        (
            {"lockfileVersion": 3, "packages": {"node_modules/a": {"name": 5, "version": "1.0.0"}}},
            ["entry 'node_modules/a' has no valid name (5); skipped"],
        ),
        (
            {"lockfileVersion": 3, "packages": {"node_modules/": {"version": "1.0.0"}}},
            ["entry 'node_modules/' has no valid name (''); skipped"],
        ),
        ({"lockfileVersion": 1, "dependencies": {"a": []}}, ["dependency 'a' is not a package entry; skipped"]),
        (
            {"lockfileVersion": 1, "dependencies": {"a b": {"version": "1"}}},
            ["dependency 'a b' is not a package entry; skipped"],
        ),
        (
            {"lockfileVersion": 1, "dependencies": {"a": {"version": True}}},
            ["dependency 'a' has no valid version (True); skipped"],
        ),
        (
            {"lockfileVersion": 1, "dependencies": {"a": {"version": "npm:@x"}}},
            ["dependency 'a' has a bad alias; skipped"],
        ),
        (
            {"lockfileVersion": 1, "dependencies": {"a": {"version": ""}}},
            ["dependency 'a' has no valid version (''); skipped"],
        ),
        ({"lockfileVersion": 99}, ["unknown lockfileVersion 99; read as best we can"]),
        ({}, ["unknown lockfileVersion None; read as best we can"]),
    ],
)
def test_bad_lockfile_content_is_skipped_with_a_warning(document: object, messages: list[str]) -> None:
    packages, warnings = extract({LOCK: lockfile(document)})
    assert packages == []
    assert warnings == [f"{LOCK}: {m}" for m in messages]


def test_unknown_lockfile_version_is_still_read() -> None:
    document = {"lockfileVersion": 4, "packages": {"node_modules/a": {"version": "1.0.0"}}}
    packages, warnings = extract({LOCK: lockfile(document)})
    assert [p.name for p in packages] == ["a"]
    assert warnings == [f"{LOCK}: unknown lockfileVersion 4; read as best we can"]


def nested_v1(depth: int) -> dict[str, object]:
    """A v1 lockfile whose tree nests `depth` levels: pkg0 > pkg1 > … (each one node_modules deeper)."""
    tree: dict[str, object] = {}
    for level in reversed(range(depth)):
        entry: dict[str, object] = {"version": "1.0.0"}
        if tree:
            entry["dependencies"] = tree
        tree = {f"pkg{level}": entry}
    return {"lockfileVersion": 1, "dependencies": tree}


def incomplete(files: dict[str, bytes], limits: Limits | None = None) -> tuple[list[RawPackage], list[str], list[str]]:
    """Packages, warnings and what could not be read (the bounds hit)."""
    out = NodeDetector().extract(MemoryFileSet(files), DetectContext(limits=limits or Limits()))
    return out.packages, [str(w) for w in out.warnings], [str(w) for w in out.incomplete]


def test_deep_v1_tree_is_walked_to_a_bound_and_is_incomplete() -> None:
    packages, warnings, missing = incomplete({LOCK: lockfile(nested_v1(node.MAX_LOCK_DEPTH + 50))})
    assert len(packages) == node.MAX_LOCK_DEPTH
    deepest = max(dict(p.metadata)["install_path"].count("/node_modules/") for p in packages)
    assert deepest == node.MAX_LOCK_DEPTH
    assert warnings == []
    assert missing == [f"{LOCK}: dependencies nested deeper than {node.MAX_LOCK_DEPTH}; the deeper ones not read"]


@pytest.mark.parametrize("path", [LOCK, "/app/node_modules/a/package.json"])
def test_hostile_json_nesting_is_incomplete_not_a_warning(path: str) -> None:
    # Deep enough to exhaust the JSON decoder's recursion, whatever follows.
    good = "/app/node_modules/good/package.json"
    packages, warnings, missing = incomplete({path: b'{"a":' * 50_000, good: b'{"name": "good", "version": "1.0.0"}'})
    assert [p.name for p in packages] == ["good"]
    assert warnings == []
    assert missing == [f"{path}: JSON nested deeper than the parser's recursion limit; not read"]


def test_entry_count_is_bounded_and_incomplete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node, "MAX_LOCK_ENTRIES", 3)
    v3 = {"lockfileVersion": 3, "packages": {f"node_modules/p{i}": {"version": "1.0.0"} for i in range(10)}}
    packages, warnings, missing = incomplete({LOCK: lockfile(v3)})
    assert len(packages) == 3
    assert (warnings, missing) == ([], [f"{LOCK}: more than 3 entries; the rest not read"])
    v1 = {"lockfileVersion": 1, "dependencies": {f"p{i}": {"version": "1.0.0"} for i in range(10)}}
    packages, warnings, missing = incomplete({LOCK: lockfile(v1)})
    assert len(packages) == 3
    assert (warnings, missing) == ([], [f"{LOCK}: more than 3 entries; the rest not read"])


def test_lockfile_over_the_size_bound_is_not_read() -> None:
    data = lockfile({"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "1.0.0"}}})
    packages, _, missing = incomplete({LOCK: data}, Limits(max_package_db_bytes=len(data) - 1))
    assert packages == []
    assert missing == [f"{LOCK}: {len(data)} bytes, over the limit of {len(data) - 1} (limit max_package_db_bytes)"]


def test_packages_past_the_image_budget_are_not_kept() -> None:
    v3 = {"lockfileVersion": 3, "packages": {f"node_modules/p{i}": {"version": "1.0.0"} for i in range(5)}}
    packages, _, missing = incomplete({LOCK: lockfile(v3)}, Limits(max_packages=2))
    assert len(packages) == 2
    assert missing == [f"{LOCK}: more than 2 packages in the image (limit max_packages)"]


def test_files_not_required_are_ignored() -> None:
    files = {
        "/app/package.json": b'{"name": "app", "version": "1.0.0"}',
        "/app/node_modules/.package-lock.json": fixture_tree("v3-installed")["/app/node_modules/.package-lock.json"],
        "/app/node_modules/ms/lib/package.json": b'{"name": "inner", "version": "1.0.0"}',
    }
    assert extract(files) == ([], [])
