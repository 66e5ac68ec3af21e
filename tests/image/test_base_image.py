"""Where the base image ends, from real images' build histories, and its name from the OCI annotations."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from scanner.image.base_image import annotated_base, base_image, history_base_layers
from scanner.image.manifest import parse_config, parse_manifest
from scanner.model.types import BaseImage

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "tests" / "fixtures" / "images"


def _docker_save_config(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        return dict(json.load(tar.extractfile(manifest[0]["Config"])))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "base_layers", "layers"),
    [
        # Classic builder: busybox (`ADD`, `CMD ["sh"]`) then dive's 13 `RUN`/`ADD` steps.
        (IMAGES / "dive" / "test-docker-image.tar", 1, 14),
        # alpine:3.10's `ADD` and `CMD ["/bin/sh"]`, then three kaniko `RUN` steps (the bundled sample).
        (ROOT / "samples" / "alpine-3.10-app.tar", 1, 4),
        # A base image on its own: its CMD is its last step, nothing of its own follows.
        (IMAGES / "trivy" / "alpine-310.tar.gz", 0, 1),
    ],
)
def test_real_histories(image: Path, base_layers: int, layers: int) -> None:
    config = _docker_save_config(image)
    assert history_base_layers(config["history"]) == base_layers
    parsed = parse_config(json.dumps(config).encode(), "config")
    assert (parsed.base_layers, len(parsed.layer_history)) == (base_layers, layers)


def test_buildkit_history_and_a_base_on_a_base() -> None:
    """BuildKit writes `CMD [...]` without the `#(nop)` prefix; a base built on another base has its own CMD
    further up: the last CMD followed by layers is where this image's own build starts."""
    history = [
        {"created_by": "# debian.sh --arch 'amd64' out/ 'bookworm' '@1700000000'", "comment": "debuerreotype 0.15"},
        {"created_by": 'CMD ["bash"]', "comment": "buildkit.dockerfile.v0", "empty_layer": True},
        {"created_by": "RUN /bin/sh -c apt-get update # buildkit", "comment": "buildkit.dockerfile.v0"},
        {"created_by": 'ENTRYPOINT ["python3"]', "comment": "buildkit.dockerfile.v0", "empty_layer": True},
        {"created_by": "COPY app /app # buildkit", "comment": "buildkit.dockerfile.v0"},
        {"created_by": "RUN /bin/sh -c pip install -r /app/req.txt # buildkit", "comment": "buildkit.dockerfile.v0"},
        {"created_by": 'CMD ["python3", "/app/main.py"]', "comment": "buildkit.dockerfile.v0", "empty_layer": True},
    ]
    assert history_base_layers(history) == 2


@pytest.mark.parametrize(
    "history",
    [
        None,
        "CMD",
        [],
        [{"created_by": "ADD file in /"}],  # one layer, no CMD
        [{"created_by": "ADD x /"}, "not an object", {"created_by": "RUN y"}],
        [{"created_by": 'CMD ["sh"]', "empty_layer": True}, {"created_by": "ADD x /"}],  # CMD before any layer
        # "CMD" inside a RUN's text is not a CMD step
        [
            {"created_by": "ADD x /"},
            {"created_by": "/bin/sh -c echo CMD", "empty_layer": True},
            {"created_by": "RUN z"},
        ],
    ],
)
def test_histories_that_show_no_base(history: Any) -> None:
    assert history_base_layers(history) == 0


# Annotations of Docker's official nginx 1.27.1 image for linux/amd64 (built 2024-08-14 from nginxinc/docker-nginx
# e78cf70), as `podman inspect` reports its manifest's: base.* point at the debian image it was built on.
NGINX_ANNOTATIONS = {
    "com.docker.official-images.bashbrew.arch": "amd64",
    "org.opencontainers.image.base.digest": "sha256:903d3225acecaa272bbdd7273c6c312c2af8b73644058838d23a8c9e6e5c82cf",
    "org.opencontainers.image.base.name": "debian:bookworm-slim",
    "org.opencontainers.image.created": "2024-08-14T21:31:12Z",
}


def test_annotations_name_the_base() -> None:
    manifest = parse_manifest(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "1" * 64,
                "size": 1,
            },
            "layers": [],
            "annotations": NGINX_ANNOTATIONS,
        },
        "",
        "manifest",
    )
    assert annotated_base(manifest.annotations) == (
        "debian:bookworm-slim",
        "sha256:903d3225acecaa272bbdd7273c6c312c2af8b73644058838d23a8c9e6e5c82cf",
    )
    # The first source naming a base wins: the manifest's annotations before the config's labels.
    labels = {"org.opencontainers.image.base.name": "other:1"}
    assert annotated_base(manifest.annotations, labels)[0] == "debian:bookworm-slim"
    assert annotated_base({}, labels) == ("other:1", "")


@pytest.mark.parametrize(
    "values",
    [
        {"org.opencontainers.image.base.name": "evil\x1b[31m:1", "org.opencontainers.image.base.digest": "sha256:x"},
        {"org.opencontainers.image.base.name": "a" * 513},
        {"org.opencontainers.image.base.digest": "md5:abc"},
    ],
)
def test_hostile_annotations_are_left_out(values: dict[str, str]) -> None:
    assert annotated_base(values) == ("", "")


def test_config_labels_are_read() -> None:
    config = {
        "os": "linux",
        "architecture": "amd64",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Labels": {"org.opencontainers.image.base.name": "registry.access.redhat.com/ubi9", "x": "y"}},
    }
    parsed = parse_config(json.dumps(config).encode(), "config")
    assert parsed.base_labels == (("org.opencontainers.image.base.name", "registry.access.redhat.com/ubi9"),)


def test_base_image_needs_something_to_say() -> None:
    assert base_image(0, "", "", 3) is None
    assert base_image(3, "", "", 3) is None  # every layer is the base's: no base of its own to name
    assert base_image(0, "debian:12", "", 3) == BaseImage(name="debian:12")
    assert base_image(2, "", "", 3) == BaseImage(layers=2)
