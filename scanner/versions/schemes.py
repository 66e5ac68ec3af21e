"""One `Scheme` per ordering algorithm, named for it; scanner.ecosystems says which ecosystem uses which."""

from __future__ import annotations

from scanner.versions import apk, dpkg, golang, maven, nuget, numeric, packagist, pep440, pub, rpm, rubygems, semver
from scanner.versions.base import Scheme

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
