"""Write small OCI image layouts from layer bytes, for tests that need hand-made (often hostile) images.

This is test scaffolding only: real images in the integration suite are built with mmdebstrap, umoci
and skopeo. The layouts follow the OCI image-layout spec, so skopeo can read them too.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Entry:
    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""
    size: int | None = None  # declared size override (for lying headers)
    mode: int = 0o644
    devmajor: int = 0


def layer_tar(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.kind
            info.mode = entry.mode
            info.linkname = entry.linkname
            info.devmajor = entry.devmajor
            if entry.kind == tarfile.REGTYPE:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return out.getvalue()


@dataclass
class Layer:
    tar: bytes
    compression: str = "gzip"  # gzip | zstd | none
    created_by: str = ""
    blob: bytes = b""
    media_type: str = ""
    declared_digest: str = ""
    declared_size: int | None = None
    diff_id: str = ""

    def __post_init__(self) -> None:
        if not self.blob:
            if self.compression == "gzip":
                self.blob = gzip.compress(self.tar, mtime=0)
            elif self.compression == "zstd":
                self.blob = zstandard.ZstdCompressor().compress(self.tar)
            else:
                self.blob = self.tar
        suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[self.compression]
        self.media_type = self.media_type or f"application/vnd.oci.image.layer.v1.tar{suffix}"
        self.diff_id = self.diff_id or sha(self.tar)


@dataclass
class Image:
    layers: list[Layer]
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""
    extra_blobs: dict[str, bytes] = field(default_factory=dict)
    omit_blobs: set[str] = field(default_factory=set)

    def config(self) -> bytes:
        doc = {
            "architecture": self.architecture,
            "os": self.os,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]},
            "history": [{"created_by": layer.created_by or f"layer {i}"} for i, layer in enumerate(self.layers)],
        }
        if self.variant:
            doc["variant"] = self.variant
        return json.dumps(doc).encode()

    def manifest(self) -> bytes:
        config = self.config()
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": layer.media_type,
                        "digest": layer.declared_digest or sha(layer.blob),
                        "size": layer.declared_size if layer.declared_size is not None else len(layer.blob),
                    }
                    for layer in self.layers
                ],
            }
        ).encode()

    def blobs(self) -> dict[str, bytes]:
        out = {sha(layer.blob): layer.blob for layer in self.layers}
        config = self.config()
        out[sha(config)] = config
        manifest = self.manifest()
        out[sha(manifest)] = manifest
        out.update(self.extra_blobs)
        return {k: v for k, v in out.items() if k not in self.omit_blobs}


def write_layout(root: Path, images: list[Image], *, as_index: bool = False, tag: str = "latest") -> Path:
    """An OCI layout with the images; several images become one multi-platform index."""
    blobs_dir = root / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptors = []
    for image in images:
        for digest, data in image.blobs().items():
            (blobs_dir / digest.split(":")[1]).write_bytes(data)
        manifest = image.manifest()
        platform = {"os": image.os, "architecture": image.architecture}
        if image.variant:
            platform["variant"] = image.variant
        descriptors.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(manifest),
                "size": len(manifest),
                "platform": platform,
            }
        )
    if as_index or len(images) > 1:
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors}
        ).encode()
        (blobs_dir / sha(index).split(":")[1]).write_bytes(index)
        top = [
            {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": sha(index),
                "size": len(index),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ]
    else:
        top = [{**descriptors[0], "annotations": {"org.opencontainers.image.ref.name": tag}}]
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": top}))
    return root


def archive(layout: Path, target: Path) -> Path:
    """Pack a layout directory as an oci-archive tar."""
    with tarfile.open(target, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    return target
