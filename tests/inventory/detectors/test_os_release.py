"""OSReleaseDetector against grype's distro-identification fixtures (tests/fixtures/os, see SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.ecosystems.distributions import os_ecosystem
from scanner.inventory.detectors.base import DetectContext, Extraction, MemoryFileSet
from scanner.inventory.detectors.os_release import MAX_RELEASE_FILE, OSReleaseDetector, parse_key_values
from scanner.model.types import OSInfo

FIXTURES = Path(__file__).parents[2] / "fixtures" / "os" / "grype-distro" / "os"

# fixture -> (id, version, codename, file it came from); None: no OS. Decided by reading each file.
EXPECTED: dict[str, tuple[str, str, str, str] | None] = {
    "almalinux": ("almalinux", "8.4", "", "/etc/os-release"),
    "alpine": ("alpine", "3.11.6", "", "/etc/os-release"),
    # VERSION_ID=3.22.0_alpha20250108 with PRETTY_NAME "Alpine Linux edge": edge, not a release.
    "alpine-edge": ("alpine", "edge", "", "/etc/os-release"),
    "amazon": ("amzn", "2", "", "/etc/os-release"),
    "arch": ("arch", "", "", "/etc/os-release"),  # rolling: BUILD_ID only
    "azurelinux": ("azurelinux", "3.0", "", "/etc/os-release"),
    "busybox": None,  # only /bin/busybox, which this detector does not read
    "centos": ("centos", "8", "", "/usr/lib/os-release"),
    "centos5": ("centos", "5.7", "", "/etc/redhat-release"),  # "CentOS release 5.7 (Final)"
    "centos6": ("centos", "6", "", "/etc/system-release-cpe"),  # cpe:/o:centos:linux:6:GA
    "chainguard": ("chainguard", "20230214", "", "/etc/os-release"),
    "custom": ("scientific", "8", "", "/etc/os-release"),  # ID wins over the CentOS PRETTY_NAME
    "debian": ("debian", "8", "jessie", "/usr/lib/os-release"),  # codename from VERSION="8 (jessie)"
    "debian-sid": ("debian", "", "trixie", "/usr/lib/os-release"),  # no VERSION_ID, no debian_version
    "echo": ("echo", "1", "", "/etc/os-release"),
    "empty": None,  # 0-byte os-release
    "fedora": ("fedora", "31", "", "/usr/lib/os-release"),  # VERSION_CODENAME=""
    "gentoo": ("gentoo", "", "", "/etc/os-release"),
    "hummingbird": ("hummingbird", "20251124", "", "/etc/os-release"),
    "mariner": ("mariner", "1.0", "", "/etc/os-release"),
    "minimos": ("minimos", "20241031", "", "/etc/os-release"),
    "opensuse-leap": ("opensuse-leap", "15.2", "", "/etc/os-release"),
    "oraclelinux": ("ol", "8.3", "", "/etc/os-release"),
    "photon": ("photon", "2.0", "", "/etc/os-release"),  # trailing blank after a quoted value
    "postmarketos": ("postmarketos", "v25.06", "", "/etc/os-release"),
    "postmarketos-edge": ("postmarketos", "edge", "", "/etc/os-release"),
    "raspbian": ("raspbian", "9", "stretch", "/etc/os-release"),  # ID_LIKE=debian, VERSION="9 (stretch)"
    "redhat": ("rhel", "7.3", "", "/usr/lib/os-release"),
    "rockylinux": ("rocky", "8.4", "", "/etc/os-release"),
    "scientific": ("scientific", "7.5", "", "/etc/os-release"),
    "scientific6": ("scientific", "6.10", "", "/etc/redhat-release"),  # "Scientific Linux release 6.10 (Carbon)"
    "secureos": ("secureos", "2025.09.09", "", "/etc/os-release"),
    "sles": ("sles", "15.2", "", "/etc/os-release"),
    "ubuntu": ("ubuntu", "20.04", "focal", "/etc/os-release"),
    "wolfi": ("wolfi", "20220914", "", "/etc/os-release"),
}


def tree(root: Path) -> MemoryFileSet:
    """Every file under `root`, keyed by its absolute path inside the image."""
    return MemoryFileSet({"/" + p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()})


def detect(files: dict[str, bytes]) -> Extraction:
    return OSReleaseDetector().extract(MemoryFileSet(files), DetectContext())


def wanted_only(root: Path) -> MemoryFileSet:
    """What the layer reader would hand over: only the paths the detector asks for."""
    everything = tree(root)
    detector = OSReleaseDetector()
    return MemoryFileSet({p: everything.read(p) for p in everything.paths() if detector.required(p)})


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_grype_fixture(fixture: str) -> None:
    result = OSReleaseDetector().extract(wanted_only(FIXTURES / fixture), DetectContext())
    expected = EXPECTED[fixture]
    if expected is None:
        assert result.os is None
        return
    assert result.os is not None
    assert (result.os.id, result.os.version, result.os.codename, result.os.source) == expected


def test_empty_os_release_warns_without_raising() -> None:
    result = OSReleaseDetector().extract(tree(FIXTURES / "empty"), DetectContext())
    assert result.os is None
    assert [w.where for w in result.warnings] == ["/etc/os-release"]


def test_full_fields_from_fixture() -> None:
    result = OSReleaseDetector().extract(tree(FIXTURES / "almalinux"), DetectContext())
    assert result.os == OSInfo(
        id="almalinux",
        version="8.4",
        codename="",
        name="AlmaLinux",
        pretty_name="AlmaLinux 8.4 (Electric Cheetah)",
        id_like=("rhel", "centos", "fedora"),
        source="/etc/os-release",
        cpe="cpe:/o:almalinux:almalinux:8.4:GA",
    )


@pytest.mark.parametrize(
    ("fixture", "ecosystem"),
    [
        ("alpine", "Alpine:v3.11"),
        ("alpine-edge", "Alpine:edge"),
        ("debian", "Debian:8"),
        ("ubuntu", "Ubuntu:20.04"),
        ("almalinux", "AlmaLinux:8"),
        ("rockylinux", "Rocky Linux:8"),
        ("azurelinux", "Azure Linux:3"),
        ("mariner", "Azure Linux:1"),
        ("redhat", "Red Hat:enterprise_linux:7"),
        ("centos", "Red Hat:enterprise_linux:8"),
        ("centos5", "Red Hat:enterprise_linux:5"),
        ("centos6", "Red Hat:enterprise_linux:6"),
        ("scientific6", "Red Hat:enterprise_linux:6"),
        ("sles", "SUSE:Linux Enterprise Server 15 SP2"),
        ("opensuse-leap", "openSUSE:Leap 15.2"),
        ("amazon", "Amazon Linux:2"),
        ("oraclelinux", "Oracle Linux:8"),
    ],
)
def test_ecosystem_of_fixture(fixture: str, ecosystem: str) -> None:
    result = OSReleaseDetector().extract(tree(FIXTURES / fixture), DetectContext())
    assert os_ecosystem(result.os) == ecosystem


RPM_RELEASES = Path(__file__).parents[2] / "fixtures" / "os" / "rpm-release"


@pytest.mark.parametrize(
    ("fixture", "os_id", "version", "cpe", "ecosystem"),
    [
        # CentOS 6: no os-release; centos-release names it, system-release-cpe gives the CPE.
        ("centos6", "centos", "6.10", "cpe:/o:centos:linux:6:GA", "Red Hat:enterprise_linux:6"),
        ("centos7", "centos", "7", "cpe:/o:centos:centos:7", "Red Hat:enterprise_linux:7"),
        ("rhel7", "rhel", "7.3", "cpe:/o:redhat:enterprise_linux:7.3:GA:server", "Red Hat:enterprise_linux:7"),
        ("rhel9", "rhel", "9.4", "cpe:/o:redhat:enterprise_linux:9::baseos", "Red Hat:enterprise_linux:9"),
        ("alma9", "almalinux", "9.4", "cpe:/o:almalinux:almalinux:9::baseos", "AlmaLinux:9"),
        ("rocky9", "rocky", "9.3", "cpe:/o:rocky:rocky:9::baseos", "Rocky Linux:9"),
        ("sles15sp1", "sles", "15.1", "cpe:/o:suse:sles:15:sp1", "SUSE:Linux Enterprise Server 15 SP1"),
        ("sles15sp2", "sles", "15.2", "cpe:/o:suse:sles:15:sp2", "SUSE:Linux Enterprise Server 15 SP2"),
        ("leap151", "opensuse-leap", "15.1", "cpe:/o:opensuse:leap:15.1", "openSUSE:Leap 15.1"),
        ("leap152", "opensuse-leap", "15.2", "cpe:/o:opensuse:leap:15.2", "openSUSE:Leap 15.2"),
        ("tumbleweed", "opensuse-tumbleweed", "20220412", "cpe:/o:opensuse:tumbleweed:20220412", "openSUSE:Tumbleweed"),
        ("azurelinux3", "azurelinux", "3.0", "", "Azure Linux:3"),
        ("mariner2", "mariner", "2.0", "", "Azure Linux:2"),
    ],
)
def test_rpm_release_fixture(fixture: str, os_id: str, version: str, cpe: str, ecosystem: str) -> None:
    result = OSReleaseDetector().extract(wanted_only(RPM_RELEASES / fixture), DetectContext())
    assert result.os is not None
    assert (result.os.id, result.os.version, result.os.cpe) == (os_id, version, cpe)
    assert os_ecosystem(result.os) == ecosystem


def test_system_release_cpe_is_read_when_os_release_names_no_cpe() -> None:
    found = detect(
        {
            "/etc/os-release": b'ID="rhel"\nVERSION_ID="8.6"\n',
            "/etc/system-release-cpe": b"cpe:/o:redhat:rhel_eus:8.6::baseos\n",
        }
    )
    assert found.os is not None and found.os.cpe == "cpe:/o:redhat:rhel_eus:8.6::baseos"
    assert os_ecosystem(found.os) == "Red Hat:rhel_eus:8.6"


def test_os_release_cpe_name_wins_over_system_release_cpe() -> None:
    found = detect(
        {
            "/etc/os-release": b'ID="rhel"\nVERSION_ID="8.9"\nCPE_NAME="cpe:/o:redhat:enterprise_linux:8::baseos"\n',
            "/etc/system-release-cpe": b"cpe:/o:redhat:enterprise_linux:8.9:ga\n",
        }
    )
    assert found.os is not None and found.os.cpe == "cpe:/o:redhat:enterprise_linux:8::baseos"


@pytest.mark.parametrize(
    "cpe",
    ["not a cpe", "cpe:/o:redhat:enterprise linux:8", "cpe:" + "x" * 300, "cpe:/o:redhat:\u00e9:8", "cpe:"],
)
def test_a_cpe_that_is_not_one_is_not_kept(cpe: str) -> None:
    found = detect({"/etc/os-release": f'ID=rhel\nVERSION_ID=9.2\nCPE_NAME="{cpe}"\n'.encode()})
    assert found.os is not None and found.os.cpe == ""
    assert os_ecosystem(found.os) == "Red Hat:enterprise_linux:9"


# ---- required()

REQUIRED = [
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/alpine-release",
    "/etc/debian_version",
    "/etc/redhat-release",
    "/etc/centos-release",
    "/etc/system-release",
    "/etc/system-release-cpe",
    "/etc/lsb-release",
    "/etc/SuSE-release",
    "/etc/photon-release",
    "/etc/mariner-release",
    "/etc/azurelinux-release",
]


@pytest.mark.parametrize("path", REQUIRED)
def test_required(path: str) -> None:
    assert OSReleaseDetector().required(path)


@pytest.mark.parametrize("path", ["/bin/busybox", "/etc/os-release.bak", "/usr/etc/os-release", "/etc", "/os-release"])
def test_not_required(path: str) -> None:
    assert not OSReleaseDetector().required(path)


# ---- os-release syntax (freedesktop spec: shell quoting, escapes, comments)


def test_quoting_escapes_and_comments() -> None:
    text = "\n".join(
        [
            "# a comment",
            "   ",
            'NAME="Foo \\"Bar\\" \\$HOME \\\\ \\x"',
            "PRETTY_NAME='single $quoted \\n'",
            "ID=plain # trailing comment",
            "VERSION_ID=1\\ 2",
            'ID_LIKE="a b"  ',
            "not an assignment",
            "lower_case=ok",
        ]
    )
    assert parse_key_values(text) == {
        "NAME": 'Foo "Bar" $HOME \\ \\x',  # only $ " \ ` are escapable inside double quotes
        "PRETTY_NAME": "single $quoted \\n",  # nothing is special inside single quotes
        "ID": "plain",
        "VERSION_ID": "1 2",
        "ID_LIKE": "a b",
        "lower_case": "ok",
    }


def test_unterminated_quote_does_not_raise() -> None:
    assert parse_key_values('ID="debian') == {"ID": "debian"}


def test_binary_garbage_gives_no_os() -> None:
    result = detect({"/etc/os-release": bytes(range(256)) * 4})
    assert result.os is None


# ---- precedence and fallbacks


def test_etc_os_release_wins_over_usr_lib() -> None:
    result = detect({"/etc/os-release": b"ID=alpine\nVERSION_ID=3.19.1\n", "/usr/lib/os-release": b"ID=debian\n"})
    assert result.os is not None
    assert (result.os.id, result.os.version, result.os.source) == ("alpine", "3.19.1", "/etc/os-release")


def test_os_release_wins_over_distribution_files() -> None:
    result = detect({"/usr/lib/os-release": b"ID=ubuntu\nVERSION_ID=22.04\n", "/etc/debian_version": b"bookworm/sid\n"})
    assert result.os is not None
    assert (result.os.id, result.os.version) == ("ubuntu", "22.04")


def test_empty_etc_os_release_falls_back_to_usr_lib() -> None:
    result = detect({"/etc/os-release": b"", "/usr/lib/os-release": b"ID=debian\nVERSION_ID=12\n"})
    assert result.os is not None
    assert (result.os.id, result.os.version, result.os.source) == ("debian", "12", "/usr/lib/os-release")
    assert [w.where for w in result.warnings] == ["/etc/os-release"]


def test_debian_sid_takes_numeric_debian_version() -> None:
    sid = (FIXTURES / "debian-sid" / "usr" / "lib" / "os-release").read_bytes()
    result = detect({"/usr/lib/os-release": sid, "/etc/debian_version": b"13.1\n"})
    assert result.os is not None
    assert (result.os.id, result.os.version, result.os.codename) == ("debian", "13", "trixie")


def test_debian_sid_ignores_non_numeric_debian_version() -> None:
    sid = (FIXTURES / "debian-sid" / "usr" / "lib" / "os-release").read_bytes()
    result = detect({"/usr/lib/os-release": sid, "/etc/debian_version": b"trixie/sid\n"})
    assert result.os is not None
    assert (result.os.version, result.os.codename) == ("", "trixie")


def test_debian_version_does_not_override_version_id() -> None:
    result = detect({"/etc/os-release": b"ID=debian\nVERSION_ID=12\n", "/etc/debian_version": b"12.5\n"})
    assert result.os is not None
    assert result.os.version == "12"


# Contents as the named distributions ship them (one-line files; quoted from memory of real images).
@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"/etc/redhat-release": b"CentOS release 5.11 (Final)\n"}, ("centos", "5.11", "")),
        ({"/etc/centos-release": b"CentOS Linux release 7.9.2009 (Core)\n"}, ("centos", "7.9.2009", "")),
        (
            {"/etc/redhat-release": b"Red Hat Enterprise Linux Server release 6.10 (Santiago)\n"},
            ("rhel", "6.10", ""),
        ),
        ({"/etc/system-release": b"Amazon Linux AMI release 2018.03\n"}, ("amzn", "2018.03", "")),
        # Oracle Linux 6 ships a redhat-release claiming RHEL; system-release names the real distribution.
        (
            {
                "/etc/redhat-release": b"Red Hat Enterprise Linux Server release 6.10 (Santiago)\n",
                "/etc/system-release": b"Oracle Linux Server release 6.10\n",
            },
            ("ol", "6.10", ""),
        ),
        ({"/etc/system-release-cpe": b"cpe:2.3:o:amazon:amazon_linux:2\n"}, ("amzn", "2", "")),
        ({"/etc/alpine-release": b"3.19.1\n"}, ("alpine", "3.19.1", "")),
        ({"/etc/alpine-release": b"3.22.0_alpha20250108\n"}, ("alpine", "edge", "")),
        ({"/etc/debian_version": b"7.11\n"}, ("debian", "7", "")),
        ({"/etc/debian_version": b"bookworm/sid\n"}, ("debian", "", "bookworm")),
        (
            {
                "/etc/lsb-release": b"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\nDISTRIB_CODENAME=trusty\n"
                b'DISTRIB_DESCRIPTION="Ubuntu 14.04.6 LTS"\n',
                "/etc/debian_version": b"jessie/sid\n",
            },
            ("ubuntu", "14.04", "trusty"),
        ),
        (
            {"/etc/SuSE-release": b"SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n"},
            ("sles", "11.4", ""),
        ),
        (
            {"/etc/SuSE-release": b"openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n"},
            ("opensuse", "13.2", ""),
        ),
        ({"/etc/photon-release": b"VMware Photon OS 3.0\nPHOTON_BUILD_NUMBER=a383b9a\n"}, ("photon", "3.0", "")),
        ({"/etc/mariner-release": b"CBL-Mariner 2.0.20220226\nMARINER_BUILD_NUMBER=rev1\n"}, ("mariner", "2.0", "")),
        ({"/etc/azurelinux-release": b"Microsoft Azure Linux 3.0.20240417\n"}, ("azurelinux", "3.0", "")),
    ],
)
def test_distribution_specific_files(files: dict[str, bytes], expected: tuple[str, str, str]) -> None:
    result = detect(files)
    assert result.os is not None
    assert (result.os.id, result.os.version, result.os.codename) == expected


def test_unrecognised_fallback_warns_and_continues() -> None:
    result = detect({"/etc/redhat-release": b"something else entirely\n", "/etc/debian_version": b"11.2\n"})
    assert result.os is not None
    assert (result.os.id, result.os.version, result.os.source) == ("debian", "11", "/etc/debian_version")
    assert [w.where for w in result.warnings] == ["/etc/redhat-release"]


def test_nothing_present() -> None:
    result = detect({})
    assert result.os is None
    assert result.warnings == []


def test_a_padded_release_file_is_not_read_and_is_incomplete() -> None:
    padded = b"ID=debian\nVERSION_ID=12\n" + b"#" * (MAX_RELEASE_FILE + 1)
    files = MemoryFileSet({"/etc/os-release": padded, "/etc/debian_version": b"12.5\n"})
    out = OSReleaseDetector().extract(files, DetectContext())
    assert out.os is not None and out.os.id == "debian"  # from the fallback file
    assert [str(w) for w in out.incomplete] == [f"/etc/os-release: larger than {MAX_RELEASE_FILE} bytes; not read"]
