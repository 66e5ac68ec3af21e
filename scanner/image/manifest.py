"""Manifests, indexes and image configs (pure parsing; OCI image-spec and Docker v2 schema 2)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from scanner.image.base_image import BASE_DIGEST, BASE_NAME, history_base_layers
from scanner.model.errors import ImageError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ImageError(f"platform '{text}': expected OS/ARCH[/VARIANT], e.g. linux/amd64")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def matches(self, other: Platform) -> bool:
        """`other` (from an index) satisfies this wanted platform; arm64 without variant means v8."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if not self.variant:
            return True
        default_variant = {"arm64": "v8"}.get(self.architecture, "")
        return (other.variant or default_variant) == self.variant


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageConfig:
    os: str
    architecture: str
    variant: str
    diff_ids: tuple[str, ...]
    # created_by of each history entry that made a layer (empty_layer entries dropped), in order.
    layer_history: tuple[str, ...] = field(default=())
    # Layers 0 .. base_layers-1 are the base image's, as the history shows (scanner.image.base_image); 0: unknown.
    base_layers: int = 0
    # The config's `org.opencontainers.image.base.*` labels, if any.
    base_labels: tuple[tuple[str, str], ...] = ()

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant)


def load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError(f"{what}: not valid JSON ({exc})") from None


def _annotations(raw: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in raw.items()) if isinstance(raw, dict) else ()


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ImageError(f"{what}: descriptor is not an object")
    digest = raw.get("digest")
    size = raw.get("size")
    media_type = raw.get("mediaType", "")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ImageError(f"{what}: invalid digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"{what}: invalid size {size!r} for {digest}")
    if not isinstance(media_type, str):
        raise ImageError(f"{what}: invalid mediaType for {digest}")
    platform = None
    raw_platform = raw.get("platform")
    if isinstance(raw_platform, dict):
        platform = Platform(
            str(raw_platform.get("os", "")),
            str(raw_platform.get("architecture", "")),
            str(raw_platform.get("variant", "") or ""),
        )
    return Descriptor(media_type, digest, size, platform, _annotations(raw.get("annotations")))


def document_kind(doc: Any, media_type: str) -> str:
    """'index' or 'manifest', from the declared media type or, failing that, the document's shape."""
    declared = media_type or (doc.get("mediaType", "") if isinstance(doc, dict) else "")
    if declared in INDEX_TYPES:
        return "index"
    if declared in MANIFEST_TYPES:
        return "manifest"
    if declared == DOCKER_V1_SIGNED:
        raise ImageError("Docker schema 1 manifests are not supported (deprecated since 2019)")
    if isinstance(doc, dict) and isinstance(doc.get("manifests"), list):
        return "index"
    if isinstance(doc, dict) and "config" in doc and "layers" in doc:
        return "manifest"
    raise ImageError(f"unsupported manifest media type '{declared or 'unknown'}'")


def parse_index(doc: Any, media_type: str, what: str) -> Index:
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
        raise ImageError(f"{what}: index has no manifests list")
    manifests = tuple(_descriptor(m, what) for m in doc["manifests"])
    return Index(media_type or str(doc.get("mediaType", OCI_INDEX)), manifests)


def parse_manifest(doc: Any, media_type: str, what: str) -> Manifest:
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: manifest is not an object")
    if "config" not in doc:
        raise ImageError(f"{what}: manifest has no config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{what}: manifest has no layers list")
    return Manifest(
        media_type or str(doc.get("mediaType", OCI_MANIFEST)),
        _descriptor(doc["config"], what),
        tuple(_descriptor(layer, what) for layer in layers),
        _annotations(doc.get("annotations")),
    )


def parse_config(data: bytes, what: str) -> ImageConfig:
    doc = load_json(data, what)
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: config is not an object")
    rootfs = doc.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        diff_ids = []
    history = doc.get("history")
    created: list[str] = []
    if isinstance(history, list):
        for entry in history:
            if isinstance(entry, dict) and not entry.get("empty_layer"):
                created.append(str(entry.get("created_by", "")))
    container = doc.get("config")
    labels = container.get("Labels") if isinstance(container, dict) else None
    base_labels = tuple(
        (key, str(labels[key])) for key in (BASE_NAME, BASE_DIGEST) if isinstance(labels, dict) and key in labels
    )
    return ImageConfig(
        os=str(doc.get("os", "") or ""),
        architecture=str(doc.get("architecture", "") or ""),
        variant=str(doc.get("variant", "") or ""),
        diff_ids=tuple(diff_ids),
        layer_history=tuple(created),
        base_layers=history_base_layers(history),
        base_labels=base_labels,
    )


def select_platforms(index: Index, wanted: Platform | None) -> list[Descriptor]:
    """The index entries to inventory: the one matching `wanted`, or every image entry if None.

    Attestation manifests (buildkit's `unknown/unknown` platform) are never images.
    """
    images = [
        d
        for d in index.manifests
        if not (d.platform and d.platform.os == "unknown")
        and dict(d.annotations).get("vnd.docker.reference.type") != "attestation-manifest"
    ]
    if wanted is None:
        return images
    for descriptor in images:
        if descriptor.platform is not None and wanted.matches(descriptor.platform):
            return [descriptor]
    available = ", ".join(str(d.platform) for d in images if d.platform) or "none"
    raise ImageError(f"no image for platform {wanted} in the index (available: {available})")
