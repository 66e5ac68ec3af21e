"""Inventories of the real image tarballs (docker save, Docker 25 OCI+docker, OCI archives, gzip/zstd/
eStargz/plain layers) against expected package lists and an independent read of their databases."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, archive, layer_tar, write_layout

IMAGES = FIXTURES / "images"
FACTS = {f["file"]: f for f in json.loads((IMAGES / "expected" / "image-facts.json").read_text())["images"]}


def reference(name: str) -> str:
    transport = "oci-archive" if "test-oci-" in name else "docker-archive"
    return f"{transport}:{IMAGES / name}"


def apk_db_of(name: str) -> set[tuple[str, str]]:
    """Independent oracle: the last layer's lib/apk/db/installed, read with tarfile, parsed P:/V:."""
    outer = IMAGES / name
    data = outer.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    found = b""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer_name in manifest[0]["Layers"]:
            blob = tar.extractfile(layer_name).read()  # type: ignore[union-attr]
            if blob[:2] == b"\x1f\x8b":
                blob = gzip.decompress(blob)
            with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
                for member in layer.getmembers():
                    if member.name.lstrip("./") == "lib/apk/db/installed":
                        found = layer.extractfile(member).read()  # type: ignore[union-attr]
    pkgs, current = set(), {}
    for line in [*found.decode().splitlines(), ""]:
        if not line:
            if "P" in current and "V" in current:
                pkgs.add((current["P"], current["V"]))
            current = {}
        elif line[1:2] == ":":
            current.setdefault(line[0], line[2:])
    return pkgs


def test_alpine_311_matches_trivy_expectation_exactly(acrguard: Any) -> None:
    expected = json.loads((IMAGES / "expected" / "alpine-311.packages.json").read_text())
    run = acrguard("sbom", reference("trivy/alpine-311.tar.gz"))
    assert run.code == 0, run.err
    doc = run.json()
    got = {(p["name"], p["version"], p["source_name"], p["source_version"]) for p in doc["packages"]}
    want = {(p["name"], p["version"], p["source_name"], p["source_version"]) for p in expected["packages"]}
    assert got == want
    image = doc["image"]
    assert image["config_digest"] == expected["image"]["config_digest_image_id"]
    assert image["os"]["id"] == "alpine" and image["os"]["version"] == "3.11.5"
    assert image["platform"] == "linux/amd64"
    layer = doc["packages"][0]["layer"]
    assert layer["diff_id"] == expected["image"]["diff_ids"][0]
    assert layer["created_by"] == "/bin/sh -c #(nop) " + expected["image"]["layer_created_by"]
    assert all(p["ecosystem"] == "Alpine:v3.11" and p["detector"] == "apk@1" for p in doc["packages"])


@pytest.mark.parametrize(
    "name,os_version",
    [
        ("trivy/alpine-310.tar.gz", "3.10.4"),
        ("fanal/image3_gz_layers.tar", "3.10.1"),
        ("ggcr/mutate_test_new_hc.tar", "3.22.0"),
    ],
)
def test_alpine_images_match_their_apk_database(acrguard: Any, name: str, os_version: str) -> None:
    run = acrguard("sbom", reference(name))
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["status"] == "Scanned"
    assert doc["image"]["os"]["version"] == os_version
    assert (
        doc["image"]["config_digest"] == FACTS[name]["images"][0]["config_sha256"]
        if "config_sha256" in (FACTS[name]["images"][0])
        else True
    )
    got = {(p["name"], p["version"]) for p in doc["packages"]}
    assert got == apk_db_of(name)
    assert len(got) >= 14


@pytest.mark.parametrize(
    "name,platform",
    [
        ("dive/test-docker-image.tar", "linux/amd64"),
        ("dive/test-oci-gzip-image.tar", "linux/arm64"),
        ("dive/test-oci-zstd-image.tar", "linux/arm64"),
        ("dive/test-oci-estargz-image.tar", "linux/arm64"),
        ("dive/test-oci-uncompressed-image.tar", "linux/arm64"),
        ("ggcr/hello-world-v25.tar", "linux/arm64"),
    ],
)
def test_images_without_os_are_unsupported_with_reason(acrguard: Any, name: str, platform: str) -> None:
    run = acrguard("sbom", reference(name))
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["status"] == "Unsupported"
    assert "no recognisable operating system" in doc["reason"]
    assert doc["image"]["platform"] == platform
    assert doc["packages"] == []


def test_docker25_save_uses_content_addressed_layers(acrguard: Any) -> None:
    doc = acrguard("sbom", reference("ggcr/hello-world-v25.tar")).json()
    assert doc["image"]["config_digest"] == "sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44"
    assert doc["image"]["layers"][0]["digest"].startswith("sha256:")


def test_cyclonedx_output_validates_against_schema(acrguard: Any) -> None:
    run = acrguard("sbom", reference("trivy/alpine-311.tar.gz"), "--format", "cyclonedx-json")
    assert run.code == 0, run.err
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(run.out)
    assert errors is None, errors
    bom = json.loads(run.out)
    assert bom["specVersion"] == "1.6"
    assert len(bom["components"]) == 14
    assert all(c["purl"].startswith("pkg:apk/alpine/") for c in bom["components"])


