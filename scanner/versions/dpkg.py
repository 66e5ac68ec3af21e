"""Debian package versions: `[epoch:]upstream[-revision]`, ordered exactly as dpkg orders them.

Algorithm: dpkg's lib/dpkg/version.c (`dpkg_version_compare`, `verrevcmp`, `order`) and the grammar
of lib/dpkg/parsehelp.c (`parseversion`); deb-version(7) describes both. Written here rather than taken
from a library because the details (`~` before the end of the string, letters before other
characters, a missing revision equal to "0") are exactly what libraries get wrong.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from scanner.versions.base import cmp, number, sign

# dpkg stores the epoch in an int and refuses larger values ("epoch in version is too big").
_EPOCH_MAX = 2**31 - 1
_UPSTREAM_CHARS = re.compile(r"[A-Za-z0-9.+~:-]*")
_REVISION_CHARS = re.compile(r"[A-Za-z0-9.+~]*")


class DebVersion(NamedTuple):
    epoch: str  # digits; "0" when absent
    upstream: str
    revision: str


@functools.lru_cache(maxsize=16384)
def parse(version: str) -> DebVersion:
    """Split like parseversion(): epoch before the first ':', revision after the last '-'.

    A malformed epoch (not digits) cannot be an epoch, so the whole string stays in the upstream part;
    that keeps `compare` total without inventing an order dpkg does not have.
    """
    text = version.strip()
    epoch = "0"
    head, colon, rest = text.partition(":")
    if colon and head.isascii() and head.isdigit():
        epoch = head
        text = rest
    upstream, hyphen, revision = text.rpartition("-")
    if not hyphen:
        upstream, revision = text, ""
    return DebVersion(epoch, upstream, revision)


def _order(byte: int) -> int:
    """dpkg's order(): digits (and the end) 0, '~' -1, ASCII letters their code, any other byte its code + 256.

    dpkg passes a C `char` (signed on the platforms Debian builds for), so a byte above 0x7f arrives
    negative and `c + 256` gives it back its unsigned value: between the letters and the punctuation.
    """
    if byte == 0 or 0x30 <= byte <= 0x39:
        return 0
    if 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A:
        return byte
    if byte == 0x7E:
        return -1
    return byte if byte > 0x7F else byte + 256


def _is_digit(byte: int) -> bool:
    return 0x30 <= byte <= 0x39


def verrevcmp(a: str, b: str) -> int:
    """dpkg's verrevcmp(): alternate non-digit runs (compared by `_order`) and digit runs (numerically).

    It works on the UTF-8 bytes, as dpkg does; a digit run compares as an integer, which is what dpkg's
    "strip leading zeros, the longer run wins, else the first differing digit" amounts to.
    """
    x, y = a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    i = j = 0
    len_x, len_y = len(x), len(y)
    while i < len_x or j < len_y:
        while (i < len_x and not _is_digit(x[i])) or (j < len_y and not _is_digit(y[j])):
            xc = _order(x[i] if i < len_x else 0)
            yc = _order(y[j] if j < len_y else 0)
            if xc != yc:
                return sign(xc - yc)
            i += 1
            j += 1
        start_x = i
        while i < len_x and _is_digit(x[i]):
            i += 1
        start_y = j
        while j < len_y and _is_digit(y[j]):
            j += 1
        diff = cmp(number(x[start_x:i].decode()), number(y[start_y:j].decode()))
        if diff:
            return diff
    return 0


def compare(a: str, b: str) -> int:
    """dpkg_version_compare(): epoch numerically, then upstream, then revision with verrevcmp."""
    if a == b:
        return 0
    va, vb = parse(a), parse(b)
    return (
        cmp(number(va.epoch), number(vb.epoch))
        or verrevcmp(va.upstream, vb.upstream)
        or verrevcmp(va.revision, vb.revision)
    )


def is_valid(version: str) -> bool:
    """parseversion()'s checks, including the "does not start with digit" one that dpkg only warns about."""
    text = version.strip()
    if not text or any(c.isspace() for c in text):
        return False
    head, colon, rest = text.partition(":")
    if colon:
        if not (head.isascii() and head.isdigit()) or number(head) > number(str(_EPOCH_MAX)) or not rest:
            return False
        text = rest
    upstream, hyphen, revision = text.rpartition("-")
    if not hyphen:
        upstream, revision = text, ""
    elif not revision:
        return False
    if not upstream or not upstream[0].isascii() or not upstream[0].isdigit():
        return False
    return bool(_UPSTREAM_CHARS.fullmatch(upstream) and _REVISION_CHARS.fullmatch(revision))
