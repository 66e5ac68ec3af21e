"""Distributions: OSV ecosystem and release from os-release, release matching, purl qualifiers, package managers."""

from __future__ import annotations

import pytest

from scanner.ecosystems.catalog import release_matches
from scanner.ecosystems.distributions import (
    APT,
    DISTRIBUTIONS,
    os_ecosystem,
    os_manager,
    os_managers,
    purl_distro,
    purl_namespace,
)
from scanner.model.types import OSInfo


@pytest.mark.parametrize(
    ("os", "ecosystem"),
    [
        (OSInfo("debian", "12.5"), "Debian:12"),
        (OSInfo("ubuntu", "22.04"), "Ubuntu:22.04"),
        (OSInfo("alpine", "3.19.1"), "Alpine:v3.19"),
        (OSInfo("alpine", "edge"), "Alpine:edge"),
        (OSInfo("alpine"), "Alpine"),
        (OSInfo("rhel", "9.3"), "Red Hat:enterprise_linux:9"),
        (OSInfo("rhel", "8.9", cpe="cpe:/o:redhat:enterprise_linux:8::baseos"), "Red Hat:enterprise_linux:8"),
        (OSInfo("rhel", "7.9", cpe="cpe:/o:redhat:enterprise_linux:7.9:GA:server"), "Red Hat:enterprise_linux:7"),
        (OSInfo("rhel", "8.6", cpe="cpe:/o:redhat:rhel_eus:8.6::baseos"), "Red Hat:rhel_eus:8.6"),
        (OSInfo("rhel", "9.4", cpe="cpe:2.3:o:redhat:enterprise_linux:9:*:*:*:*:*:*:*"), "Red Hat:enterprise_linux:9"),
        (OSInfo("rhel"), "Red Hat"),  # nothing says the release: matched by the base only
        (OSInfo("centos", "7", cpe="cpe:/o:centos:centos:7"), "Red Hat:enterprise_linux:7"),
        (OSInfo("centos", "6.10", cpe="cpe:/o:centos:linux:6:GA"), "Red Hat:enterprise_linux:6"),
        (OSInfo("centos", "7"), "Red Hat:enterprise_linux:7"),
        (OSInfo("scientific", "7.5"), "Red Hat:enterprise_linux:7"),
        (OSInfo("almalinux", "9.4", cpe="cpe:/o:almalinux:almalinux:9::baseos"), "AlmaLinux:9"),
        (OSInfo("rocky", "8.9"), "Rocky Linux:8"),
        (OSInfo("azurelinux", "3.0.20240101"), "Azure Linux:3"),
        (OSInfo("azurelinux", "3.0"), "Azure Linux:3"),
        (OSInfo("mariner", "2.0"), "Azure Linux:2"),
        (OSInfo("amzn", "2"), "Amazon Linux:2"),
        (OSInfo("amzn", "2023"), "Amazon Linux:2023"),
        (OSInfo("ol", "8.9"), "Oracle Linux:8"),
        (OSInfo("photon", "5.0"), "Photon OS:5.0"),
        (
            OSInfo("sles", "15.5", pretty_name="SUSE Linux Enterprise Server 15 SP5"),
            "SUSE:Linux Enterprise Server 15 SP5",
        ),
        (OSInfo("sles", "15.5"), "SUSE:Linux Enterprise Server 15 SP5"),
        (OSInfo("sles", "15"), "SUSE:Linux Enterprise Server 15"),
        (
            OSInfo("sles_sap", "15.5", pretty_name="SUSE Linux Enterprise Server for SAP Applications 15 SP5"),
            "SUSE:Linux Enterprise Server for SAP Applications 15 SP5",
        ),
        (OSInfo("opensuse-leap", "15.5", pretty_name="openSUSE Leap 15.5"), "openSUSE:Leap 15.5"),
        (OSInfo("opensuse-tumbleweed", "20240101"), "openSUSE:Tumbleweed"),
        (OSInfo("opensuse", "42.3", pretty_name="openSUSE Leap 42.3"), "openSUSE:Leap 42.3"),
        (OSInfo("wolfi", "20230201"), "Wolfi"),
        (OSInfo("gentoo", "2.15"), "gentoo"),  # unknown: the os-release ID as is, matching nothing
        (OSInfo(""), ""),
        (None, ""),
    ],
)
def test_os_ecosystem(os: OSInfo | None, ecosystem: str) -> None:
    assert os_ecosystem(os) == ecosystem


