"""The trusted half's copy of an image: layers copied two at a time land in manifest order, byte for byte,
and the first failing layer (in manifest order) is the one named."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from scanner.image.registry_options import RegistryOptions
from scanner.inventory.build import ScanOptions
from scanner.sandbox.errors import JobError
from scanner.sandbox.fetch import copy_image, open_image
from tests.integration import realparts
from tests.ocibuild import Entry, Image, Layer, layer_tar, sha, write_layout


def _layers() -> list[Layer]:
    layers = [Layer(layer_tar([Entry(f"etc/file-{i}", b"x" * (i * 70_000))])) for i in range(5)]
    return [*layers, layers[1]]  # a layer listed twice


def _manifest(layout: Path) -> dict[str, object]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    return dict(json.loads((layout / "blobs" / "sha256" / digest).read_bytes()))


def test_layers_are_copied_in_order_byte_for_byte(tmp_path: Path) -> None:
    layers = _layers()
    write_layout(tmp_path / "src", [Image(layers)])
    with open_image(f"oci:{tmp_path / 'src'}", ScanOptions()) as opened:
        copy_image(opened, tmp_path / "dest")
    copied = _manifest(tmp_path / "dest")["layers"]
    assert isinstance(copied, list)
    assert [(c["digest"], c["size"]) for c in copied] == [(sha(x.blob), len(x.blob)) for x in layers]
    for layer in layers:
        assert (tmp_path / "dest" / "blobs" / "sha256" / sha(layer.blob).split(":")[1]).read_bytes() == layer.blob
    assert not list((tmp_path / "dest" / "blobs" / "sha256").glob(".partial-*"))


def test_the_first_bad_layer_in_manifest_order_is_named(tmp_path: Path) -> None:
    layers = _layers()
    write_layout(tmp_path / "src", [Image(layers)])
    for bad in (layers[1], layers[3]):  # tampered after the manifest was written
        (tmp_path / "src" / "blobs" / "sha256" / sha(bad.blob).split(":")[1]).write_bytes(bad.blob[:-1] + b"!")
    with open_image(f"oci:{tmp_path / 'src'}", ScanOptions()) as opened, pytest.raises(JobError) as caught:
        copy_image(opened, tmp_path / "dest")
    assert f"layer {sha(layers[1].blob)}" in str(caught.value) and "\n" not in str(caught.value)


def test_layers_from_a_registry_are_copied_two_at_a_time_in_order(tmp_path: Path) -> None:
    layers = _layers()[:5]
    write_layout(tmp_path / "src", [Image(layers)])
    try:
        with realparts.running_registry(tmp_path / "registry") as registry:
            realparts.run(
                ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:latest",
                 f"docker://{registry.host}/app:1"]
            )  # fmt: skip
            plain = RegistryOptions()
            options = ScanOptions(
                registry=replace(plain, registries=plain.registries.naming(registry.host, insecure=True))
            )
            with open_image(f"{registry.host}/app:1", options) as opened:
                copy_image(opened, tmp_path / "dest")
    except realparts.RealPartsError as exc:
        pytest.fail(f"real parts: {exc}", pytrace=False)
    copied = _manifest(tmp_path / "dest")["layers"]
    assert isinstance(copied, list)
    assert [(c["digest"], c["size"]) for c in copied] == [(sha(x.blob), len(x.blob)) for x in layers]
    for layer in layers:
        assert (tmp_path / "dest" / "blobs" / "sha256" / sha(layer.blob).split(":")[1]).read_bytes() == layer.blob
