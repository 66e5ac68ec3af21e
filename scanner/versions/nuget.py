"""NuGet versions, ordered as NuGet.Versioning's `VersionComparer.Default` (`VersionComparison.Default`).

A version is up to four numbers (`Major.Minor.Patch.Revision`, missing ones are 0, so
`1.0 == 1.0.0.0`), an optional `-` release label of dot-separated parts and optional `+` metadata,
which never counts. A version with a release label sorts before the same numbers without one; label
parts compare left to right: both numeric (what .NET's `Int32.TryParse` accepts) numerically, a number
below a word, words with `StringComparer.OrdinalIgnoreCase`, and a longer label above its prefix.

`compare` is lenient in the same way as `scanner.versions.semver` (a leading `v`, numbers of any size,
more than four numbers); `is_valid` is NuGet's grammar: 1 to 4 numbers (leading zeros allowed: NuGet
normalises them away), a SemVer 2.0 release label (no leading zero in a numeric part) and metadata.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from scanner.versions.base import ZERO, NumberKey, number, precedence

# Release label parts follow SemVer 2.0: a numeric part has no leading zero (NuGet rejects `1.0.0-01`).
_LABEL_PART = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_VALID = re.compile(
    rf"[0-9]+(?:\.[0-9]+){{0,3}}(?:-{_LABEL_PART}(?:\.{_LABEL_PART})*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+)*")

_INT32 = re.compile(r"-?[0-9]+")
# A label part as a sort key: numbers (0, n, "") before words (1, 0, upper-cased word).
Part = tuple[int, int, str]
_INT32_MAX_CHARS = 11  # "-2147483648"


class NuGetVersion(NamedTuple):
    numbers: tuple[NumberKey, ...]
    label: tuple[Part, ...]  # empty: a release


def _part(text: str) -> Part:
    """CompareRelease(): a part is numeric when Int32.TryParse accepts it, else compared ignoring case."""
    if len(text) <= _INT32_MAX_CHARS and _INT32.fullmatch(text) and -(2**31) <= int(text) < 2**31:
        return (0, int(text), "")
    return (1, 0, text.upper())


@functools.lru_cache(maxsize=16384)
def parse(version: str) -> NuGetVersion:
    text = version.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    text = text.partition("+")[0]
    match = _NUMBERS.match(text)
    numbers = [number(n) for n in match.group().split(".")] if match else []
    rest = text[match.end() :] if match else text
    while len(numbers) < 4:
        numbers.append(ZERO)
    while len(numbers) > 4 and numbers[-1] == ZERO:
        numbers.pop()
    if rest.startswith("-"):
        rest = rest[1:]
    label = tuple(_part(part) for part in rest.split(".")) if rest else ()
    return NuGetVersion(tuple(numbers), label)


def compare(a: str, b: str) -> int:
    if a == b:
        return 0
    va, vb = parse(a), parse(b)
    return precedence(va.numbers, va.label, vb.numbers, vb.label)


def is_valid(version: str) -> bool:
    return _VALID.fullmatch(version.strip()) is not None
