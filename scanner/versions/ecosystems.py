"""Which version scheme each OSV ecosystem uses.

Names are OSV's (https://ossf.github.io/osv-schema/#defined-ecosystems). An ecosystem may carry a
release suffix after the first ':' (`Debian:12`, `Alpine:v3.19`, `Red Hat:enterprise_linux:9::appstream`);
the scheme depends only on the part before it. Names match case-insensitively.
"""

from __future__ import annotations

import functools

from scanner.versions import apk, dpkg, golang, maven, nuget, numeric, packagist, pep440, pub, rpm, rubygems, semver
from scanner.versions.base import Scheme, VersionError

DPKG = Scheme("dpkg", dpkg.compare, dpkg.is_valid)
APK = Scheme("apk", apk.compare, apk.is_valid)
RPM = Scheme("rpm", rpm.compare, rpm.is_valid)
PEP440 = Scheme("pep440", pep440.compare, pep440.is_valid)
NPM = Scheme("semver", semver.compare, semver.is_valid)
SEMVER_STRICT = Scheme("semver", semver.compare, semver.is_valid_strict)
GO = Scheme("go", golang.compare, golang.is_valid)
PUB = Scheme("pub", pub.compare, pub.is_valid)
MAVEN = Scheme("maven", maven.compare, maven.is_valid)
RUBYGEMS = Scheme("rubygems", rubygems.compare, rubygems.is_valid)
NUGET = Scheme("nuget", nuget.compare, nuget.is_valid)
PACKAGIST = Scheme("packagist", packagist.compare, packagist.is_valid)
CRAN = Scheme("cran", numeric.compare, numeric.is_valid_cran)
HACKAGE = Scheme("hackage", numeric.compare, numeric.is_valid_hackage)

SCHEMES: dict[str, Scheme] = {
    "Debian": DPKG,
    "Ubuntu": DPKG,
    "Alpine": APK,
    "Wolfi": APK,
    "Chainguard": APK,
    "MinimOS": APK,
    "Red Hat": RPM,
    "AlmaLinux": RPM,
    "Rocky Linux": RPM,
    "SUSE": RPM,
    "openSUSE": RPM,
    "Azure Linux": RPM,
    "Mariner": RPM,
    "Fedora": RPM,
    "Oracle Linux": RPM,
    "Amazon Linux": RPM,
    "Photon OS": RPM,
    "openEuler": RPM,
    "Mageia": RPM,
    "PyPI": PEP440,
    "npm": NPM,
    "crates.io": SEMVER_STRICT,
    "Hex": SEMVER_STRICT,
    "Go": GO,
    "Pub": PUB,
    "Maven": MAVEN,
    "RubyGems": RUBYGEMS,
    "NuGet": NUGET,
    "Packagist": PACKAGIST,
    "CRAN": CRAN,
    "Hackage": HACKAGE,
}
_BY_FOLDED_NAME = {name.casefold(): scheme for name, scheme in SCHEMES.items()}


@functools.lru_cache(maxsize=512)
def scheme_for(ecosystem: str) -> Scheme:
    """The scheme for an OSV ecosystem name, with or without its release suffix."""
    base = ecosystem.split(":", 1)[0].strip()
    scheme = _BY_FOLDED_NAME.get(base.casefold())
    if scheme is None:
        raise VersionError(f"no version ordering for ecosystem {ecosystem!r}")
    return scheme
