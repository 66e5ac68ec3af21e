"""NodeDetector on yarn.lock (v1 and Berry) and pnpm-lock.yaml (v5, v6, v9): peers' real test data (see
tests/fixtures/node-lockfiles/SOURCES.md) and hostile variants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.inventory.detectors import node
from scanner.inventory.detectors.base import DetectContext, Extraction, MemoryFileSet
from scanner.inventory.detectors.node import NodeDetector
from scanner.model.limits import Limits

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "node-lockfiles"
YARN, PNPM = "/app/yarn.lock", "/app/pnpm-lock.yaml"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def extract(files: dict[str, bytes], ctx: DetectContext | None = None) -> Extraction:
    return NodeDetector().extract(MemoryFileSet(files), ctx or DetectContext())


def locked(path: str, name: str) -> Extraction:
    return extract({path: fixture(name)})


def names(out: Extraction) -> list[tuple[str, str]]:
    return [(p.name, p.version) for p in out.packages]


def test_yarn_v1_many() -> None:
    out = locked(YARN, "yarn-v1-many.lock")
    assert len(out.packages) == 18
    # Two specifiers, one entry: reported once. Two versions of a name: both.
    assert ("@babel/helper-regex", "7.4.4") in names(out)
    assert ("ansi-regex", "2.1.1") in names(out) and ("ansi-regex", "3.0.0") in names(out)
    helper = out.packages[0]
    assert helper.purl == "pkg:npm/%40babel/helper-regex@7.4.4"
    assert (helper.ecosystem, helper.kind, helper.evidence) == ("npm", "npm", "lockfile")
    assert helper.locations == (YARN,)
    assert helper.metadata == ()  # yarn does not say where a package is installed
    assert not out.warnings and not out.incomplete


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("yarn-v1-one-package.lock", [("balanced-match", "1.0.2")]),
        ("yarn-berry-one-package.lock", [("balanced-match", "1.0.2")]),
        ("yarn-v1-scoped-packages.lock", [("@babel/code-frame", "7.12.11"), ("@babel/compat-data", "7.14.0")]),
        (
            "yarn-berry-scoped-packages.lock",
            [("@babel/cli", "7.16.8"), ("@babel/code-frame", "7.16.7"), ("@babel/compat-data", "7.16.8")],
        ),
        # Aliases (`ansi-regex-cjs@npm:ansi-regex@^5.0.0`) are reported under the real package's name.
        (
            "yarn-v1-with-aliases.lock",
            [("ansi-regex", "5.0.1"), ("ansi-regex", "6.0.1"), ("@babel/helper-validator-identifier", "7.22.20")],
        ),
        (
            "yarn-berry-with-aliases.lock",
            [("ansi-regex", "5.0.1"), ("ansi-regex", "6.0.1"), ("@babel/helper-validator-identifier", "7.22.20")],
        ),
        # Berry workspaces (`@ws/ansi-regex@workspace:…`, the root `ansi-regex@workspace:.`) are the app's own.
        ("yarn-berry-workspaces.lock", [("ansi-regex", "6.1.0")]),
        # file:, link: and git sources are not registry releases; `etag@link:` is not etag 1.8.0.
        ("yarn-v1-files.lock", [("etag", "1.8.1"), ("lodash", "1.3.1")]),
        ("yarn-berry-files.lock", []),
        ("yarn-v1-commits.lock", []),
        ("yarn-berry-commits.lock", []),
        ("yarn-berry-protocols.lock", [("debug", "4.3.4"), ("ms", "2.1.2")]),
        ("yarn-v1-empty.lock", []),
        ("yarn-berry-empty.lock", []),
    ],
)
def test_yarn_cases(name: str, expected: list[tuple[str, str]]) -> None:
    out = locked(YARN, name)
    assert sorted(names(out)) == sorted(expected)
    assert {p.evidence for p in out.packages} <= {"lockfile"}
    assert not out.warnings and not out.incomplete


def test_yarn_berry_many_and_patches() -> None:
    out = locked(YARN, "yarn-berry-many.lock")
    assert len(out.packages) == 17
    assert ("ansi-styles", "3.2.1") in names(out) and ("ansi-styles", "4.2.1") in names(out)
    # Yarn's built-in compatibility patch of an npm release is still that release.
    patched = (
        b'__metadata:\n  version: 6\n\n"resolve@patch:resolve@^1.20.0#~builtin<compat/resolve>":\n'
        b'  version: 1.22.1\n  resolution: "resolve@patch:resolve@npm%3A1.22.1#~builtin<compat/resolve>'
        b'::version=1.22.1&hash=07638b"\n  languageName: node\n  linkType: hard\n'
    )
    assert names(extract({YARN: patched})) == [("resolve", "1.22.1")]


def test_pnpm_v9_many() -> None:
    out = locked(PNPM, "pnpm-v9-many.yaml")
    # Tarball, git and file: packages (asynckit, debug 4.3.5, is-negative, lodash, package1) are not.
    assert sorted(names(out)) == [
        ("@babel/helper-string-parser", "7.24.1"),
        ("asap", "2.0.6"),
        ("await-sleep", "0.0.1"),
        ("debug", "4.3.4"),
        ("ee-first", "1.1.1"),
        ("encodeurl", "1.0.2"),
        ("escape-html", "1.0.3"),
        ("finalhandler", "1.1.1"),
        ("jquery", "3.6.0"),
        ("ms", "2.0.0"),
        ("ms", "2.1.2"),
        ("on-finished", "2.3.0"),
        ("parseurl", "1.3.3"),
        ("promise", "8.1.0"),
        ("sleep-utils", "1.0.3"),
        ("statuses", "1.4.0"),
        ("unpipe", "1.0.0"),
    ]
    assert {p.evidence for p in out.packages} == {"lockfile"}
    assert out.packages[0].purl == "pkg:npm/%40babel/helper-string-parser@7.24.1"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pnpm-v5-normal.yaml", [("asap", "2.0.6"), ("jquery", "3.6.0"), ("promise", "8.1.0")]),
        ("pnpm-v6-single.yaml", [("asap", "2.0.6"), ("jquery", "3.6.0"), ("promise", "8.1.0")]),
        ("pnpm-v6-scoped.yaml", [("@typescript-eslint/types", "5.57.1")]),
        ("pnpm-v9-scoped.yaml", [("@typescript-eslint/types", "5.62.0")]),
        # Peer suffixes `(react@…)` are stripped: a prerelease version is kept whole.
        (
            "pnpm-v6-peers.yaml",
            [
                ("js-tokens", "4.0.0"),
                ("loose-envify", "1.4.0"),
                ("react", "18.3.0-canary-ab31a9ed2-20230824"),
                ("react-dom", "18.3.0-canary-ab31a9ed2-20230824"),
                ("scheduler", "0.24.0-canary-ab31a9ed2-20230824"),
            ],
        ),
        # The same version with different peers in `snapshots`: once.
        (
            "pnpm-v9-peers.yaml",
            [
                ("jest-config", "30.0.3"),
                ("jest-pnp-resolver", "1.2.3"),
                ("jest-resolve", "27.5.1"),
                ("jest-resolve", "30.0.2"),
                ("jest-runner", "27.5.1"),
                ("jest-runner", "30.0.3"),
            ],
        ),
        ("pnpm-archives.yaml", [("asynckit", "0.4.0"), ("ms", "2.1.2")]),
        ("pnpm-files.yaml", []),
        ("pnpm-v9-commits.yaml", []),
        ("pnpm-empty.yaml", []),
    ],
)
def test_pnpm_cases(name: str, expected: list[tuple[str, str]]) -> None:
    out = locked(PNPM, name)
    assert sorted(names(out)) == sorted(expected)
    assert not out.warnings and not out.incomplete


def test_pnpm_dev_flag() -> None:
    out = locked(PNPM, "pnpm-v6-many.yaml")
    assert len(out.packages) == 85
    flags = {p.name: dict(p.metadata).get("dev") for p in out.packages}
    assert flags["@babel/runtime"] is None and flags["ansi-colors"] == "true"


def test_v5_peer_suffix() -> None:
    lock = b"lockfileVersion: 5.4\npackages:\n  /@scope/a/1.0.0_react@17.0.2+@types+x@1.0.0:\n    dev: false\n"
    assert names(extract({PNPM: lock})) == [("@scope/a", "1.0.0")]


@pytest.mark.parametrize(("path", "name"), [(PNPM, "pnpm-invalid.yaml"), (YARN, "yarn-berry-one-package.lock")])
def test_unparseable_lockfiles_are_incomplete(path: str, name: str) -> None:
    data = fixture(name)
    if path == YARN:  # Berry's YAML cut off inside a quoted key
        data = data[: data.index(b'"balanced') + 5]
    out = extract({path: data})
    assert out.packages == [] and len(out.incomplete) == 1
    assert out.incomplete[0].where == path


def test_yaml_is_bounded_and_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    data = fixture("pnpm-v9-many.yaml")
    monkeypatch.setattr(node, "MAX_YAML_BYTES", len(data) - 1)
    out = extract({PNPM: data})
    assert out.packages == [] and "over the limit" in out.incomplete[0].message
    monkeypatch.undo()
    out = extract({PNPM: data}, DetectContext(limits=Limits(max_package_db_bytes=100)))
    assert out.packages == [] and "max_package_db_bytes" in out.incomplete[0].message
    # Tags that build Python objects are refused by the safe loader.
    out = extract({PNPM: b"lockfileVersion: '9.0'\npackages: !!python/object/apply:os.system ['true']\n"})
    assert out.packages == [] and out.incomplete
    # Nesting past the parser's depth limit; aliases are shared, not expanded.
    assert extract({PNPM: b"packages: " + b"[" * 100_000}).incomplete
    bomb = b"lockfileVersion: '9.0'\na: &a ['x', 'x', 'x', 'x', 'x', 'x', 'x', 'x']\n" + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 8)}]\n".encode() for i in range(9)
    )
    assert extract({PNPM: bomb + b"packages:\n  ms@2.1.3: {}\n"}).packages[0].name == "ms"


def test_entry_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node, "MAX_LOCK_ENTRIES", 5)
    for path, name in ((PNPM, "pnpm-v9-many.yaml"), (YARN, "yarn-berry-many.lock"), (YARN, "yarn-v1-many.lock")):
        out = locked(path, name)
        assert "5" in out.incomplete[0].message, name
    monkeypatch.undo()
    out = extract({YARN: fixture("yarn-v1-many.lock")}, DetectContext(packages_left=3))
    assert len(out.packages) == 3 and "max_packages" in out.incomplete[0].message


def test_bad_entries_are_warnings() -> None:
    berry = (
        b'__metadata:\n  version: 8\n"a@npm:^1":\n  version: 1.0.0\n"b@npm:^1": 3\n'
        b'"c@npm:^1":\n  resolution: "c@npm:"\n'
    )
    out = extract({YARN: berry})
    assert out.packages == [] and len(out.warnings) == 3
    v1 = b'# yarn lockfile v1\n\na@^1:\n  resolved "x"\n"unterminated:\n  version "1.0.0"\n'
    out = extract({YARN: v1})
    assert out.packages == [] and len(out.warnings) == 2
    out = extract({PNPM: b"lockfileVersion: 'x'\npackages: []\n"})
    assert out.packages == [] and len(out.warnings) == 2
    for odd in (b".inf", b".nan", b"[1]"):
        out = extract({PNPM: b"lockfileVersion: " + odd + b"\npackages:\n  /ms@2.1.3: {}\n"})
        assert names(out) == [("ms", "2.1.3")] and len(out.warnings) == 1  # read as best we can


def test_installed_tree_wins_over_yarn_and_pnpm_lockfiles() -> None:
    manifest = json.dumps({"name": "ms", "version": "2.1.3"}).encode()
    out = extract(
        {
            YARN: fixture("yarn-v1-many.lock"),
            # pnpm's layout: the real directory under node_modules/.pnpm.
            "/app/node_modules/.pnpm/ms@2.1.3/node_modules/ms/package.json": manifest,
            "/srv/pnpm-lock.yaml": fixture("pnpm-v6-single.yaml"),
        }
    )
    assert {(p.name, p.version, p.evidence) for p in out.packages} == {
        ("ms", "2.1.3", "installed"),
        ("asap", "2.0.6", "lockfile"),
        ("jquery", "3.6.0", "lockfile"),
        ("promise", "8.1.0", "lockfile"),
    }


def test_a_package_lock_and_a_yarn_lock_in_one_directory_name_a_package_once() -> None:
    package_lock = json.dumps(
        {"lockfileVersion": 3, "packages": {"node_modules/balanced-match": {"version": "1.0.2"}}}
    ).encode()
    out = extract({YARN: fixture("yarn-v1-one-package.lock"), "/app/package-lock.json": package_lock})
    # Both put it at /app/node_modules/balanced-match: reported once, from the file read first.
    assert names(out) == [("balanced-match", "1.0.2")]
    assert out.packages[0].locations == ("/app/package-lock.json",)
