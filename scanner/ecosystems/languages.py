"""The language ecosystems: one `Ecosystem` record each, with its package manager and upgrade command. Pure."""

from __future__ import annotations

import re

from scanner.ecosystems.record import Ecosystem, Manager
from scanner.versions import schemes


def pep503_name(name: str) -> str:
    """PEP 503 normalised project name (`Foo.Bar_baz` -> `foo-bar-baz`): how PyPI, and the purl spec, name a
    project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _lower(name: str) -> str:
    return name.lower()


PYPI = Ecosystem(
    name="PyPI",
    kind="language",
    scheme=schemes.PEP440,
    purl_type="pypi",
    normalise=pep503_name,
    manager=Manager("pip", "pip install {{ (package.name ~ '>=' ~ version) | shquote }}"),
    advisory_prefixes=("PYSEC-",),
    archives=("PyPI",),
)
NPM = Ecosystem(
    name="npm",
    kind="language",
    scheme=schemes.NPM,
    purl_type="npm",
    manager=Manager("npm", "npm install {{ (package.name ~ '@' ~ version) | shquote }}"),
    archives=("npm",),
)
GO = Ecosystem(
    name="Go",
    kind="language",
    scheme=schemes.GO,
    purl_type="golang",
    # No command for `stdlib`: the standard library comes with the toolchain (the text says to rebuild).
    # OSV writes Go versions without the "v" that module queries need.
    manager=Manager(
        "go",
        "{% if package.name != 'stdlib' %}"
        "go get {{ (package.name ~ '@' ~ (version if version.startswith('v') else 'v' ~ version)) | shquote }}"
        " && go mod tidy{% endif %}",
    ),
    advisory_prefixes=("GO-",),
    archives=("Go",),
)
MAVEN = Ecosystem(
    name="Maven",
    kind="language",
    scheme=schemes.MAVEN,
    purl_type="maven",
    # The versions plugin wants groupId:artifactId; a jar with no group is matched on its artifact alone.
    manager=Manager(
        "maven",
        "mvn versions:use-dep-version"
        " {{ ('-Dincludes=' ~ (package.name if ':' in package.name else '*:' ~ package.name)) | shquote }}"
        " {{ ('-DdepVersion=' ~ version) | shquote }} -DforceVersion=true",
    ),
    archives=("Maven",),
)
RUBYGEMS = Ecosystem(
    name="RubyGems",
    kind="language",
    scheme=schemes.RUBYGEMS,
    purl_type="gem",
    manager=Manager("gem"),
    archives=("RubyGems",),
)
NUGET = Ecosystem(
    name="NuGet",
    kind="language",
    scheme=schemes.NUGET,
    purl_type="nuget",
    normalise=_lower,
    manager=Manager("dotnet"),
    archives=("NuGet",),
)
CRATES_IO = Ecosystem(
    name="crates.io",
    kind="language",
    scheme=schemes.SEMVER_STRICT,
    purl_type="cargo",
    manager=Manager("cargo"),
    advisory_prefixes=("RUSTSEC-",),
    archives=("crates.io",),
)
PACKAGIST = Ecosystem(
    name="Packagist",
    kind="language",
    scheme=schemes.PACKAGIST,
    purl_type="composer",
    normalise=_lower,
    manager=Manager("composer"),
    archives=("Packagist",),
)
HEX = Ecosystem(name="Hex", kind="language", scheme=schemes.SEMVER_STRICT, purl_type="hex")
PUB = Ecosystem(name="Pub", kind="language", scheme=schemes.PUB, purl_type="pub")
CRAN = Ecosystem(name="CRAN", kind="language", scheme=schemes.CRAN, purl_type="cran")
HACKAGE = Ecosystem(name="Hackage", kind="language", scheme=schemes.HACKAGE, purl_type="hackage", normalise=_lower)

# The fetched ones in the order `acrguard db update` fetches their archives (after the distributions').
LANGUAGES: tuple[Ecosystem, ...] = (
    PYPI,
    NPM,
    GO,
    MAVEN,
    RUBYGEMS,
    NUGET,
    CRATES_IO,
    PACKAGIST,
    HEX,
    PUB,
    CRAN,
    HACKAGE,
)
