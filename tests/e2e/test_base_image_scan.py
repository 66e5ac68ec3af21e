"""Base image or own layers, on images built with real tools: the Alpine 3.10 sample (musl and OpenSSL with known
fixes) copied to an OCI layout with skopeo, given a final `CMD` with umoci: that is the base. Application images
are built on it with `umoci insert` (their own layers: Python packages with known advisories) and carry the
`org.opencontainers.image.base.*` annotations, as `docker buildx --annotation` or Docker's official images do."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.snapshot import default_db_path
from tests.integration.realparts import require_tools, run

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "alpine-3.10-app.tar"
BASE_NAME = "myacr.azurecr.io/base/alpine:3.10"
SITE = "usr/lib/python3.7/site-packages"


def _site_packages_layer(path: Path, packages: list[tuple[str, str]]) -> Path:
    """A layer tar with one dist-info per package (umoci 0.4.7's `insert` writes a tar cut short after its last
    member, which acrguard rightly refuses: the layer is built here and added with `umoci raw add-layer`)."""
    with tarfile.open(path, "w") as tar:
        for name, version in packages:
            info = f"{SITE}/{name}-{version}.dist-info"
            for member, text in (
                ("METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
                ("RECORD", f"{info}/METADATA,,\n"),
            ):
                data = text.encode()
                entry = tarfile.TarInfo(f"{info}/{member}")
                entry.size = len(data)
                tar.addfile(entry, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools(["skopeo", "umoci"])
    work = tmp_path_factory.mktemp("base-image")
    oci = work / "oci"
    run(["skopeo", "copy", "--quiet", f"docker-archive:{SAMPLE}", f"oci:{oci}:base"])
    # The base image's last step, as `docker build` records a final CMD (an empty layer).
    run(
        [
            "umoci",
            "config",
            "--image",
            f"{oci}:base",
            "--config.cmd",
            "/bin/sh",
            "--history.created_by",
            'CMD ["/bin/sh"]',
        ]
    )
    digest = json.loads((oci / "index.json").read_text())["manifests"][0]["digest"]
    for tag, packages in {
        "app": [("requests", "2.21.0")],  # one own finding beside the base's eight
        "busy-app": [("requests", "2.21.0"), ("urllib3", "1.24.1"), ("jinja2", "2.10")],  # more own than base
    }.items():
        run(["umoci", "tag", "--image", f"{oci}:base", tag])
        layer = _site_packages_layer(work / f"{tag}.tar", packages)
        run(
            [
                "umoci",
                "raw",
                "add-layer",
                "--image",
                f"{oci}:{tag}",
                "--history.created_by",
                "COPY site-packages /usr/lib",
                str(layer),
            ]
        )
        run(
            [
                "umoci",
                "config",
                "--image",
                f"{oci}:{tag}",
                "--config.cmd",
                "python3",
                "--history.created_by",
                'CMD ["python3"]',
            ]
        )
        run(
            [
                "umoci", "config", "--image", f"{oci}:{tag}", "--no-history",
                "--manifest.annotation", f"org.opencontainers.image.base.name={BASE_NAME}",
                "--manifest.annotation", f"org.opencontainers.image.base.digest={digest}",
            ]
        )  # fmt: skip
    return oci


def _scan(acrguard: Any, image: str, *extra: str) -> Any:
    return acrguard("scan", image, "--db", str(default_db_path()), *extra)


def test_findings_say_base_or_own_and_the_advice_names_the_base(acrguard: Any, layout: Path) -> None:
    run_ = _scan(acrguard, f"oci:{layout}:app", "--format", "json")
    assert run_.code == 0, run_.err
    doc = run_.json()
    base = doc["image"]["base"]
    assert base["name"] == BASE_NAME and base["digest"].startswith("sha256:") and base["layers"] == 4
    origins = {(f["package"]["name"], f["id"]): f["origin"] for f in doc["findings"]}
    assert origins[("musl", "ALPINE-CVE-2019-14697")] == "base"
    assert origins[("libssl1.1", "ALPINE-CVE-2019-1547")] == "base"
    own = {k for k, v in origins.items() if v == "own"}
    assert own and {name for name, _ in own} == {"requests"}
    assert set(origins.values()) == {"base", "own"}
    summary = doc["remediation_summary"]
    assert f"comes from the base image {BASE_NAME}" in summary
    assert f"rebuild on a newer base image (pull {BASE_NAME} again and rebuild)" in summary

    table = _scan(acrguard, f"oci:{layout}:app")
    assert "musl [base]" in table.out and "requests " in table.out and "requests [" not in table.out
    assert "8 from the base image." in table.out


def test_no_rebuild_advice_when_most_risk_is_the_images_own(acrguard: Any, layout: Path) -> None:
    doc = _scan(acrguard, f"oci:{layout}:busy-app", "--format", "json").json()
    own = [f for f in doc["findings"] if f["origin"] == "own"]
    base = [f for f in doc["findings"] if f["origin"] == "base"]
    assert len(own) > len(base) == 8
    assert "base image" not in doc["remediation_summary"]


def test_the_base_scanned_alone_has_its_own_base_from_history(acrguard: Any, layout: Path) -> None:
    """The sample itself: alpine's layer, then three kaniko steps; no annotations."""
    doc = _scan(acrguard, f"oci:{layout}:base", "--format", "json").json()
    assert doc["image"]["base"] == {"name": "", "digest": "", "layers": 1}
    assert {f["origin"] for f in doc["findings"]} == {"base"}
