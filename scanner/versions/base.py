"""What every version scheme provides, the one error this package raises, and shared comparison helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from scanner.model.errors import AcrguardError


class VersionError(AcrguardError):
    """An ecosystem this package has no version scheme for."""


@dataclass(frozen=True)
class Scheme:
    """One ordering algorithm: `compare` is total (it never raises for a string), `is_valid` is the native grammar.

    `compare` applies the native algorithm to any string, as the native tools do when they meet a malformed
    version (dpkg and apk warn and compare anyway); callers that want to refuse malformed versions ask `is_valid`.
    """

    name: str
    compare: Callable[[str, str], int]
    is_valid: Callable[[str], bool]


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __gt__(self, other: Any, /) -> bool: ...


def cmp(a: _Ordered, b: _Ordered) -> int:
    """Three-way comparison (-1, 0, 1) of two values of one orderable type."""
    return int(a > b) - int(a < b)


def precedence(
    numbers_a: tuple[Any, ...], label_a: tuple[Any, ...], numbers_b: tuple[Any, ...], label_b: tuple[Any, ...]
) -> int:
    """SemVer 2.0.0 precedence (semver.org section 11) of two versions as order keys: the numbers first; then a
    release (an empty pre-release label) above any pre-release of the same numbers; then the labels part by part,
    a longer label above its prefix."""
    result = cmp(numbers_a, numbers_b)
    if result:
        return result
    if not label_a or not label_b:
        return cmp(not label_a, not label_b)
    return cmp(label_a, label_b)


def sign(value: int) -> int:
    """-1, 0 or 1: native algorithms return arbitrary magnitudes (dpkg returns a character difference)."""
    return (value > 0) - (value < 0)


# ASCII only: versions from untrusted images may hold other Unicode digits and letters, which the native
# algorithms treat as separators or text.
DIGITS = frozenset("0123456789")
ALNUM = DIGITS | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

# A run of ASCII digits as an order key: (count of significant digits, the significant digits).
NumberKey = tuple[int, str]
ZERO: NumberKey = (0, "")


def number(digits: str) -> NumberKey:
    """Order key for a digit run of any length, equal for equal values (`007` and `7`).

    Versions come from untrusted images, and `int()` refuses strings over 4300 digits (CPython's
    int_max_str_digits), so digit runs are compared as strings: fewer significant digits is smaller,
    then digit by digit.
    """
    significant = digits.lstrip("0")
    return (len(significant), significant)


def run_end(text: str, pos: int, chars: frozenset[str]) -> int:
    """Where the run of `chars` that starts at `pos` ends (`pos` itself when there is none)."""
    end = pos
    while end < len(text) and text[end] in chars:
        end += 1
    return end