def debian_layers() -> tuple[bytes, bytes]:
    status = (
        b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\n"
        b"Source: glibc\n\nPackage: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n"
        b"Architecture: amd64\nSource: zlib\n"
    )
    status2 = status + (
        b"\nPackage: python3-six\nStatus: install ok installed\nVersion: 1.16.0-4\nArchitecture: all\nSource: six\n"
    )
    base = layer_tar(
        [
            Entry("usr/lib/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'),
            Entry("etc/os-release", kind=tarfile.SYMTYPE, linkname="../usr/lib/os-release"),
            Entry("var/lib/dpkg/status", status),
        ]
    )
    dist = "usr/lib/python3/dist-packages/six-1.16.0.egg-info"
    second = layer_tar(
        [
            Entry("var/lib/dpkg/status", status2),
            Entry("var/lib/dpkg/info/python3-six.list", f"/{dist}\n/usr/lib/python3/dist-packages/six.py\n".encode()),
            Entry(dist, b"Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\n"),
            Entry(
                "opt/venv/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
            ),
        ]
    )
    return base, second


def test_layer_attribution_and_os_owned_python(acrguard: Any, tmp_path: Path) -> None:
    base, second = debian_layers()
    image = Image([Layer(base, created_by="base"), Layer(second, "zstd", created_by="RUN apt-get install")])
    write_layout(tmp_path / "layout", [image])
    run = acrguard("sbom", f"oci:{tmp_path / 'layout'}:latest")
    assert run.code == 0, run.err
    doc = run.json()
    by_name = {p["name"]: p for p in doc["packages"]}
    assert doc["image"]["os"] == {"id": "debian", "version": "12", "codename": "bookworm"}
    assert by_name["libc6"]["layer"]["index"] == 0
    assert by_name["libc6"]["source_name"] == "glibc"
    assert by_name["zlib1g"]["version"] == "1:1.2.13.dfsg-1"
    assert by_name["zlib1g"]["ecosystem"] == "Debian:12"
    assert by_name["python3-six"]["layer"]["index"] == 1
    assert by_name["python3-six"]["layer"]["created_by"] == "RUN apt-get install"
    assert by_name["six"]["os_owned"] is True
    assert by_name["requests"]["os_owned"] is False
    assert by_name["requests"]["purl"] == "pkg:pypi/requests@2.31.0"


def test_oci_archive_multi_platform_selection(acrguard: Any, tmp_path: Path) -> None:
    base, second = debian_layers()
    amd = Image([Layer(base)], architecture="amd64")
    arm = Image([Layer(base), Layer(second)], architecture="arm64", variant="v8")
    target = archive(write_layout(tmp_path / "layout", [amd, arm]), tmp_path / "multi.tar")
    default = acrguard("sbom", f"oci-archive:{target}").json()
    assert default["image"]["platform"] == "linux/amd64" and len(default["packages"]) == 2
    arm_doc = acrguard("sbom", f"oci-archive:{target}", "--platform", "linux/arm64").json()
    assert arm_doc["image"]["platform"] == "linux/arm64/v8" and len(arm_doc["packages"]) == 5
    both = acrguard("sbom", f"oci-archive:{target}", "--all-platforms").json()
    assert [d["image"]["platform"] for d in both] == ["linux/amd64", "linux/arm64/v8"]
    assert all(d["image"]["index_digest"].startswith("sha256:") for d in both)
    missing = acrguard("sbom", f"oci-archive:{target}", "--platform", "linux/s390x")
    assert missing.code == 2 and "no image for platform linux/s390x" in missing.err


def test_windows_image_is_unsupported_not_a_crash(acrguard: Any, tmp_path: Path) -> None:
    image = Image([Layer(layer_tar([Entry("Files/License.txt", b"x")]))], os="windows")
    write_layout(tmp_path / "win", [image])
    doc = acrguard("sbom", f"oci:{tmp_path / 'win'}", "--platform", "windows/amd64").json()
    assert doc["status"] == "Unsupported" and "Windows" in doc["reason"]


def test_dir_rootfs_does_not_follow_links_out(acrguard: Any, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "lib/apk/db").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/alpine-release").write_text("3.19.1\n")
    (root / "lib/apk/db/installed").write_text("P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\n")
    outside = tmp_path / "host-secret"
    outside.write_text("ID=host\n")
    (root / "etc/os-release").symlink_to(outside)  # absolute host path: must resolve inside the rootfs
    doc = acrguard("sbom", f"dir:{root}").json()
    assert doc["status"] == "Scanned"
    assert doc["image"]["os"]["id"] == "alpine" and doc["image"]["os"]["version"] == "3.19.1"
    assert [(p["name"], p["version"], p["ecosystem"]) for p in doc["packages"]] == [
        ("musl", "1.2.4-r2", "Alpine:v3.19")
    ]
