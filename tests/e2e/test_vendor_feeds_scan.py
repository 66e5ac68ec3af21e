"""Amazon Linux, Oracle Linux and Wolfi images scanned against a database imported from the real vendor feeds
(ALAS updateinfo, ELSA OVAL, Wolfi secdb): an installed version below the fix is found with the advisory's id,
CVEs and fixed version; the fixed version is not; an advisory of one release never matches another's image.

The rpm images are built with real rpm tooling (`tests.rpmimages`) and the distributions' real os-release files;
the Wolfi image holds an apk database written in the stanza form the apk detector reads (P:/V:/A:/o:)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout
from tests.rpmimages import Rpm, rpm_image

# Amazon Linux 2: grype's distro fixture (tests/fixtures/os). AL2023 and Oracle Linux 8.9/7.9: as the images ship
# them (docker.io amazonlinux:2023, oraclelinux:8.9, oraclelinux:7.9).
AL2_OS_RELEASE = (FIXTURES / "os" / "grype-distro" / "os" / "amazon" / "etc" / "os-release").read_text()
AL2023_OS_RELEASE = """NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PLATFORM_ID="platform:al2023"
PRETTY_NAME="Amazon Linux 2023"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2023"
HOME_URL="https://aws.amazon.com/linux/"
BUG_REPORT_URL="https://github.com/amazonlinux/amazon-linux-2023"
SUPPORT_END="2028-03-15"
"""
OL_OS_RELEASE = """NAME="Oracle Linux Server"
VERSION="{v}"
ID="ol"
ID_LIKE="fedora"
VARIANT="Server"
VARIANT_ID="server"
VERSION_ID="{v}"
PLATFORM_ID="platform:el{major}"
PRETTY_NAME="Oracle Linux Server {v}"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:oracle:linux:{major}:{minor}:server"
HOME_URL="https://linux.oracle.com/"
BUG_REPORT_URL="https://github.com/oracle/oracle-linux"

