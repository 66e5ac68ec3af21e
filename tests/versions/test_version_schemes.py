"""Named cases for each scheme: the rules each module's notes promise, one test per rule or policy."""

from __future__ import annotations

import itertools

import pytest

from scanner.ecosystems import compare, is_valid
from scanner.versions import apk, apk_legacy, dpkg, pep440, rpm


def ordered(ecosystem: str, *versions: str) -> bool:
    """Each version is strictly below the next, both ways round."""
    return all(
        compare(ecosystem, a, b) == -1 and compare(ecosystem, b, a) == 1 for a, b in itertools.pairwise(versions)
    )


def same(ecosystem: str, a: str, b: str) -> bool:
    return compare(ecosystem, a, b) == 0 == compare(ecosystem, b, a)


# ---------------------------------------------------------------- dpkg


def test_dpkg_tilde_sorts_before_everything_even_the_end() -> None:
    assert ordered("Debian", "1.0~~", "1.0~", "1.0~rc1", "1.0", "1.0+b1", "1.0.1")


def test_dpkg_letters_sort_before_other_characters() -> None:
    assert ordered("Debian", "1.0a", "1.0z", "1.0+", "1.0.")
    assert ordered("Debian", "1.0A", "1.0a")  # letters by ASCII code


def test_dpkg_missing_revision_equals_revision_zero() -> None:
    assert same("Debian", "1.0", "1.0-0")
    assert same("Debian", "1.0", "0:1.0-0")
    assert ordered("Debian", "1.0", "1.0-0.1", "1.0-1")


def test_dpkg_epoch_outranks_everything_and_compares_numerically() -> None:
    assert ordered("Debian", "9.9-9", "1:0.1-1", "2:0", "10:0")


def test_dpkg_revision_is_after_the_last_hyphen() -> None:
    assert dpkg.parse("1:2.0-rc1-3") == dpkg.DebVersion("1", "2.0-rc1", "3")
    assert ordered("Debian", "2.0-rc1-3", "2.0-rc2-1")


def test_dpkg_digit_runs_compare_as_numbers_whatever_their_length() -> None:
    assert same("Debian", "1.09", "1.9")
    assert ordered("Debian", "1.99999999999999999999", "1.100000000000000000000")


def test_dpkg_validity_follows_parseversion() -> None:
    good = ["0", "1.0", "1:1.0-1", "1.0-1-2", "2:1.0+dfsg~rc1-1ubuntu0.1", "1:2:3-4", " 1.0 "]
    bad = ["", "a1.0", "1.0-", ":1.0", "1:", "a:1.0", "1.0_1", "1.0-a_b", "1 0", "-1", "2147483648:1.0", "1.0-é"]
    assert all(is_valid("Debian", v) for v in good)
    assert not any(is_valid("Debian", v) for v in bad)


# ---------------------------------------------------------------- apk


def test_apk_suffix_order() -> None:
    suffixes = ["_alpha", "_beta", "_pre", "_rc", "", "_cvs", "_svn", "_git", "_hg", "_p"]
    assert ordered("Alpine", *(f"1.2{suffix}" for suffix in suffixes))


def test_apk_letter_revision_and_commit_hash() -> None:
    assert ordered("Alpine", "1.2", "1.2a", "1.2b", "1.2.1")
    assert ordered("Alpine", "1.2-r0", "1.2-r1", "1.2-r10")
    assert ordered("Alpine", "1.2", "1.2-r0")  # a version that goes on is greater, even by -r0
    assert ordered("Alpine", "1.0~1234-r0", "1.0~1234-r1", "1.0~2345-r0")


def test_apk_digit_groups_with_a_leading_zero_compare_as_strings() -> None:
    # apk-tools 3 token_cmp(); apk-tools 2 answered both the other way, so these pin the version.
    assert ordered("Alpine", "8.2.0", "8.2.001")
    assert ordered("Alpine", "8.2.0015", "8.2.002")
    assert apk_legacy.compare("8.2.0", "8.2.001") == 1


def test_apk_bare_r_reads_as_r0_for_malformed_versions_only() -> None:
    assert not is_valid("Alpine", "1-r")
    assert same("Alpine", "1-r", "1-r0")
    assert ordered("Alpine", "1-r-1", "1-r0")  # `-r` followed by '-' is still malformed after it
    assert ordered("Alpine", "1-ruff", "1")  # `-r` followed by a letter stays malformed: apk-tools 3's answer


