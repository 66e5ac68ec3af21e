"""The ecosystem records and the lookups by OSV name, package kind and manager name."""

from __future__ import annotations

import pytest

from scanner.ecosystems.catalog import (
    ECOSYSTEMS,
    advisory_names,
    advisory_prefixes,
    category_of_kind,
    default_archives,
    find,
    manager_for,
    manager_named,
    normalise_name,
)
from scanner.ecosystems.languages import PYPI
from scanner.model.types import OSInfo


def test_names_are_unique_whatever_their_case() -> None:
    names = [record.name.casefold() for record in ECOSYSTEMS]
    assert len(names) == len(set(names))


def test_records_of_one_package_kind_agree_on_what_lookups_by_kind_use() -> None:
    by_kind: dict[str, set[tuple[str, str, str]]] = {}
    for record in ECOSYSTEMS:
        by_kind.setdefault(record.purl_type, set()).add((record.kind, record.scheme.name, record.advisory_names))
    assert {kind: len(seen) for kind, seen in by_kind.items() if len(seen) > 1} == {}


@pytest.mark.parametrize(
    ("name", "found"),
    [("Debian", "Debian"), ("Debian:12", "Debian"), ("debian:12", "Debian"), ("Ubuntu:Pro:18.04:LTS", "Ubuntu"),
     ("PYPI", "PyPI"), ("Red Hat:enterprise_linux:9::appstream", "Red Hat"), ("crates.io", "crates.io")],
)  # fmt: skip
def test_find_by_osv_name_with_or_without_release(name: str, found: str) -> None:
    record = find(name)
    assert record is not None and record.name == found


@pytest.mark.parametrize("name", ["", "GIT", "Debianish", "gentoo", "Linux"])
def test_unknown_names_find_nothing(name: str) -> None:
    assert find(name) is None


@pytest.mark.parametrize(
    ("ecosystem", "name", "key"),
    [("PyPI", "Foo.Bar_baz", "foo-bar-baz"), ("NuGet", "Newtonsoft.Json", "newtonsoft.json"),
     ("Packagist", "Symfony/Console", "symfony/console"), ("Hackage", "QuickCheck", "quickcheck"),
     ("npm", "JSONStream", "JSONStream"), ("Debian:12", "libssl3", "libssl3"), ("Maven", "G:A", "G:A"),
     ("gentoo", "Foo_Bar", "Foo_Bar")],
)  # fmt: skip
def test_normalise_name(ecosystem: str, name: str, key: str) -> None:
    assert normalise_name(ecosystem, name) == key


def test_pypi_names_normalise_as_pep_503() -> None:
    assert PYPI.normalise("Zope.Interface") == "zope-interface"


def test_os_and_language_kinds() -> None:
    assert [category_of_kind(k) for k in ("deb", "apk", "rpm")] == ["os"] * 3
    assert [category_of_kind(k) for k in ("pypi", "npm", "golang", "maven", "gem", "")] == ["language"] * 6
    assert [advisory_names(k) for k in ("deb", "apk", "rpm", "pypi", "x")] == [
        "source",
        "source",
        "name+source",
        "name",
        "name",
    ]


@pytest.mark.parametrize(
    ("kind", "manager"),
    [("pypi", "pip"), ("npm", "npm"), ("maven", "maven"), ("golang", "go"), ("gem", "gem"), ("cargo", "cargo"),
     ("nuget", "dotnet"), ("composer", "composer"), ("hex", ""), ("no-such-kind", ""), ("deb", "apt")],
)  # fmt: skip
def test_manager_of_a_package_kind(kind: str, manager: str) -> None:
    found = manager_for(kind, OSInfo("debian", "12"))
    assert (found.name if found is not None else "") == manager


def test_managers_by_name() -> None:
    for name in ("apt", "apk", "dnf", "yum", "zypper", "tdnf", "pip", "npm", "maven", "go"):
        found = manager_named(name)
        assert found is not None and found.upgrade, name
    assert manager_named("rpm") is None  # the bare tool: no command


def test_advisory_prefixes() -> None:
    distributions, languages = advisory_prefixes("os"), advisory_prefixes("language")
    assert {"DSA-", "USN-", "ALSA-", "RHSA-", "ALPINE-", "CGA-", "ELSA-"} <= set(distributions)
    assert set(languages) == {"PYSEC-", "GO-", "RUSTSEC-"}
    assert not set(distributions) & set(languages)


def test_default_archives_in_their_order() -> None:
    # `acrguard db update --help` lists them, and updates fetch them, in this order.
    assert default_archives() == (
        "Debian", "Ubuntu", "Alpine", "AlmaLinux", "Rocky Linux", "Red Hat", "SUSE", "openSUSE", "Azure Linux",
        "Wolfi", "Chainguard", "PyPI", "npm", "Go", "Maven", "RubyGems", "NuGet", "crates.io", "Packagist",
    )  # fmt: skip
