"""Version ordering by OSV ecosystem name: each ecosystem's record names its scheme (scanner.versions).

    compare(ecosystem, a, b)  -> -1, 0 or 1
    is_valid(ecosystem, v)    -> whether `v` follows the ecosystem's own grammar
    sort_key(ecosystem)       -> a key function for `sorted`

`ecosystem` may carry its release suffix (`Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.19`,
`Red Hat:enterprise_linux:9::appstream`); names match case-insensitively. An ecosystem without a scheme
raises `VersionError`. See scanner.versions for what `compare` does with malformed versions and OSV's "0".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from scanner.ecosystems.catalog import ECOSYSTEMS, find
from scanner.versions.base import Scheme, VersionError

# Every ecosystem's scheme, by OSV name.
SCHEMES: dict[str, Scheme] = {record.name: record.scheme for record in ECOSYSTEMS}


def scheme_for(ecosystem: str) -> Scheme:
    """The scheme for an OSV ecosystem name, with or without its release suffix."""
    record = find(ecosystem)
    if record is None:
        raise VersionError(f"no version ordering for ecosystem {ecosystem!r}")
    return record.scheme


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is lower than, equal to or higher than `b` in `ecosystem`'s ordering."""
    return scheme_for(ecosystem).compare(a, b)


def is_valid(ecosystem: str, version: str) -> bool:
    """Whether `version` follows `ecosystem`'s own version grammar."""
    return scheme_for(ecosystem).is_valid(version)


def sort_key(ecosystem: str) -> Callable[[str], Any]:
    """A key function that sorts version strings in `ecosystem`'s order."""
    return functools.cmp_to_key(scheme_for(ecosystem).compare)