def test_apk_equal_malformed_versions_fall_back_to_apk_tools_2_when_it_reads_them() -> None:
    assert ordered("Alpine", "0..1..0", "0..1..1")
    assert ordered("Alpine", "6.6.2p1", "6.6.2p2")
    assert ordered("Alpine", "a", "b")
    # apk-tools 2 cannot read either, so apk-tools 3's "equal" stands.
    assert same("Alpine", "1-ruff2", "1-ruff1")


def test_apk_well_formed_versions_never_use_the_apk_tools_2_reading() -> None:
    for a, b in [("8.2.0", "8.2.001"), ("8.2.0015", "8.2.002"), ("1.0~1234", "1.0~2345")]:
        assert apk.is_valid(a) and apk.is_valid(b)
        assert compare("Alpine", a, b) == apk._compare(a, b, fuzzy=False)


def test_apk_fuzzy_match_is_a_component_prefix() -> None:
    assert apk.fuzzy_match("3.6.9", "3.6") and apk.fuzzy_match("3.6_pre1", "3.6")
    assert not apk.fuzzy_match("3.8", "3.8.1") and not apk.fuzzy_match("3.6.0", "3.8")


def test_apk_numbers_wrap_like_apk_tools_uint64() -> None:
    # apk_blob_pull_uint reads into a uint64_t, so a 2**64 revision equals -r0.
    assert same("Alpine", f"1.0-r{2**64}", "1.0-r0")


# ---------------------------------------------------------------- rpm


def test_rpm_tilde_and_caret() -> None:
    assert ordered("Red Hat", "1.0~rc1", "1.0", "1.0^git1", "1.0.1")
    assert ordered("Red Hat", "1.0~rc1", "1.0~rc1^git1", "1.0")


def test_rpm_missing_release_sorts_before_any_release_like_label_compare() -> None:
    assert ordered("Red Hat", "1.0", "1.0-", "1.0-0")
    assert rpm.rpmvercmp("1.0", "1.0.") == 0  # trailing separators do not count
    assert rpm.rpmvercmp("1.0", "1.0.a") == -1  # but anything after them does


def test_rpm_epoch_is_only_digits_before_a_colon() -> None:
    assert rpm.parse_evr("a:1") == rpm.EVR(None, "a:1", None)
    assert rpm.parse_evr(":1-2") == rpm.EVR("0", "1", "2")
    assert same("Red Hat", "0:1.0-1", "1.0-1")
    assert ordered("Red Hat", "9.9-9", "1:0.1-1")


def test_rpm_validity() -> None:
    assert all(is_valid("Red Hat", v) for v in ["1.0-1.el9", "2:1.0~rc1^git1-0.1.fc39", "1.0", "0:1_2+3-4"])
    assert not any(is_valid("Red Hat", v) for v in ["", "1.0-", "a:1.0", "1.0-1 ", "1.0/1-1", "-1"])


# ---------------------------------------------------------------- PyPI


def test_pep440_order_is_packaging_order() -> None:
    assert ordered("PyPI", "1.0.dev0", "1.0a1", "1.0b1", "1.0rc1", "1.0", "1.0+local", "1.0.post1", "1!0.1")
    assert same("PyPI", "1.0", "1.0.0") and same("PyPI", "v1.0", "1.0")


def test_pep440_legacy_versions_sort_below_every_pep440_version() -> None:
    assert not is_valid("PyPI", "2004d") and is_valid("PyPI", "0.0.0.dev0")
    assert ordered("PyPI", "2004d", "0.0.0.dev0")
    assert ordered("PyPI", "99999-final-foo", "0")


def test_pep440_legacy_versions_order_by_setuptools_legacy_key() -> None:
    # LegacyVersion: pre/preview/rc read as c, dev as @, so dev < pre-releases < the final marker.
    assert ordered("PyPI", "1.0-dev-x", "1.0-pre-x", "1.0-x", "1.0-y")
    assert same("PyPI", "1.0-rc-x", "1.0-preview-x")
    assert pep440.legacy_key("1.0.0-foo") == pep440.legacy_key("1.0-foo")  # trailing zeros dropped
    assert ordered("PyPI", "0.1-bulbasaur", "0.1-charmander", "0.9-doduo")