ORACLE_BUGZILLA_PRODUCT="Oracle Linux {major}"
ORACLE_BUGZILLA_PRODUCT_VERSION={v}
ORACLE_SUPPORT_PRODUCT="Oracle Linux"
ORACLE_SUPPORT_PRODUCT_VERSION={v}
"""
WOLFI_OS_RELEASE = (FIXTURES / "os" / "grype-distro" / "os" / "wolfi" / "etc" / "os-release").read_text()


def ol(version: str) -> str:
    major, minor = version.split(".")
    return OL_OS_RELEASE.format(v=version, major=major, minor=minor)


@pytest.fixture(scope="module")
def vendor_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "vendor.sqlite"
    import_sources(path, [str(FIXTURES / "amazon-alas"), str(FIXTURES / "oracle-elsa"), str(FIXTURES / "wolfi-secdb")])
    return path


def scan(acrguard: Any, ref: str, db: Path) -> dict[str, Any]:
    run = acrguard("scan", ref, "--db", str(db), "--format", "json")
    assert run.code in (0, 1), run.err
    return dict(json.loads(run.out))


def found(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["package"]["name"], f["id"]): f for f in doc["findings"]}


JAVA_CVES = [
    "CVE-2018-2579", "CVE-2018-2582", "CVE-2018-2588", "CVE-2018-2599", "CVE-2018-2602", "CVE-2018-2603",
    "CVE-2018-2618", "CVE-2018-2629", "CVE-2018-2633", "CVE-2018-2634", "CVE-2018-2637", "CVE-2018-2641",
    "CVE-2018-2663", "CVE-2018-2677", "CVE-2018-2678",
]  # fmt: skip


def test_amazon_linux_2_below_the_fix_and_at_it(acrguard: Any, vendor_db: Path) -> None:
    ref = rpm_image(
        {"etc/os-release": AL2_OS_RELEASE},
        [
            Rpm("java-1.8.0-openjdk-headless", "1.8.0.151", "1.b12.amzn2", epoch=1, source="java-1.8.0-openjdk"),
            Rpm("qemu-img", "1.5.3", "141.amzn2.5.3", epoch=10, source="qemu-kvm"),  # exactly the fix
            # below ALAS2023-2023-001's fix, but that is an Amazon Linux 2023 advisory
            Rpm("rsyslog", "8.24.0", "57.amzn2", source="rsyslog"),
        ],
    )
    doc = scan(acrguard, ref, vendor_db)
    assert {f["package"]["ecosystem"] for f in doc["findings"]} == {"Amazon Linux:2"}
    assert sorted(found(doc)) == [("java-1.8.0-openjdk-headless", "ALAS2-2018-949")]
    java = found(doc)[("java-1.8.0-openjdk-headless", "ALAS2-2018-949")]
    assert (java["installed_version"], java["fixed_version"], java["fix_status"]) == (
        "1:1.8.0.151-1.b12.amzn2",
        "1:1.8.0.161-0.b14.amzn2",
        "fixed",
    )
    assert (java["severity"], java["severity_source"]) == ("High", "database_specific")  # Amazon's "important"
    assert java["references"] == ["https://alas.aws.amazon.com/AL2/ALAS-2018-949.html"]
    assert doc["status"] == "Unhealthy"


def test_amazon_linux_findings_name_the_alas_cves(acrguard: Any, vendor_db: Path) -> None:
    ref = rpm_image(
        {"etc/os-release": AL2_OS_RELEASE},
        [Rpm("java-1.8.0-openjdk-headless", "1.8.0.151", "1.b12.amzn2", epoch=1, source="java-1.8.0-openjdk")],
    )
    (finding,) = scan(acrguard, ref, vendor_db)["findings"]
    assert finding["aliases"] == JAVA_CVES


def test_amazon_linux_2023_below_the_fix_and_never_al2_advisories(acrguard: Any, vendor_db: Path) -> None:
    ref = rpm_image(
        {"etc/os-release": AL2023_OS_RELEASE},
        [
            Rpm("rsyslog", "8.2204.0", "2.amzn2023.0.1", source="rsyslog"),
            Rpm("rsyslog-openssl", "8.2204.0", "2.amzn2023.0.1", source="rsyslog"),
            # below ALAS2-2018-949's fix: an Amazon Linux 2 advisory, not for this image
            Rpm("java-1.8.0-openjdk-headless", "1.8.0.151", "1.b12.amzn2", epoch=1, source="java-1.8.0-openjdk"),
        ],
    )
    doc = scan(acrguard, ref, vendor_db)
    assert sorted(found(doc)) == [("rsyslog", "ALAS2023-2023-001"), ("rsyslog-openssl", "ALAS2023-2023-001")]
    rsyslog = found(doc)[("rsyslog", "ALAS2023-2023-001")]
    assert rsyslog["package"]["ecosystem"] == "Amazon Linux:2023"
    assert rsyslog["fixed_version"] == "8.2204.0-3.amzn2023.0.2"
    assert rsyslog["severity"] == "High"
    assert rsyslog["aliases"] == ["CVE-2014-3634", "CVE-2022-24903"]

    fixed = rpm_image(
        {"etc/os-release": AL2023_OS_RELEASE}, [Rpm("rsyslog", "8.2204.0", "3.amzn2023.0.2", source="rsyslog")]
    )
    assert scan(acrguard, fixed, vendor_db)["findings"] == []


def test_oracle_linux_8_below_the_fix_at_it_and_never_ol7_advisories(acrguard: Any, vendor_db: Path) -> None:
    ref = rpm_image(
        {"etc/os-release": ol("8.9")},
        [
            Rpm("osbuild", "109", "1.el8", source="osbuild"),
            Rpm("osbuild-composer", "101", "1.el8", source="osbuild-composer"),  # exactly the fix
            Rpm("rsyslog", "8.24.0", "57.el7_9", source="rsyslog"),  # below ELSA-2022-4803, an OL7 advisory
        ],
    )
    doc = scan(acrguard, ref, vendor_db)
    assert sorted(found(doc)) == [("osbuild", "ELSA-2024-2961")]
    osbuild = found(doc)[("osbuild", "ELSA-2024-2961")]
    assert osbuild["package"]["ecosystem"] == "Oracle Linux:8"
    assert (osbuild["installed_version"], osbuild["fixed_version"]) == ("109-1.el8", "110-1.el8")
    assert osbuild["aliases"] == ["CVE-2024-2307"]  # ELSA- is a known distribution prefix: `related` names it
    assert (osbuild["severity"], osbuild["severity_source"]) == ("Medium", "database_specific")  # MODERATE
    # Oracle's own rebuild 110-1.0.1.el8 and the plain 110-1.el8 are both fixes
    rebuilt = rpm_image({"etc/os-release": ol("8.9")}, [Rpm("osbuild", "110", "1.el8", source="osbuild")])
    assert scan(acrguard, rebuilt, vendor_db)["findings"] == []


def test_oracle_linux_7_gets_its_own_advisories_only(acrguard: Any, vendor_db: Path) -> None:
    ref = rpm_image(
        {"etc/os-release": ol("7.9")},
        [Rpm("rsyslog", "8.24.0", "57.el7_9", source="rsyslog"), Rpm("osbuild", "109", "1.el7", source="osbuild")],
    )
    doc = scan(acrguard, ref, vendor_db)
    assert sorted(found(doc)) == [("rsyslog", "ELSA-2022-4803")]
    rsyslog = found(doc)[("rsyslog", "ELSA-2022-4803")]
    assert rsyslog["package"]["ecosystem"] == "Oracle Linux:7"
    assert rsyslog["fixed_version"] == "8.24.0-57.0.1.el7_9.3"
    assert rsyslog["aliases"] == ["CVE-2022-24903"]


def wolfi_image(root: Path, stanzas: str) -> str:
    tar = layer_tar(
        [Entry("etc/os-release", WOLFI_OS_RELEASE.encode()), Entry("lib/apk/db/installed", stanzas.encode())]
    )
    write_layout(root, [Image([Layer(tar)])])
    return f"oci:{root}"


def test_wolfi_image_against_the_wolfi_secdb(acrguard: Any, vendor_db: Path, tmp_path: Path) -> None:
    stanzas = (
        "P:zlib\nV:1.2.12-r1\nA:x86_64\no:zlib\n\n"  # 1.2.12-r0 fixed CVE-2018-25032; 1.2.12-r3 CVE-2022-37434
        "P:binutils\nV:2.39-r3\nA:x86_64\no:binutils\n\n"  # every listed fix installed
        "P:coreutils\nV:9.1-r0\nA:x86_64\no:coreutils\n\n"  # CVE-2016-2781 under "0": never affected
        "P:libcrypto3\nV:3.0.5-r0\nA:x86_64\no:openssl\n\n"  # by origin: openssl 3.0.7-r0
    )
    doc = scan(acrguard, wolfi_image(tmp_path / "wolfi", stanzas), vendor_db)
    assert {f["package"]["ecosystem"] for f in doc["findings"]} == {"Wolfi"}
    got = {(f["package"]["name"], f["id"], f["fixed_version"]) for f in doc["findings"]}
    assert got == {
        ("zlib", "WOLFI-CVE-2022-37434", "1.2.12-r3"),
        ("libcrypto3", "WOLFI-CVE-2022-3358", "3.0.7-r0"),
        ("libcrypto3", "WOLFI-CVE-2022-3602", "3.0.7-r0"),
        ("libcrypto3", "WOLFI-CVE-2022-3786", "3.0.7-r0"),
    }
    zlib = next(f for f in doc["findings"] if f["package"]["name"] == "zlib")
    assert zlib["aliases"] == ["CVE-2022-37434"]
    assert zlib["references"] == ["https://images.chainguard.dev/security/CVE-2022-37434"]
