"""What rules and remediation templates know about the image a finding came from (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scanner.image.reference import RegistryReference, parse_reference
from scanner.model.errors import ReferenceError_
from scanner.model.types import Inventory, OSInfo


@dataclass(frozen=True)
class ImageContext:
    """One scanned image, as disable rules match it and remediation templates describe it.

    `registry` is the host (`myacr.azurecr.io`, `docker.io`) and `repository` the path inside it
    (`team/api`, `library/debian`); both are "" for local sources (archives, layouts, directories).
    `package_managers` are the OS package managers the image's OS packages belong to (`apt`, `apk`,
    `dnf`, `yum`, `zypper`, `tdnf`, or `rpm` for an rpm distribution this table does not know).
    """

    registry: str
    repository: str
    digest: str
    tags: tuple[str, ...]
    os: OSInfo | None
    package_managers: tuple[str, ...]
    reference: str = ""  # the reference as the user gave it, for messages

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
            package_managers=package_managers(image.os, kinds),
            reference=image.reference,
        )


# os-release IDs of rpm distributions → the package manager their images ship.
_DNF = frozenset({"rhel", "centos", "almalinux", "rocky", "fedora", "ol", "circle", "eurolinux", "navix"})
_ZYPPER_PREFIXES = ("sles", "sled", "sle", "opensuse", "suse")
_TDNF = frozenset({"azurelinux", "mariner", "photon"})


def rpm_manager(os: OSInfo | None) -> str:
    """The rpm front end an image of this distribution uses; `rpm` when the distribution is unknown."""
    if os is None:
        return "rpm"
    ident = os.id.lower()
    major = _major(os.version)
    if ident == "amzn":
        # Amazon Linux 2 (and the 2018.03 AMI) use yum; 2023 moved to dnf.
        return "dnf" if major is not None and major >= 2022 else "yum"
    if ident in _DNF:
        # RHEL/CentOS/Oracle Linux 7 and older ship yum only.
        return "yum" if ident in ("rhel", "centos", "ol") and major is not None and major <= 7 else "dnf"
    if ident.startswith(_ZYPPER_PREFIXES):
        return "zypper"
    if ident in _TDNF:
        return "tdnf"
    # A derivative names its parent in ID_LIKE ("rhel fedora", "suse opensuse").
    like = {i.lower() for i in os.id_like}
    if like & _DNF:
        return "dnf"
    if any(i.startswith(_ZYPPER_PREFIXES) for i in like):
        return "zypper"
    return "rpm"


def package_managers(os: OSInfo | None, kinds: Iterable[str]) -> tuple[str, ...]:
    """OS package managers for the OS package kinds found (`deb`, `apk`, `rpm`), in a stable order."""
    found = set(kinds)
    out: list[str] = []
    if "deb" in found:
        out.append("apt")
    if "apk" in found:
        out.append("apk")
    if "rpm" in found:
        out.append(rpm_manager(os))
    return tuple(out)


def _major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None
