"""What rules and remediation templates know about the image a finding came from (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scanner.ecosystems.distributions import os_managers
from scanner.image.reference import RegistryReference, parse_reference
from scanner.model.errors import ReferenceError_
from scanner.model.types import BaseImage, Inventory, OSInfo


@dataclass(frozen=True)
class ImageContext:
    """One scanned image, as disable rules match it and remediation templates describe it.

    `registry` is the host (`myacr.azurecr.io`, `docker.io`) and `repository` the path inside it
    (`team/api`, `library/debian`); both are "" for local sources (archives, layouts, directories).
    `package_managers` are the OS package managers the image's OS packages belong to (`apt`, `apk`,
    `dnf`, `yum`, `zypper`, `tdnf`, or `rpm` for an rpm distribution scanner.ecosystems does not know).
    """

    registry: str
    repository: str
    digest: str
    tags: tuple[str, ...]
    os: OSInfo | None
    package_managers: tuple[str, ...]
    reference: str = ""  # the reference as the user gave it, for messages
    base: BaseImage | None = None  # the image it was built on, as far as the image says

    @classmethod
    def from_inventory(cls, inv: Inventory, tags: Iterable[str] = ()) -> ImageContext:
        image = inv.image
        registry = repository = ""
        tag_list = list(tags)
        try:
            ref = parse_reference(image.reference)
        except ReferenceError_:
            ref = None
        if isinstance(ref, RegistryReference):
            registry, repository = ref.registry, ref.repository
            # A reference by digest names no tag; "latest" is only the parser's default, not a fact.
            if ref.tag and not ref.digest and ref.tag not in tag_list:
                tag_list.append(ref.tag)
        kinds = {p.kind for p in inv.packages}
        return cls(
            registry=registry,
            repository=repository,
            digest=image.digest,
            tags=tuple(tag_list),
            os=image.os,
            package_managers=os_managers(image.os, kinds),
            reference=image.reference,
            base=image.base,
        )
