"""Packagist (Composer) versions, ordered by PHP's `version_compare` as Composer uses it.

Algorithm: php-src ext/standard/versioning.c (PHP 8: `php_canonicalize_version`,
`compare_special_version_forms`, `php_version_compare`). The version is canonicalised ('-', '_',
'+' and other punctuation become '.', and a '.' is put between a digit and a non-digit), split at
'.', and compared element by element: numbers numerically, words by the special forms
`dev < alpha = a < beta = b < RC = rc < # < pl = p` (matched by prefix; other words rank below `dev`),
a number ranking as `#` against a word. When one version runs out, the other wins if its next
element is a number, else its rest is compared with `#`.

Three deliberate differences from PHP, all matching OSV's reference data:

* a leading `v`/`V` is dropped, as Composer's version normaliser drops it (`v1.0 == 1.0`);
* numbers have no size limit (PHP's strtol saturates at LONG_MAX, making all huge numbers equal);
* `#` is kept as a version character instead of becoming a separator, so `1.2.3.# == 1.2.3`.
"""

from __future__ import annotations

import functools

from scanner.versions.base import ALNUM, DIGITS, NumberKey, cmp, number, run_end

# compare_special_version_forms(): first prefix match wins; "#N#" is how PHP ranks a number.
_SPECIAL_FORMS = (
    ("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3), ("rc", 3), ("#", 4), ("pl", 5), ("p", 5),
)  # fmt: skip
_NUMBER_FORM = "#N#"


def _special(form: str) -> int:
    for name, order in _SPECIAL_FORMS:
        if form.startswith(name):
            return order
    return -1


@functools.lru_cache(maxsize=16384)
def canonicalize(version: str) -> str:
    """php_canonicalize_version(), keeping '#'; the first character is copied as it is, as PHP does."""
    if not version:
        return ""
    out = [version[0]]
    last = version[0]
    for char in version[1:]:
        dot_before = out[-1] == "."
        last_digit, char_digit = last in DIGITS, char in DIGITS
        if char in "-_+":
            if not dot_before:
                out.append(".")
        elif (last != "." and char != ".") and last_digit != char_digit:
            if not dot_before:
                out.append(".")
            out.append(char)
        elif char not in ALNUM and char != "#":
            if not dot_before:
                out.append(".")
        else:
            out.append(char)
        last = char
    return "".join(out)


def _leading_number(element: str) -> NumberKey:
    return number(element[: run_end(element, 0, DIGITS)])


def _element_cmp(a: str, b: str) -> int:
    a_digit, b_digit = a[:1] in DIGITS and a != "", b[:1] in DIGITS and b != ""
    if a_digit and b_digit:
        return cmp(_leading_number(a), _leading_number(b))
    if not a_digit and not b_digit:
        return cmp(_special(a), _special(b))
    if a_digit:
        return cmp(_special(_NUMBER_FORM), _special(b))
    return cmp(_special(a), _special(_NUMBER_FORM))


def _php_compare(a: str, b: str) -> int:
    """php_version_compare() on strings without the `v`."""
    if not a or not b:
        return cmp(bool(a), bool(b))
    sa = a if a[0] == "#" else canonicalize(a)
    sb = b if b[0] == "#" else canonicalize(b)
    pa = pb = 0
    na: int | None = 0
    nb: int | None = 0
    result = 0
    while pa < len(sa) and pb < len(sb) and na is not None and nb is not None:
        na, nb = sa.find(".", pa), sb.find(".", pb)
        na = None if na < 0 else na
        nb = None if nb < 0 else nb
        result = _element_cmp(sa[pa:na], sb[pb:nb])
        if result:
            return result
        if na is not None:
            pa = na + 1
        if nb is not None:
            pb = nb + 1
    if na is not None:
        rest = sa[pa:]
        return 1 if rest[:1] in DIGITS and rest else _php_compare(rest, _NUMBER_FORM)
    if nb is not None:
        rest = sb[pb:]
        return -1 if rest[:1] in DIGITS and rest else _php_compare(_NUMBER_FORM, rest)
    return 0


def _strip_v(version: str) -> str:
    return version[1:] if version[:1] in ("v", "V") else version


def compare(a: str, b: str) -> int:
    if a == b:
        return 0
    return _php_compare(_strip_v(a), _strip_v(b))


def is_valid(version: str) -> bool:
    """Any non-empty version without whitespace: version_compare accepts every string."""
    return bool(version) and not any(c.isspace() for c in version)
