"""merge_lockfile_entries: a lockfile entry that an installed package matches is that package (pure logic,
on hand-made Package records)."""

from __future__ import annotations

from scanner.inventory.evidence import identity, merge_lockfile_entries
from scanner.model.types import Evidence, Package


def pkg(name: str, version: str, location: str, evidence: Evidence, kind: str = "pypi") -> Package:
    ecosystem = {"pypi": "PyPI", "npm": "npm", "maven": "Maven"}[kind]
    purl = f"pkg:{kind}/{name.lower()}@{version}"
    return Package(name, version, ecosystem, purl, name, version, "", (location,), kind, "python@2", None,
                   evidence=evidence)  # fmt: skip


SITE = "/app/.venv/lib/python3.12/site-packages"


def test_installed_package_gains_the_lockfile_location_and_the_entry_goes() -> None:
    installed = pkg("Flask", "1.0.3", f"{SITE}/Flask-1.0.3.dist-info/METADATA", "installed")
    locked = pkg("flask", "1.0.3", "/app/poetry.lock", "lockfile")
    merged = merge_lockfile_entries([locked, installed])
    assert len(merged) == 1
    assert merged[0].evidence == "installed"
    assert merged[0].locations == (f"{SITE}/Flask-1.0.3.dist-info/METADATA", "/app/poetry.lock")


def test_pep503_names_are_the_same_package() -> None:
    installed = pkg("typing_extensions", "4.12.2", f"{SITE}/typing_extensions-4.12.2.dist-info/METADATA", "installed")
    locked = pkg("typing-extensions", "4.12.2", "/app/uv.lock", "lockfile")
    assert identity(installed) == identity(locked)
    assert len(merge_lockfile_entries([installed, locked])) == 1


def test_another_version_is_another_package() -> None:
    installed = pkg("requests", "2.32.3", f"{SITE}/requests-2.32.3.dist-info/METADATA", "installed")
    locked = pkg("requests", "2.32.0", "/app/uv.lock", "lockfile")
    assert merge_lockfile_entries([installed, locked]) == [installed, locked]


def test_npm_names_are_not_pep503_normalised() -> None:
    installed = pkg("left_pad", "1.3.0", "/app/node_modules/left_pad/package.json", "installed", kind="npm")
    locked = pkg("left-pad", "1.3.0", "/app/package-lock.json", "lockfile", kind="npm")
    assert len(merge_lockfile_entries([installed, locked])) == 2


def test_lockfile_entries_alone_stay_and_order_is_kept() -> None:
    a = pkg("a", "1", "/app/uv.lock", "lockfile")
    b = pkg("b", "1", f"{SITE}/b-1.dist-info/METADATA", "installed")
    c = pkg("c", "1", "/app/uv.lock", "lockfile")
    assert merge_lockfile_entries([a, b, c]) == [a, b, c]
    assert merge_lockfile_entries([]) == []


def test_two_lockfiles_and_two_installs_of_the_same_package() -> None:
    first = pkg("idna", "3.10", "/a/site-packages/idna-3.10.dist-info/METADATA", "installed")
    second = pkg("idna", "3.10", "/b/site-packages/idna-3.10.dist-info/METADATA", "installed")
    merged = merge_lockfile_entries(
        [first, second, pkg("idna", "3.10", "/a/uv.lock", "lockfile"), pkg("idna", "3.10", "/b/uv.lock", "lockfile")]
    )
    assert [p.locations[1:] for p in merged] == [("/a/uv.lock", "/b/uv.lock"), ("/a/uv.lock", "/b/uv.lock")]


def test_binary_and_runtime_evidence_are_left_alone() -> None:
    binary = pkg("x", "1", "/usr/bin/x", "binary")
    locked = pkg("x", "1", "/app/uv.lock", "lockfile")
    assert merge_lockfile_entries([binary, locked]) == [binary, locked]
