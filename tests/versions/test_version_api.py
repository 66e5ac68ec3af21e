"""The public API: ecosystem names, errors, sort keys, total-order properties, "0", and speed."""

from __future__ import annotations

import functools
import itertools
import random

import pytest
from version_fixtures import apk_data, claircore_cases, dpkg_data, scalibr

from scanner.ecosystems import SCHEMES, compare, is_valid, scheme_for, sort_key
from scanner.model.errors import AcrguardError
from scanner.versions import VersionError

# The ecosystem names the matcher will pass, as OSV writes them.
OSV_NAMES = [
    "Debian", "Debian:12", "Ubuntu:22.04:LTS", "Ubuntu:Pro:18.04:LTS", "Alpine:v3.19", "Wolfi", "Chainguard",
    "AlmaLinux:9", "Rocky Linux:9", "Red Hat", "Red Hat:enterprise_linux:9::appstream",
    "SUSE:Linux Enterprise Server 15 SP5", "openSUSE:Leap 15.5", "Azure Linux:3", "Azure Linux:2", "Fedora",
    "Oracle Linux", "Amazon Linux", "Photon OS:5.0", "PyPI", "npm", "crates.io", "Go", "Maven", "RubyGems", "NuGet",
    "Packagist", "Hex", "Pub",
]  # fmt: skip


POOL_CAP = 250  # the property test is quadratic; larger pools are sampled (seeded)


@functools.cache
def pools() -> dict[str, list[str]]:
    """The versions the data files mention, per scheme (one representative ecosystem each)."""

    def versions(cases: list) -> list[str]:  # type: ignore[type-arg]
        return sorted({v for c in cases for v in (c.a, c.b)})

    found = {
        "Debian": versions(dpkg_data() + scalibr("debian-versions.txt")),
        "Alpine": versions(scalibr("alpine-versions.txt")) + sorted({line.a for line in apk_data() if line.ops}),
        "Red Hat": versions(scalibr("redhat-versions.txt") + claircore_cases("rpmvercmp")),
        "PyPI": versions(scalibr("pypi-versions.txt")),
        "npm": versions(scalibr("semver-versions.txt")),
        "Pub": versions(scalibr("pub-versions.txt")),
        "Maven": versions(scalibr("maven-versions.txt")),
        "RubyGems": versions(scalibr("rubygems-versions.txt")),
        "NuGet": versions(scalibr("nuget-versions.txt")),
        "Packagist": versions(scalibr("packagist-versions.txt")),
        "CRAN": versions(scalibr("cran-versions.txt")),
        "Hackage": versions(scalibr("hackage-versions.txt")),
    }
    rng = random.Random(17)
    return {eco: sorted(rng.sample(pool, POOL_CAP)) if len(pool) > POOL_CAP else pool for eco, pool in found.items()}


@pytest.mark.parametrize("ecosystem", OSV_NAMES)
def test_every_osv_ecosystem_name_resolves_with_or_without_its_suffix(ecosystem: str) -> None:
    assert scheme_for(ecosystem) is scheme_for(ecosystem.split(":")[0])
    assert compare(ecosystem, "1.0", "2.0") == -1


def test_names_match_case_insensitively() -> None:
    assert scheme_for("debian:12") is scheme_for("Debian") and scheme_for("PYPI") is scheme_for("PyPI")


@pytest.mark.parametrize("ecosystem", ["", "GIT", "Debianish", "Go-lang", "Linux"])
def test_an_ecosystem_without_a_scheme_is_a_version_error_naming_it(ecosystem: str) -> None:
    with pytest.raises(VersionError) as raised:
        compare(ecosystem, "1", "2")
    assert isinstance(raised.value, AcrguardError)
    assert repr(ecosystem) in str(raised.value)
    with pytest.raises(VersionError):
        is_valid(ecosystem, "1")
    with pytest.raises(VersionError):
        sort_key(ecosystem)


