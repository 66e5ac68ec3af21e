"""Exact version ordering algorithms, one module per scheme, each citing the algorithm it follows.

Every scheme is a `Scheme` (base.py): `compare(a, b)` returns -1, 0 or 1 and `is_valid(v)` says whether `v`
follows the scheme's own grammar; schemes.py names one `Scheme` per algorithm. Which OSV ecosystem uses
which scheme is ecosystem knowledge: `scanner.ecosystems` holds it and offers `compare(ecosystem, a, b)`,
`is_valid(ecosystem, v)` and `sort_key(ecosystem)` by ecosystem name.

`compare` never raises for a version string: it applies the scheme's algorithm to malformed versions
too (as dpkg and apk do, with a warning) and each module documents what it does with them. Callers that
must refuse malformed versions check `is_valid` first.

OSV's `introduced: "0"` means "from the first version", but "0" is not the lowest version in every
scheme (`0~1 < 0` in dpkg and rpm, `0.0.0-alpha < 0` in SemVer, `0-dev < 0` in Packagist), so callers
must special-case the event value "0" rather than compare with it.
"""

from __future__ import annotations

from scanner.versions.base import Scheme, VersionError

__all__ = ["Scheme", "VersionError"]
