"""Go module versions: semantic versions with a `v`, as golang.org/x/mod/semver orders them.

OSV writes Go events without the `v` (`1.2.3`) while module versions carry it (`v1.2.3`); both read
the same here. `+incompatible` is build metadata and is ignored, as Go ignores it. Pseudo-versions
(`v0.0.0-20210101000000-abcdef123456`, `v1.2.4-0.20210101000000-abcdef123456`) are pre-releases whose
fixed-width timestamp makes them sort by time, below the release they precede. Go's shorthand `v1`
and `v1.2` mean `v1.0.0` and `v1.2.0`.

x/mod/semver ranks every invalid version below every valid one and calls all invalid ones equal; here
they get the lenient SemVer reading instead (see `scanner.versions.semver`), so `compare` stays a
total order that agrees with Go on every valid version.
"""

from __future__ import annotations

import re

from scanner.versions import semver

# x/mod/semver's grammar: vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]; the shorthands take neither suffix.
_SHORTHAND = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))?")


def compare(a: str, b: str) -> int:
    return semver.compare(a, b)


def is_valid(version: str) -> bool:
    """x/mod/semver.IsValid, with the leading `v` optional (OSV events omit it)."""
    text = version[1:] if version.startswith("v") else version
    return semver.STRICT.fullmatch(text) is not None or _SHORTHAND.fullmatch(text) is not None
