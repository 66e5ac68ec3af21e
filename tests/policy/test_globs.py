"""The glob matching disable rules and gates share."""

from __future__ import annotations

from scanner.model.types import Package
from scanner.policy.globs import name_matches, package_matches

LIBSSL = Package(
    "libssl3", "3.0.11-1", "Debian:12", "pkg:deb/debian/libssl3@3.0.11-1", "openssl", "3.0.11", "amd64",
    ("/var/lib/dpkg/status",), "deb", "dpkg@1", None,
)  # fmt: skip


def test_a_package_matches_by_binary_or_source_name_or_by_purl() -> None:
    assert package_matches(LIBSSL, ("libssl*",)) and package_matches(LIBSSL, ("openssl",))
    assert package_matches(LIBSSL, ("pkg:deb/debian/libssl3@*",))
    assert not package_matches(LIBSSL, ("pkg:deb/debian/openssl@*",))  # a purl glob is matched to the purl only
    assert not package_matches(LIBSSL, ("curl", "pkg:apk/*"))
    assert package_matches(LIBSSL, ("LIBSSL3".casefold(),))


def test_a_name_matches_case_insensitively_and_an_empty_one_never() -> None:
    assert name_matches("Team/App", ("team/*",))
    assert not name_matches("other/app", ("team/*",))
    assert not name_matches("", ("*",))
