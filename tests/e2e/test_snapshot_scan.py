"""`acrguard scan` with no database chosen: the bundled snapshot's Debian 12 and Ubuntu 22.04 records give
findings on images whose packages are below their fixes (expected findings computed by dpkg from the
records' files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.snapshot import default_db_path
from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout
from tests.snapshot_oracle import DEBIAN, UBUNTU, expected_findings

# A real Debian 12 dpkg database (syft's fixture): libc6 2.36-9+deb12u1, libgcc-s1 12.2.0-14, coreutils...
BOOKWORM_STATUS = (
    FIXTURES / "dpkg" / "syft" / "debian" / "var" / "lib" / "dpkg" / "status.d" / "coreutils-relationships"
)

# Ubuntu 22.04 (jammy) packages at versions Canonical published (each is in its record's `versions` list),
# in dpkg's status format: binary, source, version.
JAMMY = [
    ("libssl3", "openssl", "3.0.2-0ubuntu1.17"),
    ("libpam0g", "pam", "1.4.0-11ubuntu2.3"),
    ("tar", "tar", "1.34+dfsg-1build3"),
    ("perl-base", "perl", "5.34.0-3ubuntu1.3"),
    ("coreutils", "coreutils", "8.32-4.1ubuntu1.2"),
    ("libgcrypt20", "libgcrypt20", "1.9.4-3ubuntu3"),
    ("libcap2", "libcap2", "1:2.44-1build3"),
    ("libtasn1-6", "libtasn1-6", "4.18.0-4build1"),
    ("libc6", "glibc", "2.35-0ubuntu3.3"),
    ("login", "shadow", "1:4.8.1-2ubuntu2.1"),
    ("procps", "procps", "2:3.3.17-6ubuntu2"),
    ("libzstd1", "libzstd", "1.4.8+dfsg-3build1"),
]


@pytest.fixture(autouse=True, scope="module")
def _snapshot_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No database chosen and none at the default place: scans use the bundled snapshot."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        patch.delenv("ACRGUARD_DB", raising=False)
        default_db_path.cache_clear()
        yield
    default_db_path.cache_clear()


def os_image(root: Path, os_release: bytes, status: bytes) -> str:
    base = layer_tar([Entry("etc/os-release", os_release), Entry("var/lib/dpkg/status", status)])
    write_layout(root, [Image([Layer(base, created_by="FROM base")])])
    return f"oci:{root}"


def stanzas(packages: list[tuple[str, str, str]]) -> bytes:
    return "\n".join(
        f"Package: {binary}\nStatus: install ok installed\nVersion: {version}\nArchitecture: amd64\n"
        + (f"Source: {source}\n" if source != binary else "")
        for binary, source, version in packages
    ).encode()


def scan(acrguard: Any, ref: str) -> dict[str, Any]:
    run = acrguard("scan", ref, "--format", "json")
    assert run.code in (0, 1), run.err
    doc: dict[str, Any] = run.json()
    return doc


def keyed(doc: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {(f["package"]["name"], f["id"], f["fixed_version"], f["fix_status"]) for f in doc["findings"]}


def installed_from_status(text: str) -> set[tuple[str, str, str]]:
    """(binary, source, source version) of every installed stanza, the way dpkg-query reads them."""
    out = set()
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Status") != "install ok installed":
            continue
        source, _, version = fields.get("Source", fields["Package"]).partition(" (")
        out.add((fields["Package"], source, version.rstrip(")") or fields["Version"]))
    return out


def test_debian_12_image_gets_the_snapshot_debian_findings(acrguard: Any, tmp_path: Path) -> None:
    status = BOOKWORM_STATUS.read_text(encoding="utf-8")
    ref = os_image(tmp_path / "deb", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n', status.encode())
    doc = scan(acrguard, ref)
    expected = expected_findings(DEBIAN, "Debian:12", installed_from_status(status))
    assert keyed(doc) == expected
    # What that means, spelled out for two records: libc6 2.36-9+deb12u1 is below glibc's fix of
    # CVE-2023-4911 (2.36-9+deb12u3) but is the fix of CVE-2023-0687; libgcc-s1 12.2.0-14 is below gcc-12's
    # 12.2.0-14+deb12u1 (CVE-2023-4039).
    assert ("libc6", "DEBIAN-CVE-2023-4911", "2.36-9+deb12u3", "fixed") in expected
    assert ("libgcc-s1", "DEBIAN-CVE-2023-4039", "12.2.0-14+deb12u1", "fixed") in expected
    assert not any(f[1] == "DEBIAN-CVE-2023-0687" for f in expected)
    assert doc["status"] == "Unhealthy"
    libc = next(f for f in doc["findings"] if f["id"] == "DEBIAN-CVE-2023-4911")
    assert libc["package"]["source_name"] == "glibc" and libc["aliases"] == ["CVE-2023-4911"]


def test_ubuntu_2204_image_gets_the_snapshot_ubuntu_findings(acrguard: Any, tmp_path: Path) -> None:
    ref = os_image(tmp_path / "jammy", b'ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n', stanzas(JAMMY))
    doc = scan(acrguard, ref)
    expected = expected_findings(UBUNTU, "Ubuntu:22.04", set(JAMMY))
    assert expected == {
        ("libssl3", "UBUNTU-CVE-2024-6119", "3.0.2-0ubuntu1.18", "fixed"),
        ("libpam0g", "UBUNTU-CVE-2024-22365", "1.4.0-11ubuntu2.4", "fixed"),
        ("libpam0g", "UBUNTU-CVE-2024-10041", "", "not_fixed"),
        ("tar", "UBUNTU-CVE-2023-39804", "1.34+dfsg-1ubuntu0.1.22.04.2", "fixed"),
        ("perl-base", "UBUNTU-CVE-2024-56406", "5.34.0-3ubuntu1.4", "fixed"),
        ("coreutils", "UBUNTU-CVE-2025-5278", "", "not_fixed"),
        ("libgcrypt20", "UBUNTU-CVE-2024-2236", "", "not_fixed"),
        ("libcap2", "UBUNTU-CVE-2025-1390", "1:2.44-1ubuntu0.22.04.2", "fixed"),
        ("libtasn1-6", "UBUNTU-CVE-2024-12133", "4.18.0-4ubuntu0.1", "fixed"),
        ("libc6", "UBUNTU-CVE-2023-4911", "2.35-0ubuntu3.4", "fixed"),
        ("login", "UBUNTU-CVE-2023-4641", "1:4.8.1-2ubuntu2.2", "fixed"),
        ("procps", "UBUNTU-CVE-2023-4016", "2:3.3.17-6ubuntu2.1", "fixed"),
        ("libzstd1", "UBUNTU-CVE-2022-4899", "", "not_fixed"),
    }
    # Pro (FIPS, ESM) entries of the same records, e.g. openssl 3.0.2-0ubuntu1.18+Fips1, add nothing.
    assert keyed(doc) == expected
    assert doc["status"] == "Unhealthy"
    ssl = next(f for f in doc["findings"] if f["id"] == "UBUNTU-CVE-2024-6119")
    assert ssl["package"]["source_name"] == "openssl"
    assert "apt-get" in ssl["remediation"]
