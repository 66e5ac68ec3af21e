"""Release rules of the rpm families: Red Hat's CPE streams, SUSE's and openSUSE's product names, Azure Linux
and the rebuilds by major, through `catalog.release_matches` (advisory ecosystem, image ecosystem)."""

from __future__ import annotations

import pytest

from scanner.ecosystems.catalog import advisory_prefixes, release_matches
from scanner.ecosystems.distributions import os_ecosystem
from scanner.ecosystems.release_rules import cpe_parts, sle_release
from scanner.model.types import OSInfo


@pytest.mark.parametrize(
    ("advisory", "image", "applies"),
    [
        # Main stream: any repository of the image's major.
        ("Red Hat:enterprise_linux:8::appstream", "Red Hat:enterprise_linux:8", True),
        ("Red Hat:enterprise_linux:8::baseos", "Red Hat:enterprise_linux:8", True),
        ("Red Hat:enterprise_linux:8::crb", "Red Hat:enterprise_linux:8", True),
        ("Red Hat:enterprise_linux:7::server", "Red Hat:enterprise_linux:7", True),
        ("Red Hat:enterprise_linux:7::client", "Red Hat:enterprise_linux:7", True),
        ("Red Hat:enterprise_linux:10.0", "Red Hat:enterprise_linux:10", True),
        # Another major never.
        ("Red Hat:enterprise_linux:7::server", "Red Hat:enterprise_linux:6", False),
        ("Red Hat:enterprise_linux:6::server", "Red Hat:enterprise_linux:7", False),
        ("Red Hat:enterprise_linux:9::baseos", "Red Hat:enterprise_linux:8", False),
        # Extended-support streams only on an image of that stream and minor.
        ("Red Hat:rhel_eus:8.6::baseos", "Red Hat:enterprise_linux:8", False),
        ("Red Hat:rhel_aus:8.4::appstream", "Red Hat:enterprise_linux:8", False),
        ("Red Hat:rhel_eus:8.6::baseos", "Red Hat:rhel_eus:8.6", True),
        ("Red Hat:rhel_eus:8.4::baseos", "Red Hat:rhel_eus:8.6", False),
        ("Red Hat:enterprise_linux:8::baseos", "Red Hat:rhel_eus:8.6", False),
        # Other products, and a record naming no stream, never on a release-scoped image.
        ("Red Hat:openshift:4.14::el8", "Red Hat:enterprise_linux:8", False),
        ("Red Hat:rhel_software_collections:3::el7", "Red Hat:enterprise_linux:7", False),
        ("Red Hat", "Red Hat:enterprise_linux:8", False),
        ("Red Hat:enterprise_linux", "Red Hat:enterprise_linux:8", False),
        # An image whose release is unknown is matched by the base only.
        ("Red Hat:enterprise_linux:9::appstream", "Red Hat", True),
        # Rebuilds are their own ecosystems.
        ("Red Hat:enterprise_linux:9::baseos", "AlmaLinux:9", False),
        ("AlmaLinux:9", "Red Hat:enterprise_linux:9", False),
        ("Red Hat:enterprise_linux:9::baseos", "Rocky Linux:9", False),
        ("Rocky Linux:9", "AlmaLinux:9", False),
        ("AlmaLinux:9", "AlmaLinux:9", True),
        ("AlmaLinux:8", "AlmaLinux:9", False),
        ("Rocky Linux:8", "Rocky Linux:8", True),
        ("Rocky Linux:9", "Rocky Linux:8", False),
    ],
)
def test_red_hat_streams_and_rebuilds(advisory: str, image: str, applies: bool) -> None:
    assert release_matches(advisory, image) is applies


@pytest.mark.parametrize(
    ("advisory", "image", "applies"),
    [
        ("SUSE:Linux Enterprise Server 15 SP5", "SUSE:Linux Enterprise Server 15 SP5", True),
        ("SUSE:Linux Enterprise Module for Basesystem 15 SP5", "SUSE:Linux Enterprise Server 15 SP5", True),
        ("SUSE:Linux Enterprise Server for SAP Applications 15 SP5", "SUSE:Linux Enterprise Server 15 SP5", True),
        ("SUSE:Linux Enterprise Desktop 15 SP5", "SUSE:Linux Enterprise Server 15 SP5", True),
        ("SUSE:Linux Enterprise Module for Python 3 15 SP5", "SUSE:Linux Enterprise Server 15 SP5", True),
        ("SUSE:Linux Enterprise Server 15 SP5-LTSS", "SUSE:Linux Enterprise Server 15 SP5", True),
        ("SUSE:Linux Enterprise High Performance Computing 15 SP5-ESPOS", "SUSE:Linux Enterprise Server 15 SP5", True),
        ("SUSE:Linux Enterprise Server 15 SP4", "SUSE:Linux Enterprise Server 15 SP5", False),
        ("SUSE:Linux Enterprise Module for Basesystem 15 SP4", "SUSE:Linux Enterprise Server 15 SP5", False),
        ("SUSE:Linux Enterprise Server 15", "SUSE:Linux Enterprise Server 15 SP5", False),
        ("SUSE:Linux Enterprise Server 15", "SUSE:Linux Enterprise Server 15", True),
        ("SUSE:Linux Enterprise Server 12 SP5", "SUSE:Linux Enterprise Server 15 SP5", False),
        ("SUSE:Linux Enterprise Micro 5.5", "SUSE:Linux Enterprise Server 15 SP5", False),
        ("SUSE:Linux Enterprise Module for SUSE Manager Server 4.3", "SUSE:Linux Enterprise Server 15 SP5", False),
        ("SUSE", "SUSE:Linux Enterprise Server 15 SP5", False),
        # SLES and openSUSE are kept apart.
        ("openSUSE:Leap 15.5", "SUSE:Linux Enterprise Server 15 SP5", False),
        ("SUSE:Linux Enterprise Server 15 SP5", "openSUSE:Leap 15.5", False),
        ("openSUSE:Leap 15.5", "openSUSE:Leap 15.5", True),
        ("openSUSE:Leap 15.5 NonFree", "openSUSE:Leap 15.5", True),
        ("openSUSE:Leap 15.4", "openSUSE:Leap 15.5", False),
        ("openSUSE:Leap Micro 5.5", "openSUSE:Leap 15.5", False),
        ("openSUSE:Tumbleweed", "openSUSE:Leap 15.5", False),
        ("openSUSE:Tumbleweed", "openSUSE:Tumbleweed", True),
        ("openSUSE:Leap 15.5", "openSUSE:Tumbleweed", False),
        ("openSUSE", "openSUSE:Leap 15.5", False),
    ],
)
def test_suse_products_and_opensuse_releases(advisory: str, image: str, applies: bool) -> None:
    assert release_matches(advisory, image) is applies


