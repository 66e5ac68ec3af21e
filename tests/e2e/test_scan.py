"""Findings on real images and real advisories: Alpine images with Alpine's secdb, hand-built Debian,
Python, npm and Go layouts with real records, and the `acrguard scan` command's contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scanner.assess.findings import find_vulnerabilities
from scanner.model.types import Package
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

SECDB = FIXTURES / "osv" / "alpine-secdb"
WRITTEN = FIXTURES / "osv-written"
IMAGES = FIXTURES / "images"


@pytest.fixture(scope="module")
def alpine_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "alpine.sqlite"
    import_sources(path, [str(SECDB / "v3.10"), str(SECDB / "v3.11")])
    return path


@pytest.fixture(scope="module")
def mixed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "mixed.sqlite"
    real = FIXTURES / "osv-matching"
    import_sources(path, [str(WRITTEN), str(real / "pypa-urllib3"), str(real / "golang"), str(real / "almalinux9")])
    return path


def scan(acrguard: Any, ref: str, db: Path, *extra: str) -> Any:
    run = acrguard("scan", ref, "--db", str(db), "--format", "json", *extra)
    assert run.code in (0, 1), run.err
    return run


def keyed(doc: dict[str, Any]) -> set[tuple[str, str, str, str, str]]:
    return {
        (f["package"]["name"], f["id"], f["installed_version"], f["fixed_version"], f["fix_status"])
        for f in doc["findings"]
    }


def test_alpine_310_app_image_findings_match_secdb_exactly(acrguard: Any, alpine_db: Path) -> None:
    doc = scan(acrguard, f"docker-archive:{IMAGES / 'fanal/image3_gz_layers.tar'}", alpine_db).json()
    # Alpine 3.10.1: musl 1.1.22-r2 and openssl 1.1.1c-r0. v3.10/main.yaml lists musl 1.1.22-r3 for
    # CVE-2019-14697 and openssl 1.1.1d-r0 for CVE-2019-1547/-1549/-1563 (v3.11 says 1.1.1d-r1: the
    # release of the image, v3.10, is the one that counts). musl-utils has origin musl; libssl1.1 and
    # libcrypto1.1 have origin openssl.
    expected = {
        (pkg, f"ALPINE-{cve}", installed, fixed, "fixed")
        for pkg, installed, fixed, cves in [
            ("musl", "1.1.22-r2", "1.1.22-r3", ["CVE-2019-14697"]),
            ("musl-utils", "1.1.22-r2", "1.1.22-r3", ["CVE-2019-14697"]),
            ("libcrypto1.1", "1.1.1c-r0", "1.1.1d-r0", ["CVE-2019-1547", "CVE-2019-1549", "CVE-2019-1563"]),
            ("libssl1.1", "1.1.1c-r0", "1.1.1d-r0", ["CVE-2019-1547", "CVE-2019-1549", "CVE-2019-1563"]),
        ]
        for cve in cves
    }
    assert keyed(doc) == expected
    assert doc["status"] == "Unhealthy"
    assert doc["summary"]["by_fix_status"] == {"fixed": 8, "not_fixed": 0, "wont_fix": 0}
    assert all(f["aliases"] == [f["id"].removeprefix("ALPINE-")] for f in doc["findings"])
    ssl = next(f for f in doc["findings"] if f["package"]["name"] == "libssl1.1")
    assert ssl["package"]["source_name"] == "openssl"
    assert "apk add --upgrade 'libssl1.1>=1.1.1d-r0'" in ssl["remediation"]


@pytest.mark.parametrize("name", ["trivy/alpine-310.tar.gz", "trivy/alpine-311.tar.gz"])
def test_patched_alpine_images_are_healthy(acrguard: Any, alpine_db: Path, name: str) -> None:
    # Alpine 3.10.4 and 3.11.5 (early 2020) carry every fix the staged secdb (June 2020) lists for their
    # packages: e.g. v3.11 openssl's newest entry is 1.1.1d-r3 (CVE-2019-1551) and the image has 1.1.1d-r3,
    # which is the fixed version itself and so not affected.
    doc = scan(acrguard, f"docker-archive:{IMAGES / name}", alpine_db).json()
    assert doc["findings"] == [] and doc["status"] == "Healthy"


def debian_layout(root: Path) -> str:
    """A Debian 12 image with versions older than real advisories' fixes, pip and npm packages, and a
    python3-urllib3 that dpkg owns."""
    status = "\n".join(
        [
            "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u1\nArchitecture: amd64\n"
            "Source: openssl\n",
            "Package: libcap2\nStatus: install ok installed\nVersion: 1:2.66-4+b1\nArchitecture: amd64\n"
            "Source: libcap2 (1:2.66-4)\n",
            "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.11.dfsg-4\nArchitecture: amd64\n"
            "Source: zlib\n",
            "Package: coreutils\nStatus: install ok installed\nVersion: 9.1-1\nArchitecture: amd64\n",
            "Package: tar\nStatus: install ok installed\nVersion: 1.34+dfsg-1.2+deb12u1\nArchitecture: amd64\n",
            "Package: python3-urllib3\nStatus: install ok installed\nVersion: 1.26.12-1\nArchitecture: all\n"
            "Source: python-urllib3\n",
        ]
    )
    owned = "/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info"
    base = layer_tar(
        [
            Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'),
            Entry("var/lib/dpkg/status", status.encode()),
            Entry("var/lib/dpkg/info/python3-urllib3.list", f"{owned}\n".encode()),
            Entry(owned, b"Metadata-Version: 1.2\nName: urllib3\nVersion: 1.26.12\n"),
        ]
    )
    app = layer_tar(
        [
            Entry("usr/local/lib/python3.11/site-packages/urllib3-1.26.12.dist-info/METADATA",
                  b"Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.12\n"),
            Entry("app/node_modules/minimist/package.json",
                  json.dumps({"name": "minimist", "version": "1.2.5"}).encode()),
        ]
    )  # fmt: skip
    write_layout(root, [Image([Layer(base, created_by="FROM debian"), Layer(app, created_by="COPY app")])])
    return f"oci:{root}"


def test_debian_source_packages_binnmu_epoch_not_fixed_and_language_ownership(
    acrguard: Any, mixed_db: Path, tmp_path: Path
) -> None:
    doc = scan(acrguard, debian_layout(tmp_path / "deb"), mixed_db).json()
    got = keyed(doc)
    assert got == {
        # libssl3 is matched through its source package openssl and the source version.
        ("libssl3", "DEBIAN-CVE-2023-5363", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2", "fixed"),
        ("libssl3", "DEBIAN-CVE-2024-6119", "3.0.11-1~deb12u1", "3.0.14-1~deb12u2", "fixed"),
        # binNMU: binary 1:2.66-4+b1, source 1:2.66-4 — compared by source version, epoch kept; the
        # installed (binary) version is shown.
        ("libcap2", "DEBIAN-CVE-2025-1390", "1:2.66-4+b1", "1:2.66-4+deb12u1", "fixed"),
        # epoch on both sides: 1:1.2.11.dfsg-4 < 1:1.2.11.dfsg-4.1
        ("zlib1g", "DEBIAN-CVE-2022-37434", "1:1.2.11.dfsg-4", "1:1.2.11.dfsg-4.1", "fixed"),
        # no fix in bookworm: not_fixed
        ("coreutils", "DEBIAN-CVE-2016-2781", "9.1-1", "", "not_fixed"),
        ("tar", "DEBIAN-CVE-2005-2541", "1.34+dfsg-1.2+deb12u1", "", "not_fixed"),
        # the pip-installed urllib3 (not the dpkg-owned one) against the PyPI advisory
        ("urllib3", "PYSEC-2023-192", "1.26.12", "1.26.17", "fixed"),
        ("urllib3", "PYSEC-2023-212", "1.26.12", "1.26.18", "fixed"),
        ("minimist", "GHSA-xvch-5gv4-984h", "1.2.5", "1.2.6", "fixed"),
    }
    # tar 1.34+dfsg-1.2+deb12u1 IS the fixed version of CVE-2022-48303: not affected.
    assert not any(f["id"] == "DEBIAN-CVE-2022-48303" for f in doc["findings"])
    by_id = {(f["package"]["name"], f["id"]): f for f in doc["findings"]}
    urllib3 = by_id[("urllib3", "PYSEC-2023-192")]
    assert urllib3["package"]["layer"]["index"] == 1
    assert {"CVE-2023-43804", "GHSA-v845-jxx5-vc9f"} <= set(urllib3["aliases"])
    assert by_id[("minimist", "GHSA-xvch-5gv4-984h")]["severity"] == "Critical"
    assert by_id[("coreutils", "DEBIAN-CVE-2016-2781")]["severity"] == "Low"  # Debian: unimportant
    assert by_id[("libssl3", "DEBIAN-CVE-2023-5363")]["aliases"] == ["CVE-2023-5363"]
    assert "apt-get" in by_id[("libssl3", "DEBIAN-CVE-2023-5363")]["remediation"]
    assert "npm install" in by_id[("minimist", "GHSA-xvch-5gv4-984h")]["remediation"]


def package(kind: str, ecosystem: str, name: str, version: str, source: str = "") -> Package:
    return Package(name, version, ecosystem, f"pkg:{kind}/{name}@{version}", source or name, version, "", ("/x",),
                   kind, "test@1", None)  # fmt: skip


def test_almalinux_rpm_and_go_module_records(mixed_db: Path) -> None:
    db = SqliteVulnDatabase.open(mixed_db)
    rpm = package("rpm", "AlmaLinux:9", "openssl-libs", "1:3.0.1-41.el9_0", source="openssl")
    got = {(f.id, f.fixed_version, f.severity) for f in find_vulnerabilities([rpm], db)}
    # ALSA-2022:6224 fixes in exactly 1:3.0.1-41.el9_0 (the installed EVR): not affected. The later
    # errata are; their severity is Red Hat's word in the summary ("Important: openssl security update").
    assert got == {
        ("ALSA-2022:7288", "1:3.0.1-43.el9_0", "High"),
        ("ALSA-2023:0946", "1:3.0.1-47.el9_1", "Medium"),
        ("ALSA-2023:2523", "1:3.0.7-6.el9_2", "Low"),
        ("ALSA-2023:3722", "1:3.0.7-16.el9_2", "Medium"),
    }
    # A pseudo-version module: only GO-2021-0238 (fixed by the 2021-05-20 commit) is later than it.
    go = package("golang", "Go", "golang.org/x/net", "v0.0.0-20210405180319-a5a99cb37ef4")
    assert [(f.id, f.fixed_version) for f in find_vulnerabilities([go], db)] == [
        ("GO-2021-0238", "0.0.0-20210520170846-37e1c6afe023")
    ]


def test_scan_gate_exit_codes_and_formats(acrguard: Any, alpine_db: Path, tmp_path: Path) -> None:
    ref = f"docker-archive:{IMAGES / 'fanal/image3_gz_layers.tar'}"
    assert acrguard("scan", ref, "--db", str(alpine_db), "--fail-on", "unknown").code == 1
    assert acrguard("scan", ref, "--db", str(alpine_db), "--fail-on", "high").code == 0  # all are Unknown
    table = acrguard("scan", ref, "--db", str(alpine_db))
    assert table.code == 0 and "ALPINE-CVE-2019-14697" in table.out and "apk add --upgrade" in table.out
    sarif = json.loads(acrguard("scan", ref, "--db", str(alpine_db), "--format", "sarif").out)
    from jsonschema import Draft202012Validator

    schema = json.loads((FIXTURES / "sarif" / "sarif-schema-2.1.0.json").read_text())
    Draft202012Validator(schema).validate(sarif)
    assert len(sarif["runs"][0]["results"]) == 8
    missing = acrguard("scan", ref, "--db", str(tmp_path / "nope.sqlite"))
    assert missing.code == 2 and len(missing.err.strip().splitlines()) == 1


def test_disable_rules_keep_findings_but_not_health_or_gate(acrguard: Any, alpine_db: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "accept.yaml").write_text(
        "rules:\n"
        "  - name: accept-openssl-2019\n"
        "    justification: not reachable in this service\n"
        "    match:\n      packages: [openssl]\n"
        "  - name: accept-musl\n"
        "    justification: mitigated\n"
        "    expires: 2000-01-01\n"
        "    match:\n      ids: [CVE-2019-14697]\n"
    )
    ref = f"docker-archive:{IMAGES / 'fanal/image3_gz_layers.tar'}"
    run = acrguard(
        "scan", ref, "--db", str(alpine_db), "--rules", str(rules), "--format", "json", "--fail-on", "unknown"
    )
    doc = run.json()
    disabled = {f["package"]["name"] for f in doc["findings"] if f["disabled"]}
    assert disabled == {"libssl1.1", "libcrypto1.1"}  # matched through the source package openssl
    assert {f["disabled_by"] for f in doc["findings"] if f["disabled"]} == {"accept-openssl-2019"}
    assert doc["summary"]["active"] == 2 and doc["summary"]["disabled"] == 6  # the musl rule has expired
    assert run.code == 1
    (rules / "bad.yaml").write_text(
        "rules:\n  - name: x\n    justification: y\n    match:\n      severity_at_most: Hgh\n"
    )
    bad = acrguard("scan", ref, "--db", str(alpine_db), "--rules", str(rules))
    assert bad.code == 2 and "bad.yaml" in bad.err and "severity_at_most" in bad.err


def test_windows_and_unsupported_images_are_not_healthy(acrguard: Any, alpine_db: Path) -> None:
    doc = scan(acrguard, f"oci-archive:{IMAGES / 'dive/test-oci-gzip-image.tar'}", alpine_db).json()
    assert doc["status"] == "Unsupported" and doc["findings"] == []
    assert "no recognisable operating system" in doc["reason"]
