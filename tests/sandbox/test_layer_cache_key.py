"""The layer-chain cache's pure parts: what goes into a chain key, and when a cached inventory may stand
for another image (the end-to-end behaviour with a real registry: tests/service/test_layer_cache.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from scanner.image.manifest import Descriptor, ImageConfig
from scanner.image.resolve import ResolvedImage
from scanner.inventory.chain_cache import cacheable_key, chain_key, reuse
from scanner.model.limits import Limits
from scanner.model.types import ImageInfo, Inventory, LayerInfo, OSInfo, Package

A, B, C = ("sha256:" + c * 64 for c in "abc")
DIFF = ("sha256:" + "d" * 64, "sha256:" + "e" * 64)
GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def _key(**changes: Any) -> str:
    args: dict[str, Any] = {
        "layer_digests": [A, B],
        "detector_versions": ["apk@1", "os-release@1"],
        "scanner_version": "1.0",
        "platform": "linux/amd64",
        "limits": Limits(),
    }
    args.update(changes)
    return chain_key(**args)


def test_every_part_of_the_key_matters() -> None:
    base = _key()
    assert _key(detector_versions=["os-release@1", "apk@1"]) == base  # a set: order of naming is not identity
    others = [
        _key(layer_digests=[B, A]),  # order: the squashed filesystem depends on it
        _key(layer_digests=[A]),  # a prefix is another chain
        _key(layer_digests=[A, B, C]),
        _key(detector_versions=["apk@2", "os-release@1"]),
        _key(scanner_version="1.1"),
        _key(platform="linux/arm64"),
        _key(limits=replace(Limits(), max_file_size=Limits().max_file_size // 2)),
    ]
    assert len({base, *others}) == len(others) + 1


def _image(
    history: tuple[str, ...] = ("base", "top"),
    diff_ids: tuple[str, ...] = DIFF,
    layers: tuple[Descriptor, ...] = (Descriptor(GZ, A, 10), Descriptor(GZ, B, 20)),
) -> ResolvedImage:
    config = ImageConfig("linux", "amd64", "", diff_ids, history)
    return ResolvedImage("docker://r/x@sha256:1", "sha256:" + "1" * 64, "", "m", "sha256:" + "2" * 64, config, layers)


def test_unverified_layers_and_empty_images_are_not_cached() -> None:
    assert cacheable_key(_image(), ["apk@1"], "1.0", Limits()) is not None
    legacy = (Descriptor(GZ, A, 10, annotations=(("acrguard.verified", "no"),)), Descriptor(GZ, B, 20))
    assert cacheable_key(_image(layers=legacy), ["apk@1"], "1.0", Limits()) is None
    empty = replace(_image(diff_ids=(), history=()), layers=())
    assert cacheable_key(empty, ["apk@1"], "1.0", Limits()) is None


def _cached() -> Inventory:
    layers = (LayerInfo(0, A, DIFF[0], GZ, 10, "old base"), LayerInfo(1, B, DIFF[1], GZ, 20, "old top"))
    os_info = OSInfo("alpine", "3.10.1", "", "Alpine Linux", "Alpine Linux v3.10", (), "/etc/os-release")
    pkg = Package(
        "zlib",
        "1.2.11-r1",
        "Alpine:v3.10",
        "pkg:apk/alpine/zlib",
        "zlib",
        "",
        "x86_64",
        ("/lib/apk/db/installed",),
        "os",
        "apk@1",
        layers[1],
    )
    info = ImageInfo(
        "docker://r/old@sha256:9", "sha256:" + "9" * 64, "sha256:" + "8" * 64, "linux/amd64", os_info, layers, "m"
    )
    return Inventory(info, "Scanned", "", (pkg,))


def test_reuse_takes_the_image_info_from_the_new_image_and_repoints_layers() -> None:
    image = _image(history=("new base", "new top"))
    got = reuse(_cached(), image)
    assert got is not None
    assert (got.image.reference, got.image.digest, got.image.config_digest) == (
        image.reference,
        image.digest,
        image.config_digest,
    )
    assert [layer.created_by for layer in got.image.layers] == ["new base", "new top"]
    assert got.packages[0].layer == got.image.layers[1]
    assert got.image.os == _cached().image.os and got.status == "Scanned"


def test_reuse_refuses_other_diff_ids_or_layer_counts() -> None:
    assert reuse(_cached(), _image(diff_ids=(DIFF[0], "sha256:" + "f" * 64))) is None
    assert reuse(_cached(), _image(diff_ids=())) is None  # the cached scan verified diff_ids this config lacks
    one = replace(_image(), layers=(Descriptor(GZ, A, 10),))
    assert reuse(_cached(), one) is None
