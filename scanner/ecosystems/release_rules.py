"""Release rules of the distributions whose OSV release is not a VERSION_ID prefix: Red Hat's CPE product
streams (`Red Hat:enterprise_linux:8::appstream`, `Red Hat:rhel_eus:8.6::baseos`) and SUSE's and openSUSE's
product names (`SUSE:Linux Enterprise Module for Basesystem 15 SP5`, `openSUSE:Leap 15.5`). Pure.

Each is a `Release` (record.py): `of` says the release an image is in, `applies` which advisory releases
apply to it, both read by `catalog.release_matches` and `distributions.os_ecosystem` only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from scanner.ecosystems.record import Release
from scanner.model.types import OSInfo

# Red Hat's main stream: its advisories apply to every minor release of a major.
MAINLINE = "enterprise_linux"
_MAJOR = re.compile(r"[0-9]{1,9}")
_PRODUCT = re.compile(r"[a-z][a-z0-9_]{0,63}")
_VERSION = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9}){0,2}")


def _major(version: str) -> str:
    head = version.split(".", 1)[0]
    return str(int(head)) if _MAJOR.fullmatch(head) else ""


def cpe_parts(cpe: str) -> tuple[str, str, str]:
    """(vendor, product, version) of an operating system CPE, in the 2.2 URI form
    (`cpe:/o:redhat:enterprise_linux:8::baseos`) or the 2.3 form (`cpe:2.3:o:redhat:…`); empty when it is
    not one. Image content: anything else yields ("", "", "")."""
    parts = cpe.strip().lower().split(":")
    if parts[:2] == ["cpe", "2.3"]:
        del parts[1]
    if len(parts) < 4 or parts[0] != "cpe" or parts[1] not in ("/o", "o"):
        return "", "", ""
    version = parts[4] if len(parts) > 4 and _VERSION.fullmatch(parts[4]) else ""
    product = parts[3] if _PRODUCT.fullmatch(parts[3]) else ""
    return parts[2], product, version


@dataclass(frozen=True)
class RedHatStream(Release):
    """Red Hat: the release is the image's CPE product stream and its version, `enterprise_linux:8` for
    the main stream (major only: RHEL 7 writes `enterprise_linux:7.9`, UBI 8 `enterprise_linux:8`), the
    whole version for the extended-support streams (`rhel_eus:8.6`, `rhel_aus:8.4`, `rhel_e4s:…`,
    `rhel_tus:…`, `rhel_els:…`), which are minor releases kept alive for paying subscribers.

    The CPE is read only when Red Hat wrote it (vendor `redhat`); CentOS (`cpe:/o:centos:centos:7`,
    `cpe:/o:centos:linux:6:GA`) and the rebuilds without an OSV ecosystem of their own are in the main
    stream of their major, taken from their CPE's version or else from VERSION_ID.

    An advisory applies when its product is the image's and, for the main stream, its major is the
    image's (its repository suffix, `::appstream`, `::baseos`, `::server`, `::client`…, is not compared:
    an image may hold packages from any of its stream's repositories); for another stream, when its
    version is the image's. A release-less `Red Hat` advisory never applies to a release-scoped image
    (`unscoped=False`): Red Hat's own records always name a stream, and one that does not could be for
    any product and any major, which is how a RHEL 7 fix came to be reported on CentOS 6.
    """

    unscoped: bool = False

    def of(self, os_info: OSInfo) -> str:
        vendor, product, version = cpe_parts(os_info.cpe)
        if vendor == "redhat" and product and product != MAINLINE:
            return f"{product}:{version}" if version else ""
        major = _major(version) or _major(os_info.version)
        return f"{MAINLINE}:{major}" if major else ""

    def applies(self, advisory: Sequence[str], image: Sequence[str]) -> bool:
        if len(advisory) < 2 or len(image) < 2 or advisory[0] != image[0]:
            return False
        if advisory[0] == MAINLINE:
            major = _major(advisory[1])
            return bool(major) and major == _major(image[1])
        return bool(advisory[1]) and advisory[1] == image[1]


# "Linux Enterprise Server 15 SP5", "… Module for Basesystem 15 SP5", "… Server 15 SP5-LTSS",
# "… Server LTSS Extended Security 12 SP5", "… Server 15" (the first release of 15, SP0).
_SLE = re.compile(r"Linux Enterprise (?!Micro\b).*?\s([0-9]{1,4})(?:\s+SP([0-9]{1,3}))?(?:-[A-Za-z0-9]+)*")


def sle_release(product: str) -> tuple[int, int] | None:
    """(code stream, service pack) of a SUSE Linux Enterprise product or module name without its `SUSE `
    (`Linux Enterprise Module for Basesystem 15 SP5` → (15, 5)); None for SLE Micro, whose numbering is its
    own, and for names that are not SLE products (SUSE Manager's `4.3`, Enterprise Storage)."""
    match = _SLE.fullmatch(product.strip())
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


@dataclass(frozen=True)
class SuseProduct(Release):
    """SUSE Linux Enterprise: the release is the product name as os-release PRETTY_NAME writes it without
    `SUSE ` (`Linux Enterprise Server 15 SP5`), as OSV names it; else made from VERSION_ID (`15.5`).

    An advisory applies when it is for an SLE product or module of the image's code stream and service
    pack: SUSE files base packages under the module that ships them (`Module for Basesystem 15 SP5`),
    never under the server product, so comparing names would miss them. SP4 and SP0 are other releases;
    SLE Micro (numbered 5.x, 6.x) never applies to SLES. Long-term support products of the same service
    pack (`15 SP5-LTSS`) apply: they are the same packages, kept fixed after general support ends.
    """

    unscoped: bool = False

    def of(self, os_info: OSInfo) -> str:
        pretty = os_info.pretty_name.strip()
        if pretty.startswith("SUSE ") and sle_release(pretty[5:]) is not None:
            return pretty[5:]
        major, _, service_pack = os_info.version.partition(".")
        if not _MAJOR.fullmatch(major) or (service_pack and not _MAJOR.fullmatch(service_pack)):
            return ""
        pack = int(service_pack or 0)
        return f"Linux Enterprise Server {int(major)}" + (f" SP{pack}" if pack else "")

    def applies(self, advisory: Sequence[str], image: Sequence[str]) -> bool:
        release = sle_release(":".join(image))
        return release is not None and sle_release(":".join(advisory)) == release


_LEAP_IDS = {"opensuse-leap": "Leap", "opensuse-leap-micro": "Leap Micro"}


@dataclass(frozen=True)
class OpenSuseRelease(Release):
    """openSUSE: the release is the distribution's name after `openSUSE ` in PRETTY_NAME (`Leap 15.5`,
    `Tumbleweed`), as OSV names it, made from the os-release ID and VERSION_ID where they are known. An
    advisory applies to that release only (and to its `NonFree` repository); SUSE Linux Enterprise
    advisories are a different ecosystem and never apply to Leap, though Leap 15 rebuilds SLE sources.
    """

    unscoped: bool = False

    def of(self, os_info: OSInfo) -> str:
        if os_info.id == "opensuse-tumbleweed":
            return "Tumbleweed"
        name = _LEAP_IDS.get(os_info.id)
        if name and _VERSION.fullmatch(os_info.version):
            return f"{name} {os_info.version}"
        pretty = os_info.pretty_name.strip()
        return pretty[len("openSUSE ") :].strip() if pretty.startswith("openSUSE ") else ""

    def applies(self, advisory: Sequence[str], image: Sequence[str]) -> bool:
        release, named = ":".join(image), ":".join(advisory)
        return named in (release, f"{release} NonFree")


# The Amazon Linux AMI (AL1) writes its VERSION_ID as year.month (2017.09, 2018.03); its advisories (`ALAS-`
# ids) are for one release, which Amazon and every feed call 1.
_AMI_VERSION = re.compile(r"20(?:1[0-9]|2[01])\.[0-9]{2}")


@dataclass(frozen=True)
class AmazonRelease(Release):
    """Amazon Linux: the major of VERSION_ID (`2`, `2023`), except the AMI's year.month versions, which are
    release `1` as the ALAS feed names it."""

    parts: int = 1

    def of(self, os_info: OSInfo) -> str:
        return "1" if _AMI_VERSION.fullmatch(os_info.version) else super().of(os_info)
