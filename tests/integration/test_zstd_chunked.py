"""zstd:chunked layers (podman/buildah `--compression-format zstd:chunked`, skopeo `--dest-compress-format
zstd:chunked`) are read as the zstd stream Docker and containerd unpack, and give what the gzip image gives.

Such a layer is a valid zstd stream of the layer's tar with two extras in skippable frames: a table of contents
(the files and where their compressed frames lie) and tar-split data. acrguard never reads either: the table is
bound to the image by a manifest annotation only, not to the layer digest, and a runtime that unpacks the tar
stream never looks at it, so a table that lies about the layer must not change what is found. Reading the
whole stream (its digest checked) keeps the inventory that of the bytes that run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scanner.image.registry_options import Registry, RegistryAccess, RegistryOptions
from scanner.inventory.build import ScanOptions, inventory
from scanner.model.errors import ImageError
from scanner.model.types import Inventory
from tests import prefiximages
from tests.integration import realparts

TAG = "chunked"
TAGS = ("bookworm", "two-layer")
MADE = ("rpm-whiteouts",)  # written by Python's tarfile: see the refusal below
CHECKSUM = "io.containers.zstd-chunked.manifest-checksum"
POSITION = "io.containers.zstd-chunked.manifest-position"
FOOTER_MAGIC = b"GnUlInUx"
ZSTD_SKIPPABLE = range(0x184D2A50, 0x184D2A60)  # magic numbers of zstd's skippable frames


@pytest.fixture(scope="module")
def sources(debian_images: realparts.BuiltImages, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    found = {tag: debian_images.oci(tag) for tag in TAGS}
    found["rpm-whiteouts"] = prefiximages.write(tmp_path_factory.mktemp("rpm"), prefiximages.rpm_layers())
    return found


@pytest.fixture(scope="module")
def chunked(sources: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[str, Path]]:
    """The named image copied by skopeo as zstd:chunked (once per module): its reference and its layout."""
    made: dict[str, tuple[str, Path]] = {}

    def copy(name: str) -> tuple[str, Path]:
        if name not in made:
            layout = tmp_path_factory.mktemp(f"{name}-chunked")
            made[name] = (_chunked_copy(sources[name], layout), layout)
        return made[name]

    return copy


def _chunked_copy(source: str, layout: Path) -> str:
    reference = f"oci:{layout}:{TAG}"
    realparts.run(
        ["skopeo", "copy", "--quiet", "--dest-compress", "--dest-compress-format", "zstd:chunked", source, reference]
    )
    return reference


def _manifest(layout: Path) -> dict[str, Any]:
    return realparts.layout_document(layout, realparts.layout_descriptor(layout, TAG)["digest"])


def _unzstd(path: Path) -> bytes:
    return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout


def _as_source(chunked: Inventory, source: Inventory) -> list[Any]:
    """The chunked image's documents with the image's own identity (reference, manifest digest, each layer's
    digest, media type and size, wherever they are named) taken from the source image: what is left must be the
    same."""
    ours, theirs = chunked.image, source.image
    assert [layer.diff_id for layer in ours.layers] == [layer.diff_id for layer in theirs.layers]
    same = {
        layer.digest: {"digest": other.digest, "media_type": other.media_type, "size": other.size}
        for layer, other in zip(ours.layers, theirs.layers, strict=True)
    }

    def relabel(node: Any) -> Any:
        if isinstance(node, dict):
            found = {key: relabel(value) for key, value in node.items()}
            known = same.get(str(node.get("digest")), {})
            return found | {key: value for key, value in known.items() if key in found}
        if isinstance(node, list):
            return [relabel(value) for value in node]
        return theirs.digest if node == ours.digest else node

    image = dataclasses.replace(ours, reference=theirs.reference)
    documents: list[Any] = relabel(prefiximages.documents(dataclasses.replace(chunked, image=image)))
    return documents


def _chunked_layers(layout: Path) -> list[dict[str, Any]]:
    """The layers of the copy, checked to be what skopeo makes of zstd:chunked: the table's annotations, its
    footer, and the table in a skippable frame where the annotation says (so no test passes on plain zstd)."""
    layers: list[dict[str, Any]] = _manifest(layout)["layers"]
    assert layers
    for layer in layers:
        assert layer["mediaType"] == realparts.OCI_LAYER_ZSTD
        assert {CHECKSUM, POSITION} <= set(layer.get("annotations", {})), layer
        blob = realparts.blob_path(layout, layer["digest"]).read_bytes()
        assert blob.endswith(FOOTER_MAGIC)
        offset, length = (int(n) for n in layer["annotations"][POSITION].split(":")[:2])
        assert int.from_bytes(blob[offset - 8 : offset - 4], "little") in ZSTD_SKIPPABLE
        assert int.from_bytes(blob[offset - 4 : offset], "little") == length
    return layers


@pytest.mark.parametrize("name", TAGS)
def test_a_zstd_chunked_copy_gives_the_inventory_of_the_original(
    sources: dict[str, str], chunked: Callable[[str], tuple[str, Path]], name: str
) -> None:
    reference, layout = chunked(name)
    _chunked_layers(layout)
    source = inventory(sources[name])[0]
    found = inventory(reference)[0]
    assert found.packages, f"{name}: nothing found in the chunked copy"
    assert _as_source(found, source) == prefiximages.documents(source)


@pytest.mark.parametrize("name", MADE)
def test_a_chunked_stream_that_is_not_the_configs_layer_is_refused(
    chunked: Callable[[str], tuple[str, Path]], name: str
) -> None:
    # skopeo 1.9's zstd:chunked writer drops the zero records Python's tarfile pads a tar with, yet keeps the
    # config's diff_ids: the stream a runtime unpacks is not the layer the config names (containerd refuses it).
    # Here is what a reader of the table alone would miss; the whole stream read, the image is refused.
    reference, layout = chunked(name)
    layers = _chunked_layers(layout)
    config = realparts.layout_document(layout, _manifest(layout)["config"]["digest"])
    unpacked = [  # by zstd's own tool, as a runtime would
        "sha256:" + hashlib.sha256(_unzstd(realparts.blob_path(layout, layer["digest"]))).hexdigest()
        for layer in layers
    ]
    differing = [i for i, diff_id in enumerate(config["rootfs"]["diff_ids"]) if unpacked[i] != diff_id]
    assert differing, f"{name}: skopeo kept the stream; this test no longer shows a refusal"
    first = layers[differing[0]]["digest"]
    with pytest.raises(ImageError, match=f"layer {first}: uncompressed content .* does not match diff_id"):
        inventory(reference)


def test_a_zstd_chunked_image_pushed_to_a_registry_is_read_whole(
    sources: dict[str, str], chunked: Callable[[str], tuple[str, Path]], registry: realparts.Registry
) -> None:
    reference, layout = chunked("bookworm")
    pushed = realparts.push(registry, reference, "chunked/debian", "bookworm")
    assert [layer["digest"] for layer in pushed.layers()] == [layer["digest"] for layer in _chunked_layers(layout)]
    options = ScanOptions(registry=RegistryOptions(RegistryAccess((Registry(registry.host, insecure=True),))))
    from_registry = inventory(f"docker://{pushed.by_digest}", options)[0]
    source = inventory(sources["bookworm"])[0]
    assert from_registry.packages
    assert _as_source(from_registry, source) == prefiximages.documents(source)
