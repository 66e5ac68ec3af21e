"""Exact version ordering for every ecosystem acrguard matches vulnerabilities in.

    compare(ecosystem, a, b)  -> negative, zero or positive (always -1, 0 or 1)
    is_valid(ecosystem, v)    -> whether `v` follows the ecosystem's own grammar
    sort_key(ecosystem)       -> a key function for `sorted`

`ecosystem` is an OSV ecosystem name, with or without a release suffix (`Debian:12`,
`Ubuntu:22.04:LTS`, `Alpine:v3.19`, `Red Hat:enterprise_linux:9::appstream`); an ecosystem without a
scheme raises `VersionError`. Each scheme is in its own module, which cites the algorithm it follows.

`compare` never raises for a version string: it applies the ecosystem's algorithm to malformed
versions too (as dpkg and apk do, with a warning) and each module documents what it does with them.
Callers that must refuse malformed versions check `is_valid` first.

OSV's `introduced: "0"` means "from the first version", but "0" is not the lowest version in every
scheme (`0~1 < 0` in dpkg and rpm, `0.0.0-alpha < 0` in SemVer, `0-dev < 0` in Packagist), so callers
must special-case the event value "0" rather than compare with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from scanner.versions.base import Scheme, VersionError
from scanner.versions.ecosystems import SCHEMES, scheme_for

__all__ = ["SCHEMES", "Scheme", "VersionError", "compare", "is_valid", "scheme_for", "sort_key"]


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is lower than, equal to or higher than `b` in `ecosystem`'s ordering."""
    return scheme_for(ecosystem).compare(a, b)


def is_valid(ecosystem: str, version: str) -> bool:
    """Whether `version` follows `ecosystem`'s own version grammar."""
    return scheme_for(ecosystem).is_valid(version)


def sort_key(ecosystem: str) -> Callable[[str], Any]:
    """A key function that sorts version strings in `ecosystem`'s order."""
    return functools.cmp_to_key(scheme_for(ecosystem).compare)
