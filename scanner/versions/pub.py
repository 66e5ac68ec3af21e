"""Dart Pub versions, ordered as the pub_semver package's `Version.compareTo`.

Pub is SemVer with one difference that matters: build metadata counts. After major, minor, patch and
the pre-release (a pre-release sorts before the release), a version without build metadata sorts
before one with it (`1.0.0 < 1.0.0+1`), and build identifiers compare like pre-release ones: numbers
numerically and below words, words as strings, the shorter list first. The reading of the string is
`scanner.versions.semver.parse` (lenient: a leading `v`, missing components, big numbers).
"""

from __future__ import annotations

import re

from scanner.versions import semver
from scanner.versions.base import cmp

# pub_semver's grammar: MAJOR.MINOR.PATCH, then -PRE and +BUILD made of dot-separated [0-9A-Za-z-] runs.
_IDENTIFIERS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VALID = re.compile(rf"[0-9]+\.[0-9]+\.[0-9]+(?:-{_IDENTIFIERS})?(?:\+{_IDENTIFIERS})?")


def _build_key(build: tuple[str, ...]) -> tuple[semver.Identifier, ...]:
    return tuple(semver.identifier(part) for part in build)


def compare(a: str, b: str) -> int:
    if a == b:
        return 0
    va, vb = semver.parse(a), semver.parse(b)
    result = semver.compare_parsed(va, vb)
    if result:
        return result
    if not va.build or not vb.build:
        return cmp(bool(va.build), bool(vb.build))
    return cmp(_build_key(va.build), _build_key(vb.build))


def is_valid(version: str) -> bool:
    return _VALID.fullmatch(version) is not None
