"""Where a library gets a case wrong, we do it ourselves; each test names the library's defect and our answer.

Each test first pins the library's behaviour (if it starts failing, the library was fixed and the
note in the named module can be revisited), then checks our answer, which the reference data or a
reference tool confirms. univers' DebianVersion, NugetVersion and RubyGems port agree with dpkg and
our implementations in the differential tests, so they have no entry here.
"""

from __future__ import annotations

import pytest
from packaging.version import InvalidVersion, Version
from univers.versions import (
    AlpineLinuxVersion,
    ComposerVersion,
    MavenVersion,
    RpmVersion,
    RubygemsVersion,
    SemverVersion,
)
from univers.versions import InvalidVersion as UniversInvalidVersion

from scanner.ecosystems import compare


def _order(cls: type, a: str, b: str) -> int:
    va, vb = cls(a), cls(b)
    return -1 if va < vb else (1 if va > vb else 0)


def test_univers_maven_lacks_the_release_alias_so_we_follow_the_specification() -> None:
    assert _order(MavenVersion, "1release", "1") == 1
    assert compare("Maven", "1release", "1") == 0  # maven-versions.txt: 1release = 1 (scanner/versions/maven.py)


def test_univers_maven_keeps_a_ga_between_hyphens_so_we_trim_it() -> None:
    assert _order(MavenVersion, "1-ga-1", "1-1") == -1
    assert compare("Maven", "1-ga-1", "1-1") == 0  # maven-versions.txt: 1-1 = 1-ga-1


def test_univers_gem_refuses_1beta_so_we_compare_the_segments_of_any_string() -> None:
    with pytest.raises(UniversInvalidVersion):
        RubygemsVersion("1beta")
    assert compare("RubyGems", "1beta", "1") == -1  # rubygems-versions.txt: 1 > 1beta (scanner/versions/rubygems.py)


def test_univers_composer_treats_dev_as_a_semver_prerelease_so_we_implement_version_compare() -> None:
    assert _order(ComposerVersion, "1.0-dev", "1.0a1") == 1
    assert compare("Packagist", "1.0-dev", "1.0a1") == -1  # packagist-versions.txt, from php-src's own tests


def test_univers_rpm_needs_a_numeric_epoch_so_we_split_like_parse_evr() -> None:
    for evr in (":1.1-8", "a:1"):
        with pytest.raises(ValueError):
            RpmVersion(evr)
    # rpm (checked against python3-rpm in the differential test): an empty epoch is 0, `a:` is no epoch.
    assert compare("Red Hat", ":1.1-8", "0:1.1-8") == 0
    assert compare("Red Hat", "a:1", "b:1") == -1  # redhat-versions.txt


def test_univers_alpine_refuses_versions_apk_tools_orders_so_we_implement_version_c() -> None:
    for version in ("006", "1.0~1234"):
        with pytest.raises(UniversInvalidVersion):
            AlpineLinuxVersion(version)
    assert compare("Alpine", "006", "1.0.0") == 1  # apk-version.data: 006 > 1.0.0
    assert compare("Alpine", "1.0~1234", "1.0~2345") == -1  # apk-version.data


def test_univers_semver_refuses_the_npm_equals_prefix_so_we_strip_it() -> None:
    with pytest.raises(UniversInvalidVersion):
        SemverVersion("=1.2.3")
    assert compare("npm", "=1.2.3", "1.2.3") == 0  # node-semver's clean accepts it (checked in the oracle test)


def test_packaging_refuses_legacy_versions_so_we_order_them_like_legacy_version() -> None:
    with pytest.raises(InvalidVersion):
        Version("0.1-bulbasaur")
    assert compare("PyPI", "0.1-bulbasaur", "0.1-charmander") == -1  # pypi-versions.txt (scanner/versions/pep440.py)
    assert compare("PyPI", "0.9-ivysaur", "1.0") == -1
