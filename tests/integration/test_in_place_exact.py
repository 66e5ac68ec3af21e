"""A layer read where it lies in a local file changes nothing but speed: every test image, copied by skopeo into
the three local forms whose layers are plain tars (a `docker save` archive, an OCI layout and an OCI archive
holding uncompressed layers), gives the same inventory JSON byte for byte read in place as streamed.

The images are the suite's mmdebstrap/umoci images and the multi-layer images over real base layers
(`tests.prefiximages`): package databases whited out and brought back, opaque directories, links made in
one layer and followed in another, hard links to lower files, programs of the base linked under new names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.image import filerange
from scanner.image.local import DockerArchiveSource, OCILayoutSource
from scanner.inventory.build import inventory
from tests import prefiximages
from tests.integration import realparts

# bookworm-zstd is bookworm with zstd layers: skopeo cannot write zstd layers to a docker-archive, and its plain
# form would be bookworm again.
TAGS = ("bookworm", "two-layer", "multi", "broken")
MADE = ("debian-whiteouts", "program-links", "rpm-whiteouts")


_json = prefiximages.both_documents


@pytest.fixture(scope="module")
def sources(debian_images: realparts.BuiltImages, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each test image as an `oci:` reference skopeo can copy from."""
    return prefiximages.suite_images(debian_images, tmp_path_factory.mktemp("in-place-images"), TAGS)


def _plain_copies(source: str, root: Path) -> Iterator[str]:
    """The image in each local form with plain tar layers, copied by skopeo: a docker-archive holds its layers
    uncompressed, and copied from it with `--dest-oci-accept-uncompressed-layers` an OCI layout and an OCI
    archive keep them so (skopeo 1.9 labels them `tar+gzip` all the same: acrguard reads the bytes, not the
    label)."""
    archive = root / "docker.tar"
    realparts.run(["skopeo", "copy", "--quiet", source, f"docker-archive:{archive}"])
    yield f"docker-archive:{archive}"
    keep = "--dest-oci-accept-uncompressed-layers"
    realparts.run(["skopeo", "copy", "--quiet", keep, f"docker-archive:{archive}", f"oci:{root / 'layout'}:plain"])
    yield f"oci:{root / 'layout'}:plain"
    realparts.run(["skopeo", "copy", "--quiet", keep, f"docker-archive:{archive}", f"oci-archive:{root / 'oci.tar'}"])
    yield f"oci-archive:{root / 'oci.tar'}"


@pytest.mark.parametrize("name", [*TAGS, *MADE])
def test_a_layer_read_in_place_is_the_layer_streamed(
    sources: dict[str, str], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[int] = []
    original = filerange.RangeLayer.__init__

    def counting(self: filerange.RangeLayer, *args: object, **kwargs: object) -> None:
        opened.append(1)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(filerange.RangeLayer, "__init__", counting)
    for reference in _plain_copies(sources[name], tmp_path):
        opened.clear()
        in_place = inventory(reference)[0]
        assert len(opened) == len(in_place.image.layers) > 0, f"{name} as {reference}: not read in place"
        with monkeypatch.context() as streamed_only:
            for source in (OCILayoutSource, DockerArchiveSource):
                streamed_only.setattr(source, "blob_range", lambda self, descriptor: None)
            opened.clear()
            streamed = inventory(reference)[0]
            assert not opened
        assert _json(in_place) == _json(streamed), f"{name} as {reference}"
        assert in_place.packages, f"{name} as {reference}: nothing found"
