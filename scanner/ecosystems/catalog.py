"""Every ecosystem record (distributions.py, languages.py) and the lookups the rest of acrguard asks them by:
OSV name, package kind (purl type), package manager name. Pure.

An ecosystem name may carry a release suffix after the first ':' (`Debian:12`, `Alpine:v3.19`,
`Red Hat:enterprise_linux:9::appstream`, `SUSE:Linux Enterprise Server 15 SP5`); a record is found by the
part before it, case-insensitively.
"""

from __future__ import annotations

import functools

from scanner.ecosystems.distributions import DISTRIBUTIONS, OS_PURL_TYPES, os_manager
from scanner.ecosystems.languages import LANGUAGES
from scanner.ecosystems.record import AdvisoryNames, Ecosystem, Manager, Release
from scanner.model.types import Category, OSInfo

ECOSYSTEMS: tuple[Ecosystem, ...] = DISTRIBUTIONS + LANGUAGES

_BY_FOLDED_NAME = {record.name.casefold(): record for record in ECOSYSTEMS}
# Records of one purl type agree on kind and advisory naming (a test checks it): the first stands for all.
_BY_PURL_TYPE = {record.purl_type: record for record in reversed(ECOSYSTEMS)}
# Several records share a manager (apt, dnf…); the first record naming one holds it.
_MANAGERS = {
    manager.name: manager
    for record in reversed(ECOSYSTEMS)
    for manager in reversed((record.manager, *(m for _, m in record.manager_since)))
    if manager is not None
}
OS_KINDS = frozenset(OS_PURL_TYPES)


def base_ecosystem(ecosystem: str) -> str:
    """`Debian:12` → `Debian`; `Ubuntu:22.04:LTS` → `Ubuntu`; `PyPI` → `PyPI`."""
    return ecosystem.split(":", 1)[0]


@functools.lru_cache(maxsize=4096)
def find(ecosystem: str) -> Ecosystem | None:
    """The record of an OSV ecosystem name, with or without its release suffix; None when unknown."""
    return _BY_FOLDED_NAME.get(base_ecosystem(ecosystem).strip().casefold())


def normalise_name(ecosystem: str, name: str) -> str:
    """The key a package name is looked up by in its ecosystem (the name itself where the ecosystem is unknown)."""
    record = find(ecosystem)
    return record.normalise(name) if record is not None else name


def release_matches(advisory_ecosystem: str, image_ecosystem: str) -> bool:
    """Does an advisory for `Debian:12` / `Ubuntu:22.04:LTS` / `Red Hat:enterprise_linux:8::appstream` /
    `SUSE:Linux Enterprise Module for Basesystem 15 SP5` apply to this image's ecosystem? Same base, and
    the ecosystem's release rule (record.Release, release_rules.py) says which advisory releases apply to
    the image's: the same one for most, the same CPE stream and major for Red Hat, the same code stream
    and service pack for SUSE; Ubuntu Pro advisories need Pro."""
    advisory = advisory_ecosystem.split(":")
    image = image_ecosystem.split(":")
    if advisory[0] != image[0]:
        return False
    if len(image) == 1:
        # Language ecosystems have no release, and an image whose release could not be said is matched
        # by its base: that is all there is to go on.
        return True
    record = find(advisory[0])
    release = record.release if record is not None else Release()
    if len(advisory) == 1:
        return release.unscoped
    return release.applies(advisory[1:], image[1:])


def category_of_kind(kind: str) -> Category:
    """`os` for the package kinds of distributions (deb, apk, rpm), `language` for every other."""
    return "os" if kind in OS_KINDS else "language"


def advisory_names(kind: str) -> AdvisoryNames:
    """How advisories name packages of this kind (see record.AdvisoryNames); `name` for an unknown kind."""
    record = _BY_PURL_TYPE.get(kind)
    return record.advisory_names if record is not None else "name"


def advisory_prefixes(kind: Category) -> tuple[str, ...]:
    """How the ids of the distributions' (`os`) or the language ecosystems' own advisory databases start."""
    return tuple(dict.fromkeys(p for record in ECOSYSTEMS if record.kind == kind for p in record.advisory_prefixes))


def manager_for(kind: str, os_info: OSInfo | None) -> Manager | None:
    """The package manager that upgrades a package of this kind in an image of this OS; None when unknown."""
    if kind in OS_KINDS:
        return os_manager(kind, os_info)
    record = _BY_PURL_TYPE.get(kind)
    return record.manager if record is not None else None


def manager_named(name: str) -> Manager | None:
    """The package manager called `name` (`apt`, `dnf`, `pip`…), if a record has it."""
    return _MANAGERS.get(name)


def default_archives() -> tuple[str, ...]:
    """The osv.dev archives `acrguard db update` fetches when not told which."""
    return tuple(dict.fromkeys(archive for record in ECOSYSTEMS for archive in record.archives))