def test_release_matching() -> None:
    assert release_matches("Debian:12", "Debian:12")
    assert not release_matches("Debian:11", "Debian:12")
    assert not release_matches("Debian:12", "Ubuntu:12")
    assert release_matches("Red Hat:enterprise_linux:9::appstream", "Red Hat")  # the image's release unknown
    assert release_matches("Debian", "Debian:12")  # an advisory naming no release applies, where allowed
    assert not release_matches("Ubuntu:Pro:FIPS:22.04:LTS", "Ubuntu:22.04")
    assert release_matches("Alpine:edge", "Alpine:edge")


def test_purl_namespace_and_distro() -> None:
    assert (purl_namespace(OSInfo("debian", "12")), purl_distro(OSInfo("debian", "12"))) == ("debian", "debian-12")
    assert (purl_namespace(OSInfo("wolfi")), purl_distro(OSInfo("wolfi"))) == ("wolfi", "wolfi")
    assert (purl_namespace(None), purl_distro(None)) == ("", "")


def test_every_os_release_id_names_one_distribution() -> None:
    ids = [os_id for record in DISTRIBUTIONS for os_id in record.os_ids]
    assert len(ids) == len(set(ids))


def test_deb_and_apk_packages_have_one_manager_whatever_the_distribution() -> None:
    assert os_manager("deb", OSInfo("kali", "2024.1", id_like=("debian",))) is APT
    assert os_manager("deb", None) is APT
    manager = os_manager("apk", OSInfo("wolfi"))
    assert manager is not None and manager.name == "apk"
    assert os_manager("pypi", OSInfo("debian", "12")) is None


@pytest.mark.parametrize(
    ("os", "manager"),
    [
        (OSInfo("rhel", "9.3"), "dnf"),
        (OSInfo("rhel", "7.9"), "yum"),
        (OSInfo("centos", "7"), "yum"),
        (OSInfo("centos", "8"), "dnf"),
        (OSInfo("almalinux", "9.4"), "dnf"),
        (OSInfo("rocky", "8.9"), "dnf"),
        (OSInfo("fedora", "40"), "dnf"),
        (OSInfo("ol", "8.9"), "dnf"),
        (OSInfo("ol", "7.9"), "yum"),
        (OSInfo("sles", "15.5"), "zypper"),
        (OSInfo("opensuse-leap", "15.6"), "zypper"),
        (OSInfo("opensuse-tumbleweed", "20240101"), "zypper"),
        (OSInfo("azurelinux", "3.0"), "tdnf"),
        (OSInfo("mariner", "2.0"), "tdnf"),
        (OSInfo("amzn", "2"), "yum"),
        (OSInfo("amzn", "2023"), "dnf"),
        (OSInfo("mydistro", "1", id_like=("rhel", "fedora")), "dnf"),
        (OSInfo("mydistro", "1", id_like=("suse",)), "zypper"),
        (OSInfo("mydistro", "1"), "rpm"),
        (None, "rpm"),
    ],
)
def test_rpm_manager_by_distribution(os: OSInfo | None, manager: str) -> None:
    found = os_manager("rpm", os)
    assert found is not None and found.name == manager


def test_package_managers_from_kinds() -> None:
    assert os_managers(OSInfo("debian", "12"), ["deb", "pypi"]) == ("apt",)
    assert os_managers(OSInfo("alpine", "3.19"), {"apk", "npm"}) == ("apk",)
    assert os_managers(OSInfo("amzn", "2023"), ["rpm"]) == ("dnf",)
    assert os_managers(None, ["pypi"]) == ()


@pytest.mark.parametrize("version_id", ["²", "9" * 5000, "٣.1", "-1"])
def test_a_hostile_version_id_gives_the_default_manager(version_id: str) -> None:
    """VERSION_ID is image content: a superscript digit, a huge number or a non-ASCII digit picks the
    distribution's default manager instead of failing the scan."""
    unversioned = os_manager("rpm", OSInfo("rhel"))
    assert unversioned is not None
    assert os_manager("rpm", OSInfo("rhel", version_id)) is unversioned
