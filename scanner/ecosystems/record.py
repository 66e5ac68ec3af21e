"""The record of one ecosystem (`Ecosystem`), the release rule of a distribution (`Release`) and the package
manager that upgrades its packages (`Manager`): frozen data, read by detectors, matching, feeds and remediation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from scanner.model.types import Category, OSInfo
from scanner.versions.base import Scheme

# How an ecosystem's advisories name a package: by its own name and version ("name"); by the source package
# it was built from and the source's version ("source": Debian and Ubuntu source packages, Alpine origins);
# or by its own name, then by its source package's name, both with its own version ("name+source": rpm).
AdvisoryNames = Literal["name", "source", "name+source"]


@dataclass(frozen=True)
class Manager:
    """A package manager: `name` is what remediation templates see as `manager` (`apt`, `dnf`, `pip`…);
    `upgrade` is the Jinja source of the shell command that upgrades `package` to `version` with it, ""
    when there is none (the remediation text then says what to do in prose).

    Package names and versions come from the scanned image: every one in `upgrade` goes through `|shquote`.
    """

    name: str
    upgrade: str = ""


@dataclass(frozen=True)
class Release:
    """How an image's release is written after a distribution's OSV name (`Debian:12`, `Alpine:v3.19`), and
    which advisory releases apply to it.

    `parts` is how many dot-separated parts of os-release VERSION_ID the release keeps (1: `12` of `12.5`;
    2: `22.04`, `3.19` of `3.19.1`; 0: the ecosystem names no release); `prefix` goes before them (Alpine's
    `v`); a VERSION_ID in `verbatim` is the release as it is (Alpine's `edge`). An advisory release holding a
    part in `excludes` never applies to an image: Ubuntu's `Pro` advisories are for the paid ESM archive.
    `unscoped` says whether an advisory naming no release (`Debian`) applies to an image whose release is
    known; families whose advisories always name one (Red Hat's CPE streams, SUSE's products) say no.

    Families whose release is not a VERSION_ID prefix (Red Hat's CPE stream, SUSE's product names) subclass
    it (scanner/ecosystems/release_rules.py) and override `of` and `applies`.
    """

    parts: int = 0
    prefix: str = ""
    verbatim: frozenset[str] = frozenset()
    excludes: frozenset[str] = frozenset()
    unscoped: bool = True

    def of(self, os_info: OSInfo) -> str:
        """The release an image of this OS is in; "" when none can be said."""
        version_id = os_info.version
        if version_id in self.verbatim:
            return version_id
        kept = ".".join(version_id.split(".")[: self.parts]) if version_id and self.parts else ""
        return self.prefix + kept if kept else ""

    def applies(self, advisory: Sequence[str], image: Sequence[str]) -> bool:
        """Whether an advisory for the release written `advisory` (the parts after the OSV name, as in
        `Ubuntu:22.04:LTS`) applies to an image in release `image` (likewise split, both non-empty)."""
        return not self.excludes.intersection(advisory) and advisory[0] == image[0]


def _same(name: str) -> str:
    return name


@dataclass(frozen=True)
class Ecosystem:
    """Everything acrguard knows about one OSV ecosystem.

    `name` is OSV's (https://ossf.github.io/osv-schema/#defined-ecosystems), without the release suffix an
    advisory may add after the first ':'. `kind` says whether its packages are the operating system's or an
    application's (a finding's `category`). `scheme` orders its versions. `normalise` turns a package name
    into the key advisories are looked up by (PEP 503 for PyPI, lower case where names are case-insensitive).
    `purl_type` is the package URL type of its packages, which is also `Package.kind`; the purl namespace of an
    OS package is the image's os-release ID (distributions.purl_namespace), and a language package's comes
    from its name as the detector reads it (an npm scope, a Maven group, a Go module path).

    Distributions only: `os_ids` are the os-release IDs whose images are in this ecosystem, `release` how
    their VERSION_ID becomes the release, `derivatives` the os-release IDs (a trailing `*` matches any ID
    starting so) of distributions with no OSV ecosystem of their own that ship this one's package manager,
    known by their ID or by an ID_LIKE naming them.

    `manager` upgrades its packages (None: no known tool); `manager_since` lists (first major release,
    manager) where the manager changed between releases, oldest first, and `manager` is then the one for an
    image whose release is unknown. `advisory_names` is how its advisories name packages, `advisory_prefixes`
    how the ids of its own advisory database start (a finding names itself after the record it prefers by
    them), and `archives` the osv.dev archives `acrguard db update` fetches for it by default.
    """

    name: str
    kind: Category
    scheme: Scheme
    purl_type: str
    normalise: Callable[[str], str] = _same
    os_ids: tuple[str, ...] = ()
    release: Release = Release()
    derivatives: tuple[str, ...] = ()
    manager: Manager | None = None
    manager_since: tuple[tuple[int, Manager], ...] = ()
    advisory_names: AdvisoryNames = "name"
    advisory_prefixes: tuple[str, ...] = ()
    archives: tuple[str, ...] = ()

    def release_ecosystem(self, os_info: OSInfo) -> str:
        """The OSV ecosystem of an image of this OS: `Debian:12`, `Red Hat:enterprise_linux:8`, or the bare
        name (`Wolfi`) where the release is unknown or the ecosystem has none."""
        release = self.release.of(os_info)
        return f"{self.name}:{release}" if release else self.name

    def manager_for(self, version_id: str) -> Manager | None:
        """The package manager of an image of this ecosystem with this VERSION_ID."""
        major = _major(version_id)
        if major is not None:
            for first, manager in reversed(self.manager_since):
                if major >= first:
                    return manager
        return self.manager


_MAJOR = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit accepts "²", which int() refuses


def _major(version: str) -> int | None:
    """The major release of an os-release VERSION_ID (image content: hostile until parsed)."""
    head = version.split(".", 1)[0]
    return int(head) if _MAJOR.fullmatch(head) else None
