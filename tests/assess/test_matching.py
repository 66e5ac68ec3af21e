"""OSV range evaluation and release matching (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.assess.matching import evaluate_range, match_record
from scanner.ecosystems.catalog import release_matches


def events(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{kind: value} for kind, value in pairs]


@pytest.mark.parametrize(
    "version,expected",
    [
        ("1.0.0", None),
        ("1.1.0", "1.2.0"),
        ("1.2.0", None),  # the fixed version is not affected
        ("2.0.0", "2.0.5"),  # second interval
        ("2.0.5", None),
        ("3.0.0", ""),  # introduced again with no fix: affected, no fixed version
    ],
)
def test_intervals(version: str, expected: str | None) -> None:
    evts = events(
        ("introduced", "1.1.0"), ("fixed", "1.2.0"), ("introduced", "2.0.0"), ("fixed", "2.0.5"),
        ("introduced", "3.0.0"),
    )  # fmt: skip
    hit = evaluate_range("PyPI", version, list(reversed(evts)))  # order in the record must not matter
    assert (hit.fixed if hit else None) == expected


def test_introduced_zero_and_last_affected_and_limit() -> None:
    assert evaluate_range("npm", "0.0.1", events(("introduced", "0"), ("fixed", "1.0.0"))) is not None
    last = events(("introduced", "0"), ("last_affected", "2.3.4"))
    assert evaluate_range("npm", "2.3.4", last) is not None
    assert evaluate_range("npm", "2.3.5", last) is None
    limited = events(("introduced", "0"), ("limit", "5.0.0"))
    assert evaluate_range("npm", "4.9.9", limited) is not None
    assert evaluate_range("npm", "5.0.0", limited) is None


def test_debian_epoch_and_tilde_semantics() -> None:
    fixed = events(("introduced", "0"), ("fixed", "1:2.66-4+deb12u1"))
    assert evaluate_range("Debian:12", "1:2.66-4", fixed) is not None  # binNMU source version
    assert evaluate_range("Debian:12", "2.66-9", fixed) is not None  # no epoch sorts before epoch 1
    assert evaluate_range("Debian:12", "1:2.66-4+deb12u3", fixed) is None
    tilde = events(("introduced", "0"), ("fixed", "3.0.11-1~deb12u2"))
    assert evaluate_range("Debian:12", "3.0.11-1~deb12u1", tilde) is not None
    assert evaluate_range("Debian:12", "3.0.11-1", tilde) is None  # ~ sorts before the empty suffix


def record(eco: str, name: str, evts: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {"id": "X-1", "affected": [{"package": {"ecosystem": eco, "name": name},
                                      "ranges": [{"type": "ECOSYSTEM", "events": evts}]}], **extra}  # fmt: skip


def test_release_must_match() -> None:
    rec = record("Debian:11", "openssl", events(("introduced", "0"), ("fixed", "9")))
    assert match_record(rec, "Debian:12", "openssl", "1.0") is None
    assert match_record(rec, "Debian:11", "openssl", "1.0") is not None
    assert release_matches("Ubuntu:22.04:LTS", "Ubuntu:22.04")
    assert not release_matches("Ubuntu:Pro:22.04:LTS", "Ubuntu:22.04")
    assert not release_matches("Alpine:v3.18", "Alpine:v3.19")
    assert release_matches("PyPI", "PyPI")


def test_withdrawn_git_and_versions_lists() -> None:
    withdrawn = record("PyPI", "jinja2", events(("introduced", "0")), withdrawn="2024-01-01T00:00:00Z")
    assert match_record(withdrawn, "PyPI", "Jinja2", "2.0") is None
    git = {"id": "G", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
                                    "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}]}  # fmt: skip
    assert match_record(git, "PyPI", "x", "1.0") is None
    fixed_range = {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}
    entry = {"package": {"ecosystem": "PyPI", "name": "Foo_Bar"}, "versions": ["1.0", "1.1"], "ranges": [fixed_range]}
    listed = {"id": "L", "affected": [entry]}
    hit = match_record(listed, "PyPI", "foo-bar", "1.1")
    assert hit is not None and hit.fixed == "1.2"  # PEP 503 names; fix taken from the ranges


def test_unknown_ecosystem_is_never_guessed() -> None:
    # Without a version order for the ecosystem a bounded range cannot be decided: no finding.
    rec = record("Hackage2", "x", events(("introduced", "0"), ("fixed", "2.0")))
    assert match_record(rec, "Hackage2", "x", "1.0") is None
    # "introduced 0" alone affects every version, whatever the order: that needs no comparison.
    assert match_record(record("Hackage2", "x", events(("introduced", "0"))), "Hackage2", "x", "1.0") is not None