def test_pep440_legacy_numbers_compare_as_integers_beyond_eight_digits() -> None:
    # The one deliberate difference from LegacyVersion, which zero-padded to 8 digits and compared text.
    assert ordered("PyPI", "99999999-x", "100000000-x")


# ---------------------------------------------------------------- SemVer family


def test_semver_prerelease_precedence_from_the_spec() -> None:
    versions = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11"]
    assert ordered("npm", *versions, "1.0.0-rc.1", "1.0.0")


def test_semver_build_metadata_is_ignored() -> None:
    for ecosystem in ["npm", "crates.io", "Hex", "Go"]:
        assert same(ecosystem, "1.0.0+a", "1.0.0+b") and same(ecosystem, "1.0.0", "1.0.0+build")


def test_npm_accepts_v_and_equals_prefixes_as_node_semver_clean_does() -> None:
    assert same("npm", "=v1.2.3", "1.2.3") and is_valid("npm", "=v1.2.3") and is_valid("npm", " v1.2.3 ")
    assert not is_valid("crates.io", "v1.2.3") and not is_valid("npm", "1.2") and not is_valid("npm", "1.2.3-01")


def test_go_versions_with_and_without_v_are_equal() -> None:
    assert same("Go", "v1.2.3", "1.2.3") and is_valid("Go", "1.2.3") and is_valid("Go", "v1.2")
    assert same("Go", "v2.0.0+incompatible", "2.0.0")


def test_go_pseudo_versions_are_prereleases_ordered_by_time() -> None:
    assert ordered(
        "Go",
        "v0.0.0-20190101000000-aaaaaaaaaaaa",
        "v0.0.0-20210101000000-abcdef123456",
        "v0.0.0",
        "v1.2.3",
        "v1.2.4-0.20210101000000-abcdef123456",
        "v1.2.4",
    )


def test_pub_build_metadata_counts() -> None:
    assert ordered("Pub", "1.0.0-pre", "1.0.0-pre+build", "1.0.0", "1.0.0+1", "1.0.0+2", "1.0.0+a")


# ---------------------------------------------------------------- Maven, RubyGems, NuGet, Packagist


def test_maven_qualifier_order() -> None:
    assert ordered(
        "Maven", "1-alpha", "1-beta", "1-milestone", "1-rc", "1-snapshot", "1", "1-sp", "1-abc", "1-xyz", "1-1", "1.1"
    )
    assert same("Maven", "1-cr", "1-rc") and same("Maven", "1.0.RELEASE", "1") and same("Maven", "1.Final", "1-ga")


def test_rubygems_prerelease_letters_and_trailing_zeros() -> None:
    assert ordered("RubyGems", "0.9", "1.0.a.2", "1.0.b1", "1.0")
    assert same("RubyGems", "1.0.0", "1") and same("RubyGems", "1.0-1", "1.0.pre.1")


def test_nuget_four_parts_and_case_insensitive_labels() -> None:
    assert same("NuGet", "1.0", "1.0.0.0") and ordered("NuGet", "1.0.0", "1.0.0.1-alpha", "1.0.0.1")
    assert same("NuGet", "1.0.0-BETA", "1.0.0-beta")
    assert ordered("NuGet", "1.0.0-beta.2", "1.0.0-beta.10", "1.0.0-beta.a")


def test_packagist_special_forms() -> None:
    assert ordered("Packagist", "1.0-dev", "1.0alpha1", "1.0-beta2", "1.0RC1", "1.0", "1.0-p1")
    assert same("Packagist", "v1.0.0", "1.0.0") and same("Packagist", "1.0.0-RC1", "1.0.0.rc1")
    assert ordered("Packagist", "1.0-foo", "1.0-dev")  # unknown words rank below dev, as in PHP


@pytest.mark.parametrize(
    ("ecosystem", "low", "high"),
    [
        ("CRAN", "0.1.0", "0.1.0.0"),
        ("CRAN", "1.9-1", "1.10-0"),
        ("Hackage", "1.0", "1.0.0"),
        ("Hackage", "0.9", "0.10"),
    ],
)
def test_numeric_schemes_compare_integer_lists(ecosystem: str, low: str, high: str) -> None:
    assert ordered(ecosystem, low, high)
