"""apk-tools 2's version reader, kept only to order malformed versions the way OSV's reference data expects.

apk-tools 2 (src/version.c before the apk-tools 3 rewrite; it is what Alpine 3.x ships) reads
versions apk-tools 3 rejects: `1.2..3`, `6.6.2p1` (a digit after the letter), `.1`, `a`. `scanner.versions.apk`
consults it only when apk-tools 3 stops at a malformed token in both versions and so calls them
equal. The token walk follows `next_token` and `get_token`; numbers wrap like apk-tools 2's 32-bit
C `int` does on the platforms Alpine builds for.
"""

from __future__ import annotations

import functools

from scanner.versions.base import DIGITS

# apk-tools 2's `enum PARTS`, in its order; INVALID is -1.
_INVALID, _DIGIT_OR_ZERO, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _REVISION_NO, _END = range(-1, 7)
_PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
_POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def _next_token(kind: int, text: str, pos: int) -> tuple[int, int]:
    """next_token(): the type of the token at `pos`, and where its value starts."""
    if pos >= len(text):
        new = _END
    elif kind in (_DIGIT, _DIGIT_OR_ZERO) and text[pos] in _LOWER:
        new = _LETTER
    elif kind == _LETTER and text[pos] in DIGITS:
        new = _DIGIT
    elif kind == _SUFFIX and text[pos] in DIGITS:
        new = _SUFFIX_NO
    else:
        char = text[pos]
        if char == ".":
            new = _DIGIT_OR_ZERO
        elif char == "_":
            new = _SUFFIX
        elif char == "-" and text.startswith("r", pos + 1):
            new = _REVISION_NO
            pos += 1
        else:
            new = _INVALID
        pos += 1
    if new < kind and not (
        (new == _DIGIT_OR_ZERO and kind == _DIGIT)
        or (new == _SUFFIX and kind == _SUFFIX_NO)
        or (new == _DIGIT and kind == _LETTER)
    ):
        new = _INVALID
    return new, pos


def _get_token(kind: int, text: str, pos: int) -> tuple[int, int, int]:
    """get_token(): (the next token's type, this token's value, position after it)."""
    if pos >= len(text):
        return _END, 0, pos
    value, length, forced = 0, 0, _INVALID
    if kind == _DIGIT_OR_ZERO and text[pos] == "0":
        # A run of leading zeros after a dot is its own token, worth minus its length.
        while pos + length < len(text) and text[pos + length] == "0":
            length += 1
        value, forced = -length, _DIGIT
    elif kind in (_DIGIT_OR_ZERO, _DIGIT, _SUFFIX_NO, _REVISION_NO):
        while pos + length < len(text) and text[pos + length] in DIGITS:
            value = _int32(value * 10 + int(text[pos + length]))
            length += 1
    elif kind == _LETTER:
        value, length = ord(text[pos]), 1
    elif kind == _SUFFIX:
        for rank, suffix in enumerate(_PRE_SUFFIXES):
            if text.startswith(suffix, pos):
                value, length = rank - len(_PRE_SUFFIXES), len(suffix)
                break
        else:
            for rank, suffix in enumerate(_POST_SUFFIXES):
                if text.startswith(suffix, pos):
                    value, length = rank, len(suffix)
                    break
            else:
                return _INVALID, -1, pos
    else:
        return _INVALID, -1, pos
    pos += length
    if pos >= len(text):
        return _END, value, pos
    if forced != _INVALID:
        return forced, value, pos
    kind, pos = _next_token(kind, text, pos)
    return kind, value, pos


@functools.lru_cache(maxsize=4096)
def is_valid(version: str) -> bool:
    """apk_version_validate() of apk-tools 2."""
    kind, pos = _DIGIT, 0
    while kind not in (_END, _INVALID):
        kind, _, pos = _get_token(kind, version, pos)
    return kind == _END


def compare(a: str, b: str) -> int:
    """apk_version_compare_blob() of apk-tools 2: -1, 0 or 1."""
    at = bt = _DIGIT
    av = bv = 0
    pa = pb = 0
    while at == bt and at not in (_END, _INVALID) and av == bv:
        at, av, pa = _get_token(at, a, pa)
        bt, bv, pb = _get_token(bt, b, pb)
    if av != bv:
        return -1 if av < bv else 1
    if at == bt:
        return 0
    # The version that goes on is the greater, unless it goes on with a pre-release suffix.
    if at == _SUFFIX and _get_token(at, a, pa)[1] < 0:
        return -1
    if bt == _SUFFIX and _get_token(bt, b, pb)[1] < 0:
        return 1
    return -1 if at > bt else 1
