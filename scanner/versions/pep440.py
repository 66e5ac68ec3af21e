"""PyPI versions: PEP 440 through `packaging.version.Version`, plus a fixed policy for legacy versions.

PEP 440 versions compare exactly as `packaging` (and so pip) compares them: epoch, release with
trailing zeros ignored, pre/post/dev releases, local labels.

Legacy policy. PyPI still serves files whose versions are not PEP 440 (`0.1-bulbasaur`,
`2004d`, `1.0-SNAPSHOT`); packaging >= 22 refuses them. They are ordered as setuptools'
`LegacyVersion` ordered them (packaging 21's `_legacy_cmpkey`), which is also what OSV's reference
data expects:

* every legacy version sorts before every PEP 440 version (LegacyVersion used epoch -1);
* among themselves, the lower-cased string is cut into digit runs, letter runs, '.' and '-';
  `pre`, `preview` and `rc` read as `c`, `dev` as `@`, a '-' as `final-`; numbers rank above words;
  a `*final` marker ends the key; trailing zeros of each numeric series are dropped and a `final-`
  before a pre-release word is dropped.

One deliberate difference: LegacyVersion zero-padded digit runs to 8 characters and compared the
text, so longer runs ordered as text (`099999999 < 99999999`); here digit runs compare by value, which
agrees with LegacyVersion wherever digit runs are at most 8 characters long (checked against
packaging 21.3's LegacyVersion on 20,000 random legacy pairs: the only disagreements were such runs).
"""

from __future__ import annotations

import functools
import re

from packaging.version import Version

from scanner.versions.base import cmp, number

# packaging 21's _legacy_version_component_re (with Python's Unicode `\d`, as there).
_LEGACY_PART = re.compile(r"(\d+|[a-z]+|\.|-)")
_LEGACY_REPLACE = {"pre": "c", "preview": "c", "-": "final-", "rc": "c", "dev": "@"}
# A legacy key part: (0, 0, word) for "*word" parts, (1, digit count, digits) for digit runs; words sort
# below numbers because LegacyVersion prefixed words with '*', which sorts below the digits.
LegacyPart = tuple[int, int, str]
_FINAL: LegacyPart = (0, 0, "final")
_FINAL_DASH: LegacyPart = (0, 0, "final-")
_ZERO: LegacyPart = (1, 0, "")


@functools.lru_cache(maxsize=16384)
def parse(version: str) -> Version | None:
    try:
        return Version(version)
    except ValueError:
        # InvalidVersion, or the ValueError int() raises on a digit run over 4300 digits: both read as legacy.
        return None


def _legacy_parts(version: str) -> list[LegacyPart]:
    parts: list[LegacyPart] = []
    for piece in _LEGACY_PART.split(version.lower()):
        piece = _LEGACY_REPLACE.get(piece, piece)
        if not piece or piece == ".":
            continue
        parts.append((1, *number(piece)) if piece[0] in "0123456789" else (0, 0, piece))
    parts.append(_FINAL)
    return parts


@functools.lru_cache(maxsize=4096)
def legacy_key(version: str) -> tuple[LegacyPart, ...]:
    """packaging 21's `_legacy_cmpkey` without the epoch, numbers as integers."""
    key: list[LegacyPart] = []
    for part in _legacy_parts(version):
        if part[0] == 0:
            # A pre-release word (anything below "final") drops the "-" markers before it.
            if part < _FINAL:
                while key and key[-1] == _FINAL_DASH:
                    key.pop()
            while key and key[-1] == _ZERO:
                key.pop()
        key.append(part)
    return tuple(key)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1: PEP 440 order; legacy versions below all PEP 440 ones and ordered by `legacy_key`."""
    va, vb = parse(a), parse(b)
    if va is not None and vb is not None:
        return cmp(va, vb)
    if va is None and vb is None:
        return cmp(legacy_key(a), legacy_key(b))
    return -1 if va is None else 1


def is_valid(version: str) -> bool:
    """PEP 440 validity, as `packaging` decides it (surrounding whitespace and a leading 'v' are allowed)."""
    return parse(version) is not None
