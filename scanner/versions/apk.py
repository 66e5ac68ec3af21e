"""Alpine (and Wolfi, Chainguard, MinimOS) package versions, ordered as apk-tools orders them.

Grammar: `digit{.digit}...{letter}{_suffix{digits}}...{~hash}{-r#}`. Algorithm: apk-tools
src/version.c (apk-tools 3: `token_first`, `token_next`, `token_cmp`, `apk_version_compare_fuzzy`,
`apk_version_validate`). The version is read as a sequence of typed tokens; two versions are compared
token by token while the token types agree, and where the types part the one that ended or that
continues with a pre-release suffix is the lower.

Malformed versions (which `is_valid` rejects, as apk-tools 3 does) never reach an Alpine index, but
OSV's reference data orders some of them the apk-tools 2 way (Alpine 3.x still ships apk-tools 2),
so for them apk-tools 3's walk is kept with two apk-tools 2 readings:

* a bare `-r` that ends the version or is followed by a non-letter reads as `-r0` (apk-tools 2 reads a
  missing revision number as 0; `-r` followed by letters, as in `1-ruff`, stays malformed);
* where both versions turn malformed at the same token after equal tokens (apk-tools 3 calls them
  equal), two versions apk-tools 2 can read are ordered as apk-tools 2 orders them (`0..1..0 < 0..1..1`,
  `6.6.2p1 < 6.6.2p2`, `a < b`); `1-ruff2 = 1-ruff1` stays equal.

Two well-formed versions are always ordered exactly as apk-tools 3 orders them.
"""

from __future__ import annotations

import enum
import functools
from typing import NamedTuple

from scanner.versions import apk_legacy
from scanner.versions.base import DIGITS, cmp, run_end


class Token(enum.IntEnum):
    """apk-tools' `enum PARTS`; the order matters: a later type may only follow an earlier one."""

    INITIAL_DIGIT = 0
    DIGIT = 1
    LETTER = 2
    SUFFIX = 3
    SUFFIX_NO = 4
    COMMIT_HASH = 5
    REVISION_NO = 6
    END = 7
    INVALID = 8


# apk-tools' DECLARE_SUFFIXES order: pre-release suffixes sort below "no suffix" (NONE), the rest above.
_SUFFIXES = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}
_SUFFIX_NONE = 5
_UINT64 = 2**64
_HEX = frozenset("0123456789abcdef")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")


class Part(NamedTuple):
    token: Token
    text: str  # the token's characters: digits, the letter, the suffix name or the hash
    number: int  # digits as apk_blob_pull_uint reads them (a uint64, so it wraps); suffix rank for SUFFIX


def _uint64(digits: str) -> int:
    """apk_blob_pull_uint(): the value modulo 2**64. 10**64 is a multiple of 2**64, so the last 64 digits decide."""
    return int(digits[-64:] or "0") % _UINT64


@functools.lru_cache(maxsize=16384)
def tokens(version: str, lenient: bool = False) -> tuple[Part, ...]:
    """All tokens up to and including the terminating END or INVALID one; `lenient` reads a bare `-r` as `-r0`."""
    parts: list[Part] = []
    end = run_end(version, 0, DIGITS)
    token = Token.INITIAL_DIGIT if end > 0 else Token.INVALID
    parts.append(Part(token, version[:end], _uint64(version[:end])))
    pos = end
    while token < Token.END:
        token, text, number, pos = _next(version, pos, token, lenient)
        parts.append(Part(token, text, number))
    return tuple(parts)


