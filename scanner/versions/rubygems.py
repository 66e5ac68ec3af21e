"""RubyGems versions, ordered as `Gem::Version#<=>` (rubygems lib/rubygems/version.rb, RubyGems 3.x).

The string is stripped, every '-' becomes `.pre.`, and it is scanned into segments: digit runs (as
integers) and letter runs (as strings), so `1.0.a10 == 1.0.a.10`. Trailing zeros are dropped from the
numeric part and from the part after the first letter segment ("canonical segments"). Segments then
compare left to right, the shorter padded with 0: numbers numerically, strings as byte strings, and a
string below a number (so `1.0.b1 < 1.0`).

`compare` applies that algorithm to any string; `is_valid` is `Gem::Version.correct?`. RubyGems
refuses `1beta` (a letter directly after the first number) but OSV's data still orders it by the same
segments (`1beta < 1`), which is what `compare` does.
"""

from __future__ import annotations

import functools
import re

from scanner.versions.base import cmp, number

# Gem::Version::VERSION_PATTERN, anchored as ANCHORED_VERSION_PATTERN (blank is allowed: it means "0").
_SPACE = r"[ \t\r\n\f\v]*"  # Ruby's \s
_VALID = re.compile(rf"{_SPACE}(?:[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?{_SPACE}")
_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")

# A segment as an order key: a letter run (0, 0, text) sorts below any number (1, digit count, digits),
# letter runs compare as byte strings (ASCII letters only), numbers by value.
Segment = tuple[int, int, str]
_ZERO: Segment = (1, 0, "")


def _segment(text: str) -> Segment:
    return (1, *number(text)) if text[0].isdigit() else (0, 0, text)


def _drop_trailing_zeros(segments: list[Segment]) -> list[Segment]:
    while segments and segments[-1] == _ZERO:
        segments.pop()
    return segments


@functools.lru_cache(maxsize=16384)
def canonical_segments(version: str) -> tuple[Segment, ...]:
    text = version.strip().replace("-", ".pre.") or "0"
    segments = [_segment(s) for s in _SEGMENT.findall(text)]
    first_string = next((i for i, s in enumerate(segments) if s[0] == 0), len(segments))
    numeric, rest = segments[:first_string], segments[first_string:]
    return tuple(_drop_trailing_zeros(numeric) + _drop_trailing_zeros(rest))


def compare(a: str, b: str) -> int:
    """Gem::Version#<=>: segment by segment, the shorter list padded with 0."""
    if a == b:
        return 0
    sa, sb = canonical_segments(a), canonical_segments(b)
    for i in range(max(len(sa), len(sb))):
        result = cmp(sa[i] if i < len(sa) else _ZERO, sb[i] if i < len(sb) else _ZERO)
        if result:
            return result
    return 0


def is_valid(version: str) -> bool:
    """Gem::Version.correct?"""
    return _VALID.fullmatch(version) is not None
