"""RPM versions (`[epoch:]version[-release]`), ordered exactly as rpm 4.18 orders them.

`rpmvercmp` is rpm's rpmio/rpmvercmp.c; the EVR split is rpm's `parseEVR` (lib/rpmds.c): the
epoch is a run of digits before the first ':' (so `a:1` has no epoch), the release follows the last
'-'. `compare` is the python `rpm.labelCompare` of that EVR: a missing epoch is "0" and each part is
compared with rpmvercmp, and a missing release sorts before any release, even an empty one (`1 < 1-`,
`1 < 1-0`), because labelCompare compares a missing value below a present one.

`parse_nevra` and `compare_nevra` read whole `name-[epoch:]version-release[.arch]` strings for
callers that hold an rpm database's labels; they follow claircore's internal/rpmver (names and arches
compared with rpmvercmp, a present name or arch after an absent one).
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from scanner.versions.base import ALNUM, DIGITS, cmp, run_end

_ALPHA = ALNUM - DIGITS
# rpm accepts these in Version and Release (rpmbuild's rpmCharCheck allows "._+%{}~^" besides letters and
# digits; '%', '{' and '}' only survive unexpanded macros, so they are not accepted here).
_PART = re.compile(r"[A-Za-z0-9._+~^]+")
# Architecture suffixes that `parse_nevra` recognises; anything else stays part of the release.
ARCHES = frozenset(
    {
        "noarch", "src", "nosrc", "x86_64", "i386", "i486", "i586", "i686", "athlon", "aarch64", "armv7hl",
        "armv7l", "armv6hl", "armhfp", "ppc", "ppc64", "ppc64le", "s390", "s390x", "riscv", "riscv64", "loongarch64",
    }
)  # fmt: skip


@functools.lru_cache(maxsize=32768)
def rpmvercmp(a: str, b: str) -> int:
    """rpm's rpmvercmp(): -1, 0 or 1.

    Separators (anything but ASCII letters, digits, '~' and '^') only split segments. '~' sorts before
    everything, even the end of the string; '^' sorts after the end of the string but before anything
    else. Digit segments compare numerically and beat letter segments; letter segments compare as
    byte strings. Non-ASCII characters are separators, so versions differing only in Greek letters are
    equal, as rpm has them.
    """
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and a[i] not in ALNUM and a[i] not in "~^":
            i += 1
        while j < len(b) and b[j] not in ALNUM and b[j] not in "~^":
            j += 1
        ca, cb = a[i : i + 1], b[j : j + 1]
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        chars = DIGITS if ca in DIGITS else _ALPHA
        end_a, end_b = run_end(a, i, chars), run_end(b, j, chars)
        seg_a, seg_b = a[i:end_a], b[j:end_b]
        if not seg_b:
            # Segments of different kinds: a number is newer than letters.
            return 1 if chars is DIGITS else -1
        if chars is DIGITS:
            seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
            result = cmp(len(seg_a), len(seg_b)) or cmp(seg_a, seg_b)
        else:
            result = cmp(seg_a.encode(), seg_b.encode())
        if result:
            return result
        i, j = end_a, end_b
    # Everything compared equal: the one with characters left over wins (separators included).
    return cmp(i < len(a), j < len(b))


class EVR(NamedTuple):
    epoch: str | None
    version: str
    release: str | None


@functools.lru_cache(maxsize=16384)
def parse_evr(evr: str) -> EVR:
    """rpm's parseEVR(): epoch only when digits run up to a ':', release after the last '-' past that point."""
    end = run_end(evr, 0, DIGITS)
    epoch: str | None = None
    rest = evr
    if evr[end : end + 1] == ":":
        epoch = evr[:end] or "0"
        rest = evr[end + 1 :]
    version, hyphen, release = rest.rpartition("-")
    if not hyphen:
        return EVR(epoch, rest, None)
    return EVR(epoch, version, release)


def _compare_values(a: str | None, b: str | None) -> int:
    """python rpm's compare_values(): a missing value sorts before a present one."""
    if a is None or b is None:
        return cmp(a is not None, b is not None)
    return rpmvercmp(a, b)


def compare(a: str, b: str) -> int:
    """rpm.labelCompare() of the two EVR strings: -1, 0 or 1."""
    if a == b:
        return 0
    ea, eb = parse_evr(a), parse_evr(b)
    return (
        rpmvercmp(ea.epoch or "0", eb.epoch or "0")
        or _compare_values(ea.version, eb.version)
        or _compare_values(ea.release, eb.release)
    )


def is_valid(evr: str) -> bool:
    """An EVR rpm would build: numeric epoch if any, a version and (after a '-') a release of rpm's characters."""
    head, colon, rest = evr.partition(":")
    if colon:
        if not (head.isascii() and head.isdigit()):
            return False
        evr = rest
    version, hyphen, release = evr.rpartition("-")
    if not hyphen:
        version, release = evr, ""
    elif not release:
        return False
    return bool(_PART.fullmatch(version)) and (not release or bool(_PART.fullmatch(release)))


class NEVRA(NamedTuple):
    name: str | None
    epoch: str
    version: str
    release: str
    arch: str | None


def parse_nevra(text: str) -> NEVRA:
    """Read `[name-][epoch:]version-release[.arch]`; the name is whatever precedes the last two '-'."""
    name: str | None = None
    if text.count("-") >= 2:
        name, text = text[: text.rindex("-", 0, text.rindex("-"))], text[text.rindex("-", 0, text.rindex("-")) + 1 :]
    ev, _, release = text.partition("-")
    epoch, colon, version = ev.partition(":")
    if not colon:
        epoch, version = "", ev
    arch: str | None = None
    stem, dot, suffix = release.rpartition(".")
    if dot and suffix in ARCHES:
        release, arch = stem, suffix
    return NEVRA(name, epoch or "0", version, release, arch)


def compare_nevra(a: str, b: str) -> int:
    """Name, epoch, version, release, arch in turn; a missing name or arch sorts before a present one."""
    na, nb = parse_nevra(a), parse_nevra(b)
    return (
        _compare_values(na.name, nb.name)
        or rpmvercmp(na.epoch, nb.epoch)
        or rpmvercmp(na.version, nb.version)
        or rpmvercmp(na.release, nb.release)
        or _compare_values(na.arch, nb.arch)
    )
