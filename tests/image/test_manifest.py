"""Manifest, index and config parsing; platform selection."""

from __future__ import annotations

import json

import pytest

from scanner.image.manifest import (
    DOCKER_LIST,
    Platform,
    document_kind,
    parse_config,
    parse_index,
    parse_manifest,
    select_platforms,
)
from scanner.model.errors import ImageError

D = "sha256:" + "a" * 64


def entry(arch: str, variant: str = "", os: str = "linux", **extra: object) -> dict[str, object]:
    platform = {"os": os, "architecture": arch, **({"variant": variant} if variant else {})}
    return {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": D,
        "size": 1,
        "platform": platform,
        **extra,
    }


def test_docker_manifest_list_selection_skips_attestations() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            entry("amd64"),
            entry("arm", "v7"),
            entry("arm64", "v8"),
            entry("unknown", os="unknown", annotations={"vnd.docker.reference.type": "attestation-manifest"}),
        ],
    }
    assert document_kind(doc, "") == "index"
    index = parse_index(doc, DOCKER_LIST, "test")
    assert [str(d.platform) for d in select_platforms(index, None)] == ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]
    assert str(select_platforms(index, Platform.parse("linux/arm64"))[0].platform) == "linux/arm64/v8"
    assert str(select_platforms(index, Platform.parse("linux/arm64/v8"))[0].platform) == "linux/arm64/v8"
    with pytest.raises(ImageError, match="available: linux/amd64, linux/arm/v7, linux/arm64/v8"):
        select_platforms(index, Platform.parse("linux/arm/v6"))


def test_arm64_without_variant_in_index_matches_v8() -> None:
    index = parse_index({"manifests": [entry("arm64")]}, "", "test")
    assert select_platforms(index, Platform.parse("linux/arm64/v8"))


@pytest.mark.parametrize(
    "doc,message",
    [
        ({"config": {"digest": "sha256:zz", "size": 1}, "layers": []}, "invalid digest"),
        ({"config": {"digest": D, "size": -1}, "layers": []}, "invalid size"),
        ({"config": {"digest": D, "size": 1}, "layers": {}}, "no layers list"),
        ({"layers": []}, "no config"),
    ],
)
def test_malformed_manifests(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_manifest(doc, "", "test")


def test_schema1_is_refused_clearly() -> None:
    with pytest.raises(ImageError, match="schema 1"):
        document_kind({}, "application/vnd.docker.distribution.manifest.v1+prettyjws")


def test_config_history_skips_empty_layers() -> None:
    config = {
        "os": "linux",
        "architecture": "arm64",
        "variant": "v8",
        "rootfs": {"diff_ids": [D, D]},
        "history": [
            {"created_by": "ADD rootfs"},
            {"created_by": "ENV A=b", "empty_layer": True},
            {"created_by": "RUN apt-get install"},
        ],
    }
    parsed = parse_config(json.dumps(config).encode(), "test")
    assert parsed.layer_history == ("ADD rootfs", "RUN apt-get install")
    assert str(parsed.platform) == "linux/arm64/v8"
    with pytest.raises(ImageError, match="not valid JSON"):
        parse_config(b"{nope", "test")
