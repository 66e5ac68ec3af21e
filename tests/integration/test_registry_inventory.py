"""Inventory by registry reference, end to end, against real parts only.

A real CNCF distribution registry on 127.0.0.1 holds real Debian bookworm images (mmdebstrap + umoci,
pushed with skopeo). The CLI runs as a subprocess (`python -m scanner sbom ... --insecure`), exactly
as a user runs it; its output is compared with what dpkg-query, skopeo and the registry itself say.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from scanner.image.registry_options import RegistryOptions
from tests.childenv import minimal_env
from tests.integration import realparts

pytestmark = pytest.mark.integration

DpkgSet = set[tuple[str, str, str, str]]


@dataclass(frozen=True)
class Cli:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, f"acrguard {' '.join(self.args)} exited {self.returncode}: {self.stderr}"
        return json.loads(self.stdout)

    def error_line(self) -> str:
        """The one-line error of a failed run (checked: exit 2, nothing on stdout, one line)."""
        assert self.returncode == 2, (
            f"acrguard {' '.join(self.args)}: expected exit 2, got {self.returncode}; stderr: {self.stderr}"
        )
        assert self.stdout == "", f"stdout should be empty on error, got {self.stdout[:500]!r}"
        lines = self.stderr.splitlines()
        assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr, got {self.stderr!r}"
        assert "Traceback" not in self.stderr
        return lines[0]


_RESULTS: dict[tuple[str, ...], Cli] = {}


def acrguard(*args: str, timeout: float = 600) -> Cli:
    """`python -m scanner sbom ARGS...` in a subprocess, in a minimal environment."""
    if args in _RESULTS:
        return _RESULTS[args]
    env = minimal_env()  # no proxies (the registry is on 127.0.0.1) and none of the developer's ACRGUARD_*
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "sbom", *args],
        cwd=realparts.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    result = Cli(args, proc.returncode, proc.stdout, proc.stderr)
    if proc.returncode == 0:
        _RESULTS[args] = result
    return result


def dpkg_packages(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in doc["packages"] if str(p["detector"]).startswith("dpkg")]


def dpkg_set(doc: dict[str, Any]) -> DpkgSet:
    return {(p["name"], p["version"], p["source_name"], p["source_version"]) for p in dpkg_packages(doc)}


def assert_same_dpkg(doc: dict[str, Any], expected: DpkgSet) -> None:
    """The image's dpkg inventory is exactly dpkg-query's: same tuples, no duplicates."""
    got = dpkg_set(doc)
    missing, extra = sorted(expected - got), sorted(got - expected)
    assert not missing and not extra, f"missing (dpkg-query has, acrguard not): {missing}\nextra: {extra}"
    assert len(dpkg_packages(doc)) == len(expected), "duplicate dpkg packages in the inventory"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def python_packages(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in doc["packages"] if p["ecosystem"] == "PyPI" and canonical(p["name"]) == canonical(name)]


def config_of(images: realparts.ImageSet, pushed: realparts.Pushed) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(images.registry.blob(pushed.repo, pushed.manifest.doc["config"]["digest"]))
    return config


def without_layer_digest(doc: dict[str, Any]) -> list[dict[str, Any]]:
    packages = []
    for p in doc["packages"]:
        p = dict(p)
        p["layer"] = {k: v for k, v in (p["layer"] or {}).items() if k != "digest"}
        packages.append(p)
    return packages


def test_dpkg_inventory_by_tag_equals_dpkg_query(images: realparts.ImageSet, expected_dpkg: DpkgSet) -> None:
    pushed = images.bookworm
    doc = acrguard(pushed.reference, "--insecure").json()

    assert doc["status"] == "Scanned", doc["reason"]
    assert_same_dpkg(doc, expected_dpkg)

    image = doc["image"]
    assert image["digest"] == pushed.digest == realparts.skopeo_inspect_digest(pushed.reference)
    assert image["config_digest"] == pushed.manifest.doc["config"]["digest"]
    assert image["platform"] == "linux/amd64"
    assert image["os"]["id"] == "debian" and image["os"]["version"] == "12"

    # Every dpkg package is in the one layer, described as the manifest and config describe it.
    config = config_of(images, pushed)
    layer = {
        "index": 0,
        "digest": pushed.layers()[0]["digest"],
        "diff_id": config["rootfs"]["diff_ids"][0],
        "created_by": images.built.mmdebstrap_created_by,
    }
    arches = dpkg_architectures(images)
    for p in dpkg_packages(doc):
        assert p["layer"] == layer, p
        assert p["ecosystem"] == "Debian:12", p
        assert "/var/lib/dpkg/status" in p["locations"], p
        purl = PackageURL.from_string(p["purl"])
        assert (purl.type, purl.namespace, purl.name, purl.version) == ("deb", "debian", p["name"], p["version"])
        assert purl.qualifiers.get("arch", arches[p["name"]]) == arches[p["name"]], p["purl"]


def test_clean_debian_image_has_no_warnings(images: realparts.ImageSet) -> None:
    # A plain merged-/usr bookworm root (/bin -> usr/bin, /lib -> usr/lib...) has nothing to warn about.
    for pushed in (images.bookworm, images.two_layer):
        doc = acrguard(pushed.reference, "--insecure").json()
        assert doc["warnings"] == [], pushed.reference


def dpkg_architectures(images: realparts.ImageSet) -> dict[str, str]:
    proc = realparts.run(
        [
            "dpkg-query",
            f"--admindir={images.built.rootfs / 'var/lib/dpkg'}",
            "-W",
            "-f=${Package}\\t${Architecture}\\n",
        ]
    )
    return dict(line.split("\t") for line in proc.stdout.splitlines() if line)


def test_inventory_by_digest_is_the_same_image(images: realparts.ImageSet, expected_dpkg: DpkgSet) -> None:
    by_tag = acrguard(images.bookworm.reference, "--insecure").json()
    by_digest = acrguard(images.bookworm.by_digest, "--insecure").json()

    assert by_digest["image"]["digest"] == images.bookworm.digest
    assert by_digest["image"]["config_digest"] == by_tag["image"]["config_digest"]
    assert by_digest["packages"] == by_tag["packages"]
    assert_same_dpkg(by_digest, expected_dpkg)


def test_docker_schema2_manifest_gives_the_same_inventory(images: realparts.ImageSet) -> None:
    pushed = images.bookworm_v2s2
    assert pushed.manifest.media_type == realparts.DOCKER_MANIFEST
    doc = acrguard(pushed.reference, "--insecure").json()
    oci = acrguard(images.bookworm.reference, "--insecure").json()

    assert doc["image"]["digest"] == pushed.digest == realparts.skopeo_inspect_digest(pushed.reference)
    assert doc["packages"] == oci["packages"]  # same layer blob, same diff_id


def test_zstd_layer_gives_the_same_packages_as_gzip(images: realparts.ImageSet) -> None:
    pushed = images.zstd
    assert [layer["mediaType"] for layer in pushed.layers()] == [realparts.OCI_LAYER_ZSTD]
    doc = acrguard(pushed.reference, "--insecure").json()
    gzip_doc = acrguard(images.bookworm.reference, "--insecure").json()

    assert doc["status"] == "Scanned"
    assert doc["image"]["digest"] == pushed.digest
    assert without_layer_digest(doc) == without_layer_digest(gzip_doc)
    zstd_layer = pushed.layers()[0]["digest"]
    assert {p["layer"]["digest"] for p in doc["packages"]} == {zstd_layer}


def test_two_layer_image_attributes_packages_to_their_layer(images: realparts.ImageSet, expected_dpkg: DpkgSet) -> None:
    pushed = images.two_layer
    doc = acrguard(pushed.reference, "--insecure").json()
    assert doc["status"] == "Scanned"
    assert_same_dpkg(doc, expected_dpkg)  # the final filesystem is the mmdebstrap root again

    config = config_of(images, pushed)
    layers = [
        {"index": i, "digest": layer["digest"], "diff_id": diff_id}
        for i, (layer, diff_id) in enumerate(zip(pushed.layers(), config["rootfs"]["diff_ids"], strict=True))
    ]
    created_by = [
        f"{images.built.mmdebstrap_created_by} (without {realparts.ADDED_IN_LAYER_1})",
        realparts.LAYER_1_CREATED_BY,
    ]
    assert [{k: v for k, v in layer.items() if k != "created_by"} for layer in doc["image"]["layers"]] == layers
    assert [layer["created_by"] for layer in doc["image"]["layers"]] == created_by

    for p in dpkg_packages(doc):
        expected = 1 if p["name"] == realparts.ADDED_IN_LAYER_1 else 0
        assert p["layer"] == {**layers[expected], "created_by": created_by[expected]}, p

    probe_name, probe_version = realparts.PROBE
    probe = python_packages(doc, probe_name)
    assert [(p["version"], p["layer"]["index"]) for p in probe] == [(probe_version, 1)], probe
    # The egg-info python3-six ships is a Python package too: it arrived with layer 1.
    six = python_packages(doc, "six")
    assert [(p["version"], p["layer"]["index"]) for p in six] == [("1.16.0", 1)], six
    # dpkg owns six's files (python3-six); nothing owns the pip-installed probe.
    assert [p["os_owned"] for p in six] == [True] and [p["os_owned"] for p in probe] == [False]


def test_multi_arch_index_default_platform_is_linux_amd64(images: realparts.ImageSet) -> None:
    doc = acrguard(images.multi.reference, "--insecure").json()
    amd64 = images.members["linux/amd64"]

    assert images.multi.manifest.media_type == realparts.OCI_INDEX
    assert doc["image"]["digest"] == amd64.digest
    assert doc["image"]["platform"] == "linux/amd64"
    assert (
        doc["image"]["index_digest"] == images.multi.digest == realparts.skopeo_inspect_digest(images.multi.reference)
    )
    assert python_packages(doc, realparts.PLATFORM_MARKER[0]) == []


def test_multi_arch_index_platform_arm64(images: realparts.ImageSet, expected_dpkg: DpkgSet) -> None:
    doc = acrguard(images.multi.reference, "--insecure", "--platform", "linux/arm64").json()
    arm64 = images.members["linux/arm64"]

    assert doc["image"]["digest"] == arm64.digest
    assert doc["image"]["config_digest"] == arm64.manifest.doc["config"]["digest"]
    # The index says linux/arm64/v8; the config says arm64 without a variant.
    assert doc["image"]["platform"] in ("linux/arm64", "linux/arm64/v8")
    assert_same_dpkg(doc, expected_dpkg)
    marker = python_packages(doc, realparts.PLATFORM_MARKER[0])
    assert [(p["version"], p["layer"]["index"]) for p in marker] == [(realparts.PLATFORM_MARKER[1], 1)]


def test_multi_arch_index_all_platforms(images: realparts.ImageSet) -> None:
    docs = acrguard(images.multi.reference, "--insecure", "--all-platforms").json()

    assert isinstance(docs, list) and len(docs) == 2
    by_digest = {d["image"]["digest"]: d for d in docs}
    amd64, arm64 = images.members["linux/amd64"], images.members["linux/arm64"]
    assert set(by_digest) == {amd64.digest, arm64.digest}
    assert by_digest[amd64.digest]["image"]["platform"] == "linux/amd64"
    assert by_digest[arm64.digest]["image"]["platform"] in ("linux/arm64", "linux/arm64/v8")
    single = acrguard(images.multi.reference, "--insecure", "--platform", "linux/arm64").json()
    assert by_digest[arm64.digest]["packages"] == single["packages"]


def test_missing_tag_is_one_line_naming_the_reference(images: realparts.ImageSet) -> None:
    reference = f"{images.registry.host}/debian:no-such-tag"
    line = acrguard(reference, "--insecure").error_line()
    assert reference in line, line


def test_registry_down_is_one_line(images: realparts.ImageSet) -> None:
    reference = f"127.0.0.1:{realparts.closed_port()}/debian:bookworm"
    result = acrguard(reference, "--insecure", timeout=300)
    line = result.error_line()
    assert reference.split("/")[0] in line, line


def test_an_unreachable_registry_is_tried_a_bounded_number_of_times() -> None:
    """Giving up is counted in attempts, not timed: a listener that takes each connection and closes it
    at once (as a registry going down mid-request) sees the manifest request once plus the retries."""
    server = socket.create_server(("127.0.0.1", 0))
    attempts: list[bytes] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            with connection:
                attempts.append(connection.recv(4096).split(b"\r\n", 1)[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        reference = f"127.0.0.1:{server.getsockname()[1]}/debian:bookworm"
        line = acrguard(reference, "--insecure").error_line()
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept: every attempt was taken before the CLI gave up
        server.close()
        thread.join()
    assert reference in line and "cannot reach the registry" in line, line
    assert attempts == [b"GET /v2/debian/manifests/bookworm HTTP/1.1"] * (1 + RegistryOptions().retries)


def test_plain_http_registry_without_insecure_says_so(images: realparts.ImageSet) -> None:
    reference = f"{images.registry.host}/debian:bookworm"
    line = acrguard(reference).error_line()
    assert reference in line and "add --insecure" in line, line


def test_missing_blob_is_one_line_naming_the_blob(images: realparts.ImageSet) -> None:
    assert images.broken is not None
    assert images.registry.blob_status("broken", images.missing_blob) == 404
    line = acrguard(images.broken.reference, "--insecure").error_line()
    assert images.missing_blob.split(":", 1)[1] in line, line
    assert line.count(images.missing_blob) == 1 and images.broken.reference in line, line


def test_cyclonedx_output_validates_and_counts_every_package(images: realparts.ImageSet) -> None:
    result = acrguard(images.two_layer.reference, "--insecure", "--format", "cyclonedx-json")
    bom = result.json()
    inventory = acrguard(images.two_layer.reference, "--insecure").json()

    version = SchemaVersion.from_version(bom["specVersion"])
    errors = JsonStrictValidator(version).validate_str(result.stdout)
    assert errors is None, f"CycloneDX {bom['specVersion']} schema: {errors}"
    assert len(bom["components"]) == len(inventory["packages"])
    purls = sorted(c.get("purl", "") for c in bom["components"])
    assert purls == sorted(p["purl"] for p in inventory["packages"])
