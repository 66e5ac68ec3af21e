"""SemVer 2.0.0 ordering for npm, crates.io, Hex and (through `golang`) Go.

Precedence follows semver.org section 11: major, minor, patch numerically; a version with a
pre-release sorts before the same version without; pre-release identifiers compare left to right,
numeric ones numerically and below alphanumeric ones, alphanumeric ones in ASCII order, and a longer
list wins when one is a prefix of the other. Build metadata never counts (`1.2.3+a == 1.2.3+b`).

Comparison is lenient, like the ecosystems' tools and OSV's reference implementation: leading `=`
and `v` (node-semver's `clean` drops them), missing minor or patch (`1`, `1.2`, read as `1.0.0`,
`1.2.0`), leading zeros, numbers of any size, extra numeric components after the patch (`1.1.3.4.5`,
whose `.4.5` is treated as build metadata), and text glued to the core (`1.2.3a` reads as `1.2.3-a`).
`is_valid` (npm) is node-semver's `clean(v) !== null`: strict SemVer 2.0.0 after surrounding
whitespace and leading `=`/`v` characters are dropped; `is_valid_strict` (crates.io, Hex) takes no prefix.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from scanner.versions.base import NumberKey, number, precedence

_NUM = r"0|[1-9][0-9]*"
_IDENT = r"[0-9A-Za-z-]+"
STRICT = re.compile(
    rf"(?P<core>(?:{_NUM})\.(?:{_NUM})\.(?:{_NUM}))"
    rf"(?:-(?P<pre>(?:{_NUM}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:{_NUM}|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?"
)
_CORE = re.compile(r"[0-9]+(?:\.[0-9]+)*")

# A pre-release identifier as a sort key: numbers (0, digit count, digits) before words (1, 0, text).
Identifier = tuple[int, int, str]


class SemVer(NamedTuple):
    core: tuple[NumberKey, NumberKey, NumberKey]
    prerelease: tuple[Identifier, ...]  # empty: a release
    build: tuple[str, ...]


def identifier(text: str) -> Identifier:
    return (0, *number(text)) if text.isdigit() and text.isascii() else (1, 0, text)


def strip_prefix(version: str, prefixes: str = "=vV") -> str:
    """Drop surrounding whitespace and leading `=`/`v` characters, as node-semver's `clean` does."""
    return version.strip().lstrip(prefixes).strip()


@functools.lru_cache(maxsize=16384)
def parse(version: str) -> SemVer:
    """The lenient reading described in the module notes; it accepts any string."""
    text = strip_prefix(version)
    match = _CORE.match(text)
    digits = match.group().split(".") if match else []
    rest = text[match.end() :] if match else text
    extra = digits[3:]
    numbers = [number(n) for n in [*digits, "0", "0", "0"][:3]]
    if rest.startswith("."):
        rest = rest[1:]
    pre, plus, build = rest.partition("+")
    if pre.startswith("-"):
        pre = pre[1:]
    prerelease = tuple(identifier(part) for part in pre.split(".")) if pre else ()
    build_parts = tuple(extra) + (tuple(build.split(".")) if plus else ())
    return SemVer((numbers[0], numbers[1], numbers[2]), prerelease, build_parts)


def compare_parsed(a: SemVer, b: SemVer) -> int:
    """Precedence of two parsed versions; build metadata is ignored."""
    return precedence(a.core, a.prerelease, b.core, b.prerelease)


def compare(a: str, b: str) -> int:
    if a == b:
        return 0
    return compare_parsed(parse(a), parse(b))


def is_valid(version: str) -> bool:
    """node-semver's `clean(version) !== null`: strict SemVer 2.0.0 once whitespace and `=`/`v` are dropped."""
    return STRICT.fullmatch(strip_prefix(version, "=v")) is not None


def is_valid_strict(version: str) -> bool:
    """Strict SemVer 2.0.0 with no prefix at all (crates.io, Hex)."""
    return STRICT.fullmatch(version) is not None