def test_sort_key_sorts() -> None:
    assert sorted(["1.0", "1.0~rc1", "1:0.1", "1.0+b1"], key=sort_key("Debian:12")) == [
        "1.0~rc1",
        "1.0",
        "1.0+b1",
        "1:0.1",
    ]
    assert sorted(["1.0.0", "1.0.0-rc.1", "0.9.0"], key=sort_key("npm")) == ["0.9.0", "1.0.0-rc.1", "1.0.0"]


@pytest.mark.parametrize("ecosystem", sorted(pools()))
def test_compare_is_a_total_order_on_every_version_in_the_data(ecosystem: str) -> None:
    """Results are -1/0/1, antisymmetric and reflexive, and the sorted order is consistent (transitive)."""
    pool = pools()[ecosystem]
    cmp = functools.partial(compare, ecosystem)
    for a, b in itertools.product(pool, repeat=2):
        result = cmp(a, b)
        assert result in (-1, 0, 1) and result == -cmp(b, a), (a, b)
    assert all(cmp(a, a) == 0 for a in pool)
    ordered = sorted(pool, key=sort_key(ecosystem))
    broken = [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :] if cmp(a, b) > 0]
    assert not broken, f"{len(broken)} pairs out of order after sorting, e.g. {broken[:5]}"


@pytest.mark.parametrize("ecosystem", sorted(pools()))
def test_zero_is_not_above_any_release_in_the_data(ecosystem: str) -> None:
    """OSV's `introduced: "0"`: "0" is at or below every valid version without a pre-release marker.

    It is not below every version (see the counterexamples test), which is why the package notes tell
    callers to special-case the event value "0".
    """
    markers = ("~", "-", "_", "a", "b", "c", "d", "e", "p", "r", "s", "m", "x", "!", "+", ":", "^", "v", "V")
    releases = [
        v for v in pools()[ecosystem] if v[:1].isdigit() and not any(m in v for m in markers) and is_valid(ecosystem, v)
    ]
    assert releases
    assert [v for v in releases if compare(ecosystem, "0", v) > 0] == []


@pytest.mark.parametrize(
    ("ecosystem", "below_zero"),
    [("Debian", "0~1"), ("Red Hat", "0~1"), ("npm", "0.0.0-alpha"), ("Packagist", "0-dev"), ("PyPI", "0.dev0"),
     ("Maven", "0-alpha"), ("Alpine", "0_alpha"), ("RubyGems", "0.a"), ("PyPI", "legacy-version")],
)  # fmt: skip
def test_zero_is_not_the_lowest_version_so_callers_special_case_it(ecosystem: str, below_zero: str) -> None:
    assert compare(ecosystem, below_zero, "0") == -1


def test_every_scheme_has_a_grammar() -> None:
    for name, scheme in SCHEMES.items():
        assert scheme.is_valid("1.0.0" if name not in ("Go",) else "v1.0.0"), name


HOSTILE = [
    "1" * 5000,  # over CPython's 4300-digit int() limit
    "1." + "9" * 100_000,
    "1.0-" + "1" * 5000,
    "1.0_alpha" + "1" * 5000 + "-r" + "1" * 5000,
    "1!" + "1" * 5000,
    "v" + "1" * 5000 + ".0.0-" + "1" * 5000,
    "1:" + "1" * 5000 + "-1",
    "\x00\uffff\U0001f600-" + "~^" * 10_000,
    "",
]


@pytest.mark.parametrize("ecosystem", sorted(SCHEMES))
def test_hostile_versions_neither_raise_nor_stall(ecosystem: str) -> None:
    # Bounded input handling is the point; speed is measured in benchmarks/, never asserted in tests.
    for version in HOSTILE:
        assert compare(ecosystem, version, version) == 0
        assert compare(ecosystem, version, "1.0") == -compare(ecosystem, "1.0", version)
        assert compare(ecosystem, version, version + "1") in (-1, 0, 1)
        assert is_valid(ecosystem, version) in (True, False)
