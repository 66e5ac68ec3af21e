"""Every case of every file in tests/fixtures/versions must hold, through the public API.

Each `a op b` case is checked both ways (compare(a, b) == op and compare(b, a) == -op), as
osv-scalibr's harness does. The number of cases read from each file is pinned (see SOURCES.md there),
so a reader slip cannot silently drop lines. No line is skipped.
"""

from __future__ import annotations

import pytest
from version_fixtures import Case, apk_data, claircore, claircore_cases, dpkg_data, scalibr

from scanner.ecosystems import compare, is_valid
from scanner.versions import rpm as rpm_scheme
from scanner.versions.apk import compare_fuzzy

RPM_ECOSYSTEMS = [
    "Red Hat",
    "Red Hat:enterprise_linux:9::appstream",
    "AlmaLinux:9",
    "Rocky Linux:9",
    "SUSE",
    "openSUSE",
    "Azure Linux:3",
    "Azure Linux:2",
    "Fedora",
    "Oracle Linux",
    "Amazon Linux",
    "Photon OS",
]
# file -> (cases it holds, OSV ecosystems that must satisfy every case)
SCALIBR = {
    "alpine-versions.txt": (778, ["Alpine", "Alpine:v3.19", "Wolfi", "Chainguard", "MinimOS"]),
    "cran-versions.txt": (21, ["CRAN"]),
    "debian-versions.txt": (30, ["Debian", "Debian:12", "Ubuntu:22.04:LTS"]),
    "hackage-versions.txt": (11, ["Hackage"]),
    "maven-versions.txt": (102, ["Maven"]),
    "nuget-versions.txt": (35, ["NuGet"]),
    "packagist-versions.txt": (95, ["Packagist"]),
    "pub-versions.txt": (100, ["Pub"]),
    "pypi-versions.txt": (37, ["PyPI"]),
    "redhat-versions.txt": (165, RPM_ECOSYSTEMS),
    "rubygems-versions.txt": (25, ["RubyGems"]),
    "semver-versions.txt": (86, ["npm", "crates.io", "Go", "Hex"]),
}


def failures(ecosystem: str, cases: list[Case]) -> list[str]:
    bad = []
    for case in cases:
        forward, backward = compare(ecosystem, case.a, case.b), compare(ecosystem, case.b, case.a)
        if (forward, backward) != (case.want, -case.want):
            bad.append(f"{ecosystem}: {case}: got compare(a, b)={forward}, compare(b, a)={backward}")
    return bad


@pytest.mark.parametrize("name", sorted(SCALIBR))
def test_scalibr_file_holds_for_every_ecosystem_that_uses_it(name: str) -> None:
    count, ecosystems = SCALIBR[name]
    cases = scalibr(name)
    assert len(cases) == count
    bad = [line for ecosystem in ecosystems for line in failures(ecosystem, cases)]
    assert not bad, "\n".join(bad)


def test_dpkg_version_data_holds_for_debian_and_ubuntu() -> None:
    cases = dpkg_data()
    assert len(cases) == 43
    bad = failures("Debian", cases) + failures("Ubuntu", cases)
    assert not bad, "\n".join(bad)


def test_claircore_rpmvercmp_cases_hold_for_rpmvercmp() -> None:
    cases = claircore_cases("rpmvercmp")
    assert len(cases) == 113
    bad = []
    for case in cases:
        got = (rpm_scheme.rpmvercmp(case.a, case.b), rpm_scheme.rpmvercmp(case.b, case.a))
        if got != (case.want, -case.want):
            bad.append(f"{case}: got {got}")
    assert not bad, "\n".join(bad)


def test_claircore_rpmvercmp_cases_without_separators_hold_for_red_hat_too() -> None:
    # A version without '-' or ':' is a bare version, so the EVR comparison is rpmvercmp itself.
    cases = [c for c in claircore_cases("rpmvercmp") if not any(ch in c.a + c.b for ch in "-:")]
    assert len(cases) == 113
    bad = failures("Red Hat", cases)
    assert not bad, "\n".join(bad)


def test_claircore_nevra_comparisons_hold() -> None:
    cases = claircore_cases("compare")
    assert len(cases) == 12
    bad = []
    for case in cases:
        got = (rpm_scheme.compare_nevra(case.a, case.b), rpm_scheme.compare_nevra(case.b, case.a))
        if got != (case.want, -case.want):
            bad.append(f"{case}: got {got}")
    assert not bad, "\n".join(bad)


def test_claircore_nevra_parses_hold() -> None:
    rows = claircore("parse")
    assert len(rows) == 4
    for fields in rows:
        text, name, epoch, version, release, arch = (field.strip("'\"") for field in fields)
        # claircore reports an absent epoch as "0".
        want = rpm_scheme.NEVRA(name or None, epoch or "0", version, release, arch or None)
        assert rpm_scheme.parse_nevra(text) == want, text


def test_apk_tools_version_data_holds_line_by_line() -> None:
    lines = apk_data()
    assert len(lines) == 785
    orderings = [line for line in lines if line.ops]
    validity = [line for line in lines if not line.ops]
    assert (len(orderings), len(validity)) == (754, 31)
    bad = []
    for line in orderings:
        # apk_version_match(): an operator with '~' compares fuzzily; the result must fall in the operator's
        # mask ('<' LESS, '>' GREATER, '=' EQUAL, '~' FUZZY|EQUAL: apk_version_result_mask_blob).
        fuzzy = "~" in line.ops
        result = compare_fuzzy(line.a, line.b) if fuzzy else compare("Alpine", line.a, line.b)
        holds = (
            ("<" in line.ops and result < 0)
            or (">" in line.ops and result > 0)
            or (("=" in line.ops or fuzzy) and result == 0)
        )
        if holds == line.negated:
            bad.append(f"{line.where}: {line.a} {'!' * line.negated}{line.ops} {line.b}: compare gave {result}")
    for line in validity:
        if is_valid("Alpine", line.a) != line.valid:
            bad.append(f"{line.where}: {line.a!r} should be {'valid' if line.valid else 'invalid'}")
    assert not bad, "\n".join(bad)