@pytest.mark.parametrize(
    ("advisory", "image", "applies"),
    [
        ("Azure Linux:3", "Azure Linux:3", True),
        ("Azure Linux:2", "Azure Linux:2", True),
        ("Azure Linux:2", "Azure Linux:3", False),
        ("Azure Linux:3", "Azure Linux:2", False),
        ("Azure Linux", "Azure Linux:3", False),
        ("Amazon Linux:2", "Amazon Linux:2", True),
        ("Amazon Linux:2023", "Amazon Linux:2", False),
        ("Oracle Linux:8", "Oracle Linux:8", True),
        ("Oracle Linux:7", "Oracle Linux:8", False),
        ("Debian", "Debian:12", True),  # families whose records may name no release keep matching them
    ],
)
def test_azure_linux_and_the_other_rpm_families_by_major(advisory: str, image: str, applies: bool) -> None:
    assert release_matches(advisory, image) is applies


@pytest.mark.parametrize(
    ("product", "release"),
    [
        ("Linux Enterprise Server 15 SP5", (15, 5)),
        ("Linux Enterprise Module for Basesystem 15 SP5", (15, 5)),
        ("Linux Enterprise Server LTSS Extended Security 12 SP5", (12, 5)),
        ("Linux Enterprise Server 15", (15, 0)),
        ("Linux Enterprise Micro 5.5", None),
        ("Linux Enterprise Module for SUSE Manager Server 4.3", None),
        ("Enterprise Storage 7", None),
        ("Linux Enterprise Server 15 SP5 " + "x" * 100, None),
    ],
)
def test_sle_release(product: str, release: tuple[int, int] | None) -> None:
    assert sle_release(product) == release


@pytest.mark.parametrize(
    ("cpe", "parts"),
    [
        ("cpe:/o:redhat:enterprise_linux:8::baseos", ("redhat", "enterprise_linux", "8")),
        ("cpe:/o:redhat:enterprise_linux:7.9:GA:server", ("redhat", "enterprise_linux", "7.9")),
        ("cpe:2.3:o:amazon:amazon_linux:2", ("amazon", "amazon_linux", "2")),
        ("cpe:/o:centos:linux:6:GA", ("centos", "linux", "6")),
        ("cpe:/a:redhat:enterprise_linux:9", ("", "", "")),  # an application CPE names no OS
        ("cpe:/o:redhat:Enterprise Linux!:9", ("redhat", "", "9")),
        ("cpe:/o:redhat:enterprise_linux:9.x.y", ("redhat", "enterprise_linux", "")),
        ("not a cpe", ("", "", "")),
        ("", ("", "", "")),
    ],
)
def test_cpe_parts_of_image_content(cpe: str, parts: tuple[str, str, str]) -> None:
    assert cpe_parts(cpe) == parts


def test_distribution_advisory_prefixes_include_amazon_and_azure_linux() -> None:
    prefixes = set(advisory_prefixes("os"))
    assert {"ALAS-", "ALAS2-", "ALAS2023-", "AZL-", "RHSA-", "SUSE-", "openSUSE-", "ELSA-"} <= prefixes


@pytest.mark.parametrize(
    ("version_id", "ecosystem"),
    [
        ("2", "Amazon Linux:2"),
        ("2023", "Amazon Linux:2023"),
        ("2018.03", "Amazon Linux:1"),
        ("2017.09", "Amazon Linux:1"),
    ],
)
def test_amazon_linux_releases_as_the_alas_feed_names_them(version_id: str, ecosystem: str) -> None:
    # The AMI (AL1) says year.month; its ALAS- advisories are release 1.
    assert os_ecosystem(OSInfo("amzn", version_id)) == ecosystem
