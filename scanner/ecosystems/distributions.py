"""The distributions: their package managers, one `Ecosystem` record each, and what an image's os-release says
about them (OSV ecosystem and release, purl namespace and distro qualifier, package manager). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from scanner.ecosystems.record import AdvisoryNames, Ecosystem, Manager, Release
from scanner.ecosystems.release_rules import AmazonRelease, OpenSuseRelease, RedHatStream, SuseProduct
from scanner.model.types import OSInfo
from scanner.versions import schemes
from scanner.versions.base import Scheme

APT = Manager(
    "apt", "apt-get update && apt-get install -y --only-upgrade {{ (package.name ~ '=' ~ version) | shquote }}"
)
APK = Manager("apk", "apk add --upgrade {{ (package.name ~ '>=' ~ version) | shquote }}")
DNF = Manager("dnf", "dnf upgrade -y {{ (package.name ~ '-' ~ version) | shquote }}")
YUM = Manager("yum", "yum update -y {{ (package.name ~ '-' ~ version) | shquote }}")
# zypper and tdnf take no version: they install the newest, which the remediation text asks to check.
ZYPPER = Manager("zypper", "zypper --non-interactive update {{ package.name | shquote }}")
TDNF = Manager("tdnf", "tdnf update -y {{ package.name | shquote }}")

# Red Hat and its rebuilds shipped yum only up to release 7.
_YUM_THEN_DNF = ((0, YUM), (8, DNF))
MAJOR = Release(parts=1)
MINOR = Release(parts=2)
NO_RELEASE = Release()
# RHEL and the rebuilds that have no OSV ecosystem of their own: their advisories are Red Hat's, for the
# main stream of their major (release_rules.RedHatStream).
_RED_HAT_IDS = ("rhel", "centos", "circle", "eurolinux", "navix", "scientific")

# What all distributions of one package type share: the version scheme and how advisories name packages.
_TYPES: dict[str, tuple[Scheme, AdvisoryNames]] = {
    "deb": (schemes.DPKG, "source"),
    "apk": (schemes.APK, "source"),
    "rpm": (schemes.RPM, "name+source"),
}


def _distribution(
    name: str,
    purl_type: str,
    os_ids: tuple[str, ...],
    release: Release,
    manager: Manager | None,
    *,
    since: tuple[tuple[int, Manager], ...] = (),
    derivatives: tuple[str, ...] = (),
    prefixes: tuple[str, ...] = (),
    fetched: bool = False,
) -> Ecosystem:
    scheme, names = _TYPES[purl_type]
    return Ecosystem(
        name=name,
        kind="os",
        scheme=scheme,
        purl_type=purl_type,
        os_ids=os_ids,
        release=release,
        derivatives=derivatives,
        manager=manager,
        manager_since=since,
        advisory_names=names,
        advisory_prefixes=prefixes,
        archives=(name,) if fetched else (),
    )


# The fetched ones in the order `acrguard db update` fetches their archives. openEuler and Mageia have
# advisories and a version scheme, but no os-release ID maps to them yet.
DISTRIBUTIONS: tuple[Ecosystem, ...] = (
    _distribution(
        "Debian", "deb", ("debian",), MAJOR, APT, prefixes=("DSA-", "DLA-", "DTSA-", "DEBIAN-"), fetched=True
    ),
    _distribution(
        "Ubuntu", "deb", ("ubuntu",), Release(parts=2, excludes=frozenset({"Pro"})), APT,
        prefixes=("USN-", "UBUNTU-"), fetched=True,
    ),
    _distribution(
        "Alpine", "apk", ("alpine",), Release(parts=2, prefix="v", verbatim=frozenset({"edge"})), APK,
        prefixes=("ALPINE-",), fetched=True,
    ),
    _distribution(
        "AlmaLinux", "rpm", ("almalinux",), MAJOR, DNF, derivatives=("almalinux",),
        prefixes=("ALSA-", "ALBA-", "ALEA-"), fetched=True,
    ),
    _distribution(
        "Rocky Linux", "rpm", ("rocky",), MAJOR, DNF, derivatives=("rocky",), prefixes=("RLSA-", "RXSA-"),
        fetched=True,
    ),
    _distribution(
        "Red Hat", "rpm", _RED_HAT_IDS, RedHatStream(), DNF, since=_YUM_THEN_DNF, derivatives=_RED_HAT_IDS,
        prefixes=("RHSA-", "RHBA-", "RHEA-"), fetched=True,
    ),
    _distribution(
        "SUSE", "rpm", ("sles", "sled", "sles_sap"), SuseProduct(), ZYPPER, derivatives=("sle*", "suse*"),
        prefixes=("SUSE-",), fetched=True,
    ),
    _distribution(
        "openSUSE", "rpm", ("opensuse-leap", "opensuse-leap-micro", "opensuse-tumbleweed", "opensuse"),
        OpenSuseRelease(), ZYPPER, derivatives=("opensuse*",), prefixes=("openSUSE-",), fetched=True,
    ),
    # OSV names CBL-Mariner and its successor Azure Linux one ecosystem, by major: `Azure Linux:2` is
    # CBL-Mariner 2.0 (AZL- records, from microsoft/AzureLinuxVulnerabilityData).
    _distribution(
        "Azure Linux", "rpm", ("azurelinux", "mariner"), Release(parts=1, unscoped=False), TDNF, prefixes=("AZL-",),
        fetched=True,
    ),
    _distribution("Wolfi", "apk", ("wolfi",), NO_RELEASE, APK, prefixes=("CGA-",), fetched=True),
    _distribution("Chainguard", "apk", ("chainguard",), NO_RELEASE, APK, prefixes=("CGA-",), fetched=True),
    _distribution("MinimOS", "apk", (), NO_RELEASE, APK),
    _distribution("Fedora", "rpm", ("fedora",), MAJOR, DNF, derivatives=("fedora",)),
    _distribution(
        "Oracle Linux", "rpm", ("ol",), MAJOR, DNF, since=_YUM_THEN_DNF, derivatives=("ol",), prefixes=("ELSA-",)
    ),
    # Amazon Linux 2 (and the 2018.03 AMI) use yum; 2023 moved to dnf.
    _distribution(
        "Amazon Linux", "rpm", ("amzn",), AmazonRelease(), YUM, since=((2022, DNF),),
        prefixes=("ALAS-", "ALAS2-", "ALAS2023-"),
    ),
    _distribution("Photon OS", "rpm", ("photon",), MINOR, TDNF),
    _distribution("openEuler", "rpm", (), NO_RELEASE, None),
    _distribution("Mageia", "rpm", (), NO_RELEASE, None),
)  # fmt: skip

_BY_OS_ID = {os_id: record for record in DISTRIBUTIONS for os_id in record.os_ids}
# The OS package types, in the order image contexts list their managers.
OS_PURL_TYPES: tuple[str, ...] = tuple(dict.fromkeys(record.purl_type for record in DISTRIBUTIONS))


def distribution(os_info: OSInfo | None) -> Ecosystem | None:
    """The record of the distribution whose os-release ID this is, if acrguard knows it."""
    return _BY_OS_ID.get(os_info.id) if os_info is not None else None


def os_ecosystem(os_info: OSInfo | None) -> str:
    """OSV ecosystem for packages of this OS: `Debian:12`, `Ubuntu:22.04`, `Alpine:v3.19`…

    Unknown distributions give their os-release ID as is, so nothing is silently matched against the
    wrong distribution's advisories later.
    """
    if os_info is None or not os_info.id:
        return ""
    record = distribution(os_info)
    return os_info.id if record is None else record.release_ecosystem(os_info)


def purl_namespace(os_info: OSInfo | None) -> str:
    """purl namespace for OS packages: the os-release ID (debian, ubuntu, alpine, almalinux…)."""
    return os_info.id if os_info and os_info.id else ""


def purl_distro(os_info: OSInfo | None) -> str:
    """purl `distro` qualifier, e.g. `debian-12`, `alpine-3.19.1`."""
    if os_info is None or not os_info.id:
        return ""
    return f"{os_info.id}-{os_info.version}" if os_info.version else os_info.id


def os_manager(purl_type: str, os_info: OSInfo | None) -> Manager | None:
    """The package manager that upgrades OS packages of this purl type (`deb`, `apk`, `rpm`) in an image of
    this distribution; None when no distribution has packages of this type.

    The distribution's own, for its release; else, for a distribution without a record, the one of the
    distribution it derives from (by its ID, then by an ID_LIKE naming it); else the one every distribution
    of the type shares (`apt`, `apk`), or the type's own low-level tool where they differ (`rpm`).
    """
    records = [r for r in DISTRIBUTIONS if r.purl_type == purl_type]
    if not records:
        return None
    if os_info is not None:
        ident = os_info.id.lower()
        for record in records:
            if ident in record.os_ids:
                return record.manager_for(os_info.version)
        parent = _parent(records, (ident,)) or _parent(records, [i.lower() for i in os_info.id_like])
        if parent is not None:
            return parent.manager
    shared = {r.manager for r in records if r.manager is not None}
    return shared.pop() if len(shared) == 1 else Manager(purl_type)


def _parent(records: Sequence[Ecosystem], ids: Sequence[str]) -> Ecosystem | None:
    """The distribution one of `ids` derives from: exact names first, then `prefix*` patterns."""
    for record in records:
        if any(p in ids for p in record.derivatives if not p.endswith("*")):
            return record
    for record in records:
        if any(i.startswith(p[:-1]) for p in record.derivatives if p.endswith("*") for i in ids):
            return record
    return None


def os_managers(os_info: OSInfo | None, kinds: Iterable[str]) -> tuple[str, ...]:
    """Names of the OS package managers of the OS package kinds found (`deb`, `apk`, `rpm`), in a stable order."""
    found = set(kinds)
    managers = (os_manager(t, os_info) for t in OS_PURL_TYPES if t in found)
    return tuple(m.name for m in managers if m is not None)
