"""Maven versions, ordered by the POM reference's "Version Order Specification" as OSV applies it.

Source: https://maven.apache.org/pom.html#version-order-specification, which describes Maven's
`ComparableVersion`; OSV's reference implementations (osv.dev, osv-scalibr) implement the
specification, and OSV's Maven ranges are computed with it, so this module follows them:

* the version is cut into tokens at '.', '-' and every digit/non-digit transition (a transition
  counts as '-'); an empty token is 0; each token remembers the separator before it;
* qualifiers are case-insensitive; `cr` is `rc`; `ga`, `final` and `release` are the empty qualifier;
  `a`, `b`, `m` directly followed by a number are `alpha`, `beta`, `milestone`;
* trailing "null" tokens (0 and the empty qualifier) are trimmed, at the end and again before each
  remaining '-' (so `1.0.0 == 1`, `1-ga-1 == 1-1`);
* the shorter version is padded with nulls carrying the other version's separator (0 after '.', the
  empty qualifier after '-');
* equal separators: numbers numerically and above qualifiers (a padding 0 is not above them);
  qualifiers `alpha < beta < milestone < rc < snapshot < "" < sp`, then unknown ones alphabetically;
* different separators: `.qualifier < -qualifier < -number < .number`.

Maven's own `ComparableVersion` (checked against Maven 3.8.7 in the tests) agrees on conventional
versions (`1.0-beta-1`, `2.1-rc1`, `3.0-SNAPSHOT`, any numbers). It parts ways where it nests tokens by
position rather than trimming them: a null qualifier before other tokens (`1-ga-1 == 1-1` here,
`1-ga-1 < 1-1` in Maven; `1.redhat-GA < 1.redhat` in Maven), `release` (an alias only from Maven 3.9),
and a `.qualifier` against a `-qualifier` in the same place (`1.beta < 1-alpha` here; Maven 3.9's
revised specification ranks the two separators equal for qualifiers). univers' `MavenVersion`, a port
of an older `ComparableVersion`, has the same differences. Numbers have no size limit.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from scanner.versions.base import cmp, number

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"cr": "rc", "ga": "", "final": "", "release": ""}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_RUNS = re.compile(r"[0-9]+|[^0-9]+")
# Rank of a token when separators differ: .qualifier < -qualifier < -number < .number
_SEPARATOR_RANK = {(".", False): 0, ("-", False): 1, ("-", True): 2, (".", True): 3}


class Token(NamedTuple):
    separator: str  # "" for the first token, else "." or "-"
    value: str  # lower-case qualifier, or a number without leading zeros
    number: bool
    padding: bool = False

    @property
    def is_null(self) -> bool:
        return self.value in ("0", "")


def _tokens(version: str) -> list[Token]:
    tokens: list[Token] = []
    pieces = re.split(r"([.-])", version)
    for index in range(0, len(pieces), 2):
        separator = pieces[index - 1] if index else ""
        runs = _RUNS.findall(pieces[index]) or [""]
        for position, run in enumerate(runs):
            value = run.lower()
            if position:
                separator = "-"  # a digit/non-digit transition counts as a hyphen
            if value.isdigit() and value.isascii():
                tokens.append(Token(separator, value.lstrip("0") or "0", True))
                continue
            if not value:
                tokens.append(Token(separator, "0", True))
                continue
            value = _ALIASES.get(value, value)
            if position + 1 < len(runs):  # followed directly by a number
                value = _SHORT.get(value, value)
            tokens.append(Token(separator, value, False))
    return tokens


def _trim(tokens: list[Token]) -> None:
    """Drop trailing nulls, then the nulls that end each hyphen-separated group, from the end to the start."""
    i = len(tokens) - 1
    while i > 0:
        if tokens[i].is_null:
            del tokens[i]
            i -= 1
            continue
        while i >= 0 and tokens[i].separator != "-":
            i -= 1
        i -= 1


@functools.lru_cache(maxsize=16384)
def parse(version: str) -> tuple[Token, ...]:
    tokens = _tokens(version)
    _trim(tokens)
    return tuple(tokens)


def _padding(other: Token) -> Token:
    if other.separator == "-":
        return Token("-", "", False, True)
    # `sp` is the one qualifier above the release; an empty qualifier as padding keeps `1 < 1.sp`.
    if other.value == "sp":
        return Token(".", "", False, True)
    return Token(".", "0", True, True)


def _qualifier_rank(value: str) -> tuple[int, str]:
    try:
        return _QUALIFIERS.index(value), ""
    except ValueError:
        return len(_QUALIFIERS), value


def _token_cmp(a: Token, b: Token) -> int:
    if a.separator != b.separator:
        return cmp(_SEPARATOR_RANK[(a.separator or ".", a.number)], _SEPARATOR_RANK[(b.separator or ".", b.number)])
    if a.number and b.number:
        return cmp(number(a.value), number(b.value))
    # A real number is above any qualifier; a padding 0 is not, it ranks like an unknown qualifier "0".
    if a.number and not a.padding:
        return 1
    if b.number and not b.padding:
        return -1
    return cmp(_qualifier_rank(a.value), _qualifier_rank(b.value))


def compare(a: str, b: str) -> int:
    if a == b:
        return 0
    ta, tb = parse(a), parse(b)
    for i in range(max(len(ta), len(tb))):
        left = ta[i] if i < len(ta) else _padding(tb[i])
        right = tb[i] if i < len(tb) else _padding(ta[i])
        if (left.separator, left.value) == (right.separator, right.value):
            continue
        return _token_cmp(left, right)
    return 0


def is_valid(version: str) -> bool:
    """Maven accepts any non-blank version string; whitespace inside one is not a version."""
    return bool(version) and not any(c.isspace() for c in version)
