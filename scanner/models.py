"""Pure data: what an inventory is made of. Frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["Scanned", "Unsupported"]


@dataclass(frozen=True)
class OSInfo:
    """The distribution an image is built on, as os-release (or its fallbacks) says.

    `id` is os-release ID (lower case: debian, ubuntu, alpine, rhel, almalinux, azurelinux, mariner…);
    `version` is VERSION_ID (or the best fallback); `codename` is VERSION_CODENAME where known.
    """

    id: str
    version: str = ""
    codename: str = ""
    name: str = ""
    pretty_name: str = ""
    id_like: tuple[str, ...] = ()
    source: str = ""  # the file it came from, e.g. /etc/os-release


@dataclass(frozen=True)
class LayerInfo:
    """One layer of an image, in order from the base (index 0)."""

    index: int
    digest: str  # blob digest as the manifest names it (compressed), or diff_id where no blob exists
    diff_id: str = ""
    media_type: str = ""
    size: int = 0
    created_by: str = ""


@dataclass(frozen=True)
class RawPackage:
    """A package as a detector reports it: facts read from the image, before the orchestrator adds the
    layer that introduced it.

    `ecosystem` uses OSV's vocabulary (`Debian:12`, `Ubuntu:22.04`, `Alpine:v3.19`, `AlmaLinux:9`,
    `PyPI`, `npm`); `purl` is a package URL string; `locations` are absolute paths inside the image of
    the files that declare the package (the package database or metadata file).
    """

    name: str
    version: str
    ecosystem: str
    purl: str
    source_name: str = ""
    source_version: str = ""
    arch: str = ""
    locations: tuple[str, ...] = ()
    kind: str = ""  # deb, apk, rpm, pypi, npm… (the purl type)
    # Extra facts a detector knows (epoch, release, modularity label, licence…); string values only.
    metadata: tuple[tuple[str, str], ...] = ()
    # Files the package owns (OS package managers only), absolute paths; used to mark language
    # packages the OS package manager installed. Not serialised.
    owned_files: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def key(self) -> tuple[str, str, str, str, tuple[str, ...]]:
        """Identity of a package across layers (ecosystem left out: the OS may be identified later)."""
        return (self.kind, self.name, self.version, self.arch, self.locations)


@dataclass(frozen=True)
class Package:
    """A package in an image's final filesystem, with the layer that introduced it."""

    name: str
    version: str
    ecosystem: str
    purl: str
    source_name: str
    source_version: str
    arch: str
    locations: tuple[str, ...]
    kind: str
    detector: str  # "name@version" of the detector plugin
    layer: LayerInfo | None
    os_owned: bool = False  # a language package whose files the OS package manager owns
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Warning_:
    """A contained problem: a member skipped, a file not parsed. Partial failure is data."""

    where: str  # layer digest or file path
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class ImageInfo:
    reference: str
    digest: str  # manifest digest ("" where the source has none, e.g. dir:)
    config_digest: str
    platform: str  # os/arch[/variant]
    os: OSInfo | None
    layers: tuple[LayerInfo, ...] = ()
    media_type: str = ""
    index_digest: str = ""  # digest of the index this image was picked from, if any


@dataclass(frozen=True)
class Inventory:
    image: ImageInfo
    status: Status
    reason: str
    packages: tuple[Package, ...]
    warnings: tuple[Warning_, ...] = ()