def _next(version: str, pos: int, previous: Token, lenient: bool) -> tuple[Token, str, int, int]:
    """token_next(): the type of the next token is decided by its first character and the previous type."""
    invalid = (Token.INVALID, "", 0, pos)
    if pos >= len(version):
        return Token.END, "", 0, pos
    char = version[pos]
    if char in _LOWER:
        if previous > Token.DIGIT:
            return invalid
        return Token.LETTER, char, ord(char), pos + 1
    if char == "." or char in DIGITS:
        if char == ".":
            if previous > Token.DIGIT:
                return invalid
            pos += 1
        if previous in (Token.INITIAL_DIGIT, Token.DIGIT):
            token = Token.DIGIT
        elif previous == Token.SUFFIX:
            token = Token.SUFFIX_NO
        else:
            return invalid
        end = run_end(version, pos, DIGITS)
        if end == pos:
            return Token.INVALID, "", 0, pos
        return token, version[pos:end], _uint64(version[pos:end]), end
    if char == "_":
        if previous > Token.SUFFIX_NO:
            return invalid
        end = run_end(version, pos + 1, _LOWER)
        rank = _SUFFIXES.get(version[pos + 1 : end])
        if rank is None:
            return invalid
        return Token.SUFFIX, version[pos + 1 : end], rank, end
    if char == "~":
        if previous >= Token.COMMIT_HASH:
            return invalid
        end = run_end(version, pos + 1, _HEX)
        if end == pos + 1:
            return invalid
        return Token.COMMIT_HASH, version[pos + 1 : end], 0, end
    if char == "-":
        if previous >= Token.REVISION_NO or not version.startswith("-r", pos):
            return invalid
        end = run_end(version, pos + 2, DIGITS)
        if end == pos + 2:
            if lenient and version[end : end + 1] not in _LOWER:
                return Token.REVISION_NO, "", 0, end
            return Token.INVALID, "", 0, end
        return Token.REVISION_NO, version[pos + 2 : end], _uint64(version[pos + 2 : end]), end
    return invalid


def _blob_sort(a: str, b: str) -> int:
    """apk_blob_sort(): memcmp over the common length, then the shorter first (plain string order)."""
    return cmp(a.encode(), b.encode())


def _token_cmp(a: Part, b: Part) -> int:
    """token_cmp(): numbers numerically, except that a digit group with a leading zero compares as a string."""
    if a.token == Token.DIGIT and (a.text.startswith("0") or b.text.startswith("0")):
        return _blob_sort(a.text, b.text)
    if a.token in (Token.INITIAL_DIGIT, Token.DIGIT, Token.SUFFIX_NO, Token.REVISION_NO, Token.LETTER, Token.SUFFIX):
        return cmp(a.number, b.number)
    return _blob_sort(a.text, b.text)


def _compare(a: str, b: str, fuzzy: bool, lenient: bool = False) -> int:
    """apk_version_compare_fuzzy(); `fuzzy` makes a version equal to any version it extends (`3.6.9 ~ 3.6`)."""
    ta, tb = tokens(a, lenient), tokens(b, lenient)
    i = 0
    while ta[i].token == tb[i].token and ta[i].token < Token.END:
        result = _token_cmp(ta[i], tb[i])
        if result:
            return result
        i += 1
    pa, pb = ta[i], tb[i]
    if pa.token == pb.token or (fuzzy and pb.token == Token.END):
        return 0
    # The version that goes on is the greater, unless what follows is a pre-release suffix.
    if pa.token == Token.SUFFIX and pa.number < _SUFFIX_NONE:
        return -1
    if pb.token == Token.SUFFIX and pb.number < _SUFFIX_NONE:
        return 1
    return 1 if pa.token < pb.token else -1


def compare(a: str, b: str) -> int:
    """apk_version_compare(): -1, 0 or 1 (see the module notes for malformed versions)."""
    if a == b:
        return 0
    if is_valid(a) and is_valid(b):
        return _compare(a, b, fuzzy=False)
    result = _compare(a, b, fuzzy=False, lenient=True)
    both_stop_malformed = tokens(a, True)[-1].token == tokens(b, True)[-1].token == Token.INVALID
    if result == 0 and both_stop_malformed and apk_legacy.is_valid(a) and apk_legacy.is_valid(b):
        return apk_legacy.compare(a, b)
    return result


def compare_fuzzy(a: str, b: str) -> int:
    """The comparison apk uses for operators with `~` (`<~`, `~`, `>~`): 0 also when `a` extends `b`."""
    return _compare(a, b, fuzzy=True)


def fuzzy_match(a: str, b: str) -> bool:
    """apk's `~` operator (`a ~ b`): `a` equals `b` or extends it component-wise (`3.6.9 ~ 3.6`, not `3.8 ~ 3.8.1`)."""
    return compare_fuzzy(a, b) == 0


def is_valid(version: str) -> bool:
    """apk_version_validate(): the tokens run to END without an INVALID one."""
    return tokens(version)[-1].token == Token.END
