"""Every rpm distribution matched against its own release only: images built with real rpm tooling and the
distributions' real release files (tests/fixtures/os/rpm-release), scanned with `acrguard scan` against a
database `acrguard db import` made from the advisories in tests/fixtures/rpm-advisories.

Each case names the image, the packages installed and the findings expected: the advisory of the image's
own release or stream (id, fixed version, CVEs), and nothing from another release, stream or distribution
whose fixed version would otherwise be above the installed one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest

from scanner.assess.findings import find_vulnerabilities
from scanner.cli.main import main
from scanner.model.types import Package
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.rpmimages import Rpm, rpm_image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RELEASES = FIXTURES / "os" / "rpm-release"
ADVISORIES = FIXTURES / "rpm-advisories"


class Expected(NamedTuple):
    package: str
    id: str
    fixed: str
    cves: frozenset[str]


class Case(NamedTuple):
    release: str  # folder under tests/fixtures/os/rpm-release
    packages: tuple[Rpm, ...]
    ecosystem: str  # of the image's packages
    found: frozenset[Expected]  # exactly these (package, id) findings


def _found(package: str, vuln_id: str, fixed: str, *cves: str) -> Expected:
    return Expected(package, vuln_id, fixed, frozenset(cves))


RHEL7_OPENSSL = _found("openssl-libs", "RHSA-2019:2304", "1:1.0.2k-19.el7", "CVE-2018-0734", "CVE-2019-1559")
RHEL9_OPENSSL = _found("openssl-libs", "RHSA-2022:7288", "1:3.0.1-43.el9_0", "CVE-2022-3602", "CVE-2022-3786")
OPENSSL_EL9 = (
    Rpm("openssl-libs", "3.0.1", "41.el9_0", epoch=1, source="openssl"),
    Rpm("openssl", "3.0.1", "41.el9_0", epoch=1, source="openssl"),
)
HELM_MIRROR = (Rpm("helm-mirror", "0.2.0", "1.1"),)
STRONGSWAN = (
    Rpm("strongswan", "5.6.0", "lp151.4.2.1"),
    Rpm("strongswan-ipsec", "5.6.0", "lp151.4.2.1", source="strongswan"),
)
# openssl-3 as SLE 15 SP5 and Leap 15.5 ship it (one build for both), a build before SUSE-SU-2023:2620-1.
OPENSSL3_SP5 = (
    Rpm("libopenssl3", "3.0.8", "150500.3.1", source="openssl-3"),
    Rpm("openssl-3", "3.0.8", "150500.3.1"),
)
# gitui from Leap 15.5's backports (bp155), a build before openSUSE-SU-2024:0135-1.
GITUI = (Rpm("gitui", "0.26.1", "bp155.1.1"),)
SLE15SP5_OPENSSL = frozenset(
    _found(name, "SUSE-SU-2023:2620-1", "3.0.8-150500.5.3.1", "CVE-2023-1255", "CVE-2023-2650")
    for name in ("libopenssl3", "openssl-3")
)

CASES: dict[str, Case] = {
    # CentOS 6.10: no os-release; centos-release names it, system-release-cpe scopes it to enterprise_linux:6.
    # openssl 1.0.1e-15.el6 is below both the RHEL 6 Heartbleed fix and RHEL 7's 1:1.0.2k-19.el7: only the
    # RHEL 6 one applies (the RHEL 7 erratum was reported here, with its fixed version and CVEs, before).
    "centos6": Case(
        "centos6",
        (Rpm("openssl", "1.0.1e", "15.el6"),),
        "Red Hat:enterprise_linux:6",
        frozenset({_found("openssl", "RHSA-2014:0376", "0:1.0.1e-16.el6_5.7", "CVE-2014-0160")}),
    ),
    # RHEL 7.3 (CPE enterprise_linux:7.3:GA:server): the RHEL 7 erratum, not RHEL 9's (fixed 1:3.0.1-43,
    # above the installed 1:1.0.2k) nor RHEL 6's.
    "rhel7": Case(
        "rhel7",
        (Rpm("openssl-libs", "1.0.2k", "16.el7", epoch=1, source="openssl"),),
        "Red Hat:enterprise_linux:7",
        frozenset({RHEL7_OPENSSL}),
    ),
    # UBI 8.0 (CPE enterprise_linux:8.0:GA: the minor is not a stream of its own): the RHEL 8 BaseOS erratum,
    # not RHEL 7's (fixed 1:1.0.2k-19, below the installed 1:1.1.1k) nor RHEL 9's (1:3.0.1-43, above it).
    "ubi8": Case(
        "ubi8",
        (
            Rpm("openssl-libs", "1.1.1k", "5.el8_5", epoch=1, source="openssl"),
            Rpm("openssl", "1.1.1k", "5.el8_5", epoch=1, source="openssl"),
        ),
        "Red Hat:enterprise_linux:8",
        frozenset(
            _found(name, "RHSA-2022:1065", "1:1.1.1k-6.el8_5", "CVE-2022-0778") for name in ("openssl", "openssl-libs")
        ),
    ),
    # CentOS 7 (cpe:/o:centos:centos:7): Red Hat's main stream of its major.
    "centos7": Case(
        "centos7",
        (Rpm("openssl-libs", "1.0.2k", "16.el7", epoch=1, source="openssl"),),
        "Red Hat:enterprise_linux:7",
        frozenset({RHEL7_OPENSSL}),
    ),
    # RHEL 9.4 (CPE enterprise_linux:9::baseos): the RHEL 9 erratum, for the BaseOS and AppStream entries
    # alike, and not AlmaLinux's rebuild of it.
    "rhel9": Case(
        "rhel9",
        OPENSSL_EL9,
        "Red Hat:enterprise_linux:9",
        frozenset({RHEL9_OPENSSL, RHEL9_OPENSSL._replace(package="openssl")}),
    ),
    # AlmaLinux 9.4: its own errata only; Red Hat's RHSA-2022:7288 names the same fix but is not for Alma.
    "alma9": Case(
        "alma9",
        OPENSSL_EL9,
        "AlmaLinux:9",
        frozenset(
            {
                _found(name, "ALSA-2022:7288", "1:3.0.1-43.el9_0", "CVE-2022-3602", "CVE-2022-3786")
                for name in ("openssl", "openssl-libs")
            }
        ),
    ),
    # Rocky Linux 9.3: neither Alma's nor Red Hat's advisories (the database holds no Rocky ones).
    "rocky9": Case("rocky9", OPENSSL_EL9, "Rocky Linux:9", frozenset()),
    # SLES 15 SP1: the SUSE advisory for the Containers module of 15 SP1 (a module, not the server product).
    "sles15sp1": Case(
        "sles15sp1",
        HELM_MIRROR + STRONGSWAN,
        "SUSE:Linux Enterprise Server 15 SP1",
        frozenset(
            {
                _found(
                    "helm-mirror",
                    "SUSE-SU-2019:0048-2",
                    "0.2.1-1.7.1",
                    "CVE-2018-16873",
                    "CVE-2018-16874",
                    "CVE-2018-16875",
                )
            }
        ),
    ),
    # SLES 15 SP2: the SP1 advisory is another service pack's.
    "sles15sp2": Case("sles15sp2", HELM_MIRROR, "SUSE:Linux Enterprise Server 15 SP2", frozenset()),
    # openSUSE Leap 15.1: its own advisory; never SLES's, though helm-mirror is below its fix too.
    "leap151": Case(
        "leap151",
        HELM_MIRROR + STRONGSWAN,
        "openSUSE:Leap 15.1",
        frozenset(
            {
                _found(
                    name,
                    "openSUSE-SU-2019:2598-1",
                    "5.6.0-lp151.4.3.1",
                    "CVE-2018-10811",
                    "CVE-2018-16151",
                    "CVE-2018-16152",
                    "CVE-2018-17540",
                    "CVE-2018-5388",
                )
                for name in ("strongswan", "strongswan-ipsec")
            }
        ),
    ),
    # SLES 15 SP5 (the SLE BCI base image's os-release): the SP5 openssl-3 advisory, filed under the
    # Basesystem module and the server product of 15 SP5. Not the Leap 15.5 advisory for gitui, which SLES
    # does not ship (a copy installed here is below that fix), nor the 15 SP1 one for helm-mirror.
    "sles15sp5": Case(
        "sles15sp5",
        OPENSSL3_SP5 + GITUI + HELM_MIRROR,
        "SUSE:Linux Enterprise Server 15 SP5",
        SLE15SP5_OPENSSL,
    ),
    # SLES 15 SP2 with the SP5 build of openssl-3: the SP5 advisory is another service pack's.
    "sles15sp2-openssl3": Case("sles15sp2", OPENSSL3_SP5, "SUSE:Linux Enterprise Server 15 SP2", frozenset()),
    # openSUSE Leap 15.5: its own entries only. The openSUSE advisory for gitui, and the SUSE advisory for
    # openssl-3 because that advisory itself names Leap 15.5 (with the same fixed version); not the Leap 15.1
    # strongswan advisory nor SLE 15 SP1's helm-mirror one, though both fixes are above what is installed.
    "leap155": Case(
        "leap155",
        OPENSSL3_SP5 + GITUI + STRONGSWAN + HELM_MIRROR,
        "openSUSE:Leap 15.5",
        SLE15SP5_OPENSSL | {_found("gitui", "openSUSE-SU-2024:0135-1", "0.26.2-bp155.2.3.1", "CVE-2023-48795")},
    ),
    # openSUSE Leap 15.2 with the 15.5 builds: the Leap 15.5 entries are another release's.
    "leap152-sp5builds": Case("leap152", OPENSSL3_SP5 + GITUI, "openSUSE:Leap 15.2", frozenset()),
    # openSUSE Leap 15.2 and Tumbleweed: the Leap 15.1 advisory is another release's.
    "leap152": Case("leap152", STRONGSWAN, "openSUSE:Leap 15.2", frozenset()),
    "tumbleweed": Case("tumbleweed", STRONGSWAN, "openSUSE:Tumbleweed", frozenset()),
    # Azure Linux 3.0 and CBL-Mariner 2.0, one OSV ecosystem by major: each its own release's record only
    # (Mariner's openssl 1.1.1k-27 is below Azure Linux 3's fix 3.3.0-2 too, and gets only Mariner's).
    "azurelinux3": Case(
        "azurelinux3",
        (Rpm("openssl", "3.3.0", "1.azl3"),),
        "Azure Linux:3",
        frozenset({_found("openssl", "AZL-42975", "3.3.0-2.azl3", "CVE-2024-5535")}),
    ),
    "mariner2": Case(
        "mariner2",
        (Rpm("openssl", "1.1.1k", "27.cm2"),),
        "Azure Linux:2",
        frozenset({_found("openssl", "AZL-31880", "1.1.1k-28.cm2", "CVE-2023-5678")}),
    ),
}


def _release_files(folder: str) -> dict[str, str]:
    base = RELEASES / folder
    return {str(path.relative_to(base)): path.read_text() for path in sorted(base.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def advisory_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rpmdb") / "advisories.sqlite"
    folders = sorted(str(p) for p in ADVISORIES.iterdir() if p.is_dir())
    assert main(["db", "import", *folders, "--db", str(path)]) == 0
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_image_matches_its_own_release_only(name: str, acrguard: Any, advisory_db: Path) -> None:
    case = CASES[name]
    ref = rpm_image(_release_files(case.release), case.packages)
    run = acrguard("scan", ref, "--db", str(advisory_db), "--format", "json")
    assert run.code in (0, 1), run.err
    doc = run.json()
    findings = doc["findings"]
    got = {
        Expected(
            f["package"]["name"],
            f["id"],
            f["fixed_version"],
            frozenset(a for a in (f["id"], *f["aliases"]) if a.startswith("CVE-")),
        )
        for f in findings
    }
    assert got == case.found
    packages = {(p["name"], p["ecosystem"]) for p in doc["packages"]}
    assert packages == {(rpm.name, case.ecosystem) for rpm in case.packages}


# The not-matched cases are not empty for want of a vulnerable version: under the advisory's own release,
# the package as installed in that image is affected.
OTHER_RELEASES = [
    ("centos6", "Red Hat:enterprise_linux:7::server", "RHSA-2019:2304"),
    ("rhel7", "Red Hat:enterprise_linux:9::baseos", "RHSA-2022:7288"),
    ("rhel7", "Red Hat:enterprise_linux:8::baseos", "RHSA-2022:1065"),
    ("ubi8", "Red Hat:enterprise_linux:9::baseos", "RHSA-2022:7288"),
    ("centos6", "Red Hat:enterprise_linux:8::baseos", "RHSA-2022:1065"),
    ("alma9", "Red Hat:enterprise_linux:9::baseos", "RHSA-2022:7288"),
    ("rhel9", "AlmaLinux:9", "ALSA-2022:7288"),
    ("rocky9", "AlmaLinux:9", "ALSA-2022:7288"),
    ("sles15sp2", "SUSE:Linux Enterprise Module for Containers 15 SP1", "SUSE-SU-2019:0048-2"),
    ("leap151", "SUSE:Linux Enterprise Module for Containers 15 SP1", "SUSE-SU-2019:0048-2"),
    ("sles15sp1", "openSUSE:Leap 15.1", "openSUSE-SU-2019:2598-1"),
    ("leap152", "openSUSE:Leap 15.1", "openSUSE-SU-2019:2598-1"),
    ("tumbleweed", "openSUSE:Leap 15.1", "openSUSE-SU-2019:2598-1"),
    ("mariner2", "Azure Linux:3", "AZL-42975"),
    ("sles15sp5", "openSUSE:Leap 15.5", "openSUSE-SU-2024:0135-1"),
    ("sles15sp5", "SUSE:Linux Enterprise Module for Containers 15 SP1", "SUSE-SU-2019:0048-2"),
    ("sles15sp2-openssl3", "SUSE:Linux Enterprise Module for Basesystem 15 SP5", "SUSE-SU-2023:2620-1"),
    ("leap155", "openSUSE:Leap 15.1", "openSUSE-SU-2019:2598-1"),
    ("leap155", "SUSE:Linux Enterprise Module for Containers 15 SP1", "SUSE-SU-2019:0048-2"),
    ("leap152-sp5builds", "openSUSE:Leap 15.5", "openSUSE-SU-2024:0135-1"),
    ("leap152-sp5builds", "openSUSE:Leap 15.5", "SUSE-SU-2023:2620-1"),
]


@pytest.mark.parametrize(("name", "ecosystem", "vuln_id"), OTHER_RELEASES)
def test_another_releases_advisory_would_apply_under_that_release(
    name: str, ecosystem: str, vuln_id: str, advisory_db: Path
) -> None:
    db = SqliteVulnDatabase.open(advisory_db)
    packages = [
        Package(rpm.name, _evr(rpm), ecosystem, f"pkg:rpm/x/{rpm.name}", rpm.source or rpm.name, _evr(rpm), rpm.arch,
                ("/var/lib/rpm/rpmdb.sqlite",), "rpm", "rpm@1", None)
        for rpm in CASES[name].packages
    ]  # fmt: skip
    assert vuln_id in {f.id for f in find_vulnerabilities(packages, db)}
    assert vuln_id not in {e.id for e in CASES[name].found}


def _evr(rpm: Rpm) -> str:
    return f"{rpm.epoch}:{rpm.version}-{rpm.release}" if rpm.epoch is not None else f"{rpm.version}-{rpm.release}"
