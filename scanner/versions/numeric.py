"""Purely numeric version schemes: CRAN (R packages) and Hackage (Haskell packages).

CRAN: R's `package_version` splits at '.' and '-' into integers and compares the integer lists
(base R, `numeric_version`): `0.01.0 == 0.1-0`, and a longer list is greater when the shorter is its
prefix (`0.1.0 < 0.1.0.0`). R requires at least two components.

Hackage: Cabal's `Version` is a list of integers separated by '.', compared as lists (Haskell's
`Ord [Int]`), so again `1.0 < 1.0.0`.

`compare` reads the digit runs of any string (non-numeric text is ignored); `is_valid` is each
ecosystem's grammar.
"""

from __future__ import annotations

import functools
import re

from scanner.versions.base import NumberKey, cmp, number

_CRAN = re.compile(r"[0-9]+(?:[.-][0-9]+)+")
_HACKAGE = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_NUMBERS = re.compile(r"[0-9]+")


@functools.lru_cache(maxsize=8192)
def numbers(version: str) -> tuple[NumberKey, ...]:
    return tuple(number(n) for n in _NUMBERS.findall(version))


def compare(a: str, b: str) -> int:
    return 0 if a == b else cmp(numbers(a), numbers(b))


def is_valid_cran(version: str) -> bool:
    return _CRAN.fullmatch(version) is not None


def is_valid_hackage(version: str) -> bool:
    return _HACKAGE.fullmatch(version) is not None
