"""The trusted half: resolve a reference and copy one image's config and layer blobs, digest-verified,
into a fresh OCI layout the sandbox reads. Layers are copied as opaque bytes, never decompressed or
parsed here; only the registry's JSON documents (manifest, index, config) are read, to know what to copy.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner.image.local import DockerArchiveSource, OCILayoutSource
from scanner.image.manifest import DOCKER_MANIFEST, OCI_MANIFEST, Descriptor
from scanner.image.reference import LocalReference
from scanner.image.resolve import ImageSource, ResolvedImage
from scanner.image.streams import VerifyingReader
from scanner.inventory.build import DEFAULT_PLATFORM, ScanOptions, open_source
from scanner.model.errors import AcrguardError
from scanner.sandbox.errors import JobError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_CONFIG_TYPES = {
    DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
    OCI_MANIFEST: "application/vnd.oci.image.config.v1+json",
}
_VERIFIED = "acrguard.verified"
# Layers copied at once from a registry: the next blob is fetched while the current one streams (per-blob
# latency, redirects and TCP ramp-up overlap), without a connection per layer of a 100-layer image. Local
# sources are copied one layer at a time: their blobs may share one file handle (an image archive).
PARALLEL_COPIES = 2


@dataclass(frozen=True)
class FetchedImage:
    """What the trusted side knows about the image; the sandbox's inventory is labelled with it."""

    reference: str
    digest: str
    index_digest: str
    layout: Path


class _Recording(ImageSource):
    """Delegates to a source and keeps the small blobs `images()` reads (the config), so the config is
    fetched once and copied byte for byte."""

    def __init__(self, inner: ImageSource) -> None:
        self.inner = inner
        self.reference = inner.reference
        self.small: dict[str, tuple[Descriptor, bytes]] = {}

    def root(self) -> tuple[Any, str, str]:
        return self.inner.root()

    def document(self, descriptor: Descriptor, what: str) -> Any:
        return self.inner.document(descriptor, what)

    def open_blob(self, descriptor: Descriptor, what: str) -> VerifyingReader:
        return self.inner.open_blob(descriptor, what)

    def read_blob(self, descriptor: Descriptor, what: str, max_size: int) -> bytes:
        data = super().read_blob(descriptor, what, max_size)
        self.small[descriptor.digest] = (descriptor, data)
        return data


@dataclass
class OpenedImage:
    """An image whose manifest and config are resolved (digest-checked) and whose layers are not yet
    fetched: the point where the layer-chain cache can stop the job. Close it (or use `with`)."""

    source: ImageSource
    recording: _Recording
    image: ResolvedImage

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> OpenedImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_image(reference: str, options: ScanOptions) -> OpenedImage:
    """Resolve `reference` (one platform) to its manifest and config; no layer is read."""
    try:
        source = open_source(reference, options)
    except AcrguardError as exc:
        raise JobError(f"fetch: {exc}") from None
    if isinstance(source, LocalReference):
        raise JobError(f"fetch: {reference}: dir: references hold no image to copy; use acrguard sbom")
    recording = _Recording(source)
    try:
        image = _resolve(recording, reference, options)
    except BaseException:
        source.close()
        raise
    return OpenedImage(source, recording, image)


def _resolve(recording: _Recording, reference: str, options: ScanOptions) -> ResolvedImage:
    limits = options.limits
    try:
        wanted = options.platform or DEFAULT_PLATFORM
        image = recording.images(wanted, limits.max_document_size, limits.max_platforms)[0]
    except AcrguardError as exc:
        raise JobError(f"fetch: {exc}") from None
    if len(image.layers) > limits.max_layers:
        raise JobError(f"fetch: {reference}: {len(image.layers)} layers, over the limit of {limits.max_layers}")
    return image


def copy_image(opened: OpenedImage, dest: Path, skip_layers: int = 0) -> FetchedImage:
    """Write the opened image as an OCI layout in the empty directory `dest` (layers streamed, verified). The
    first `skip_layers` layers are listed but not fetched: the layer-prefix cache replays them from a state."""
    image = opened.image
    try:
        blobs = dest / "blobs"
        config = _config_descriptor(opened.recording, image, blobs)
        layers = _copy_layers(opened.source, image, blobs, skip_layers)
    except JobError:
        raise
    except AcrguardError as exc:
        raise JobError(f"fetch: {exc}") from None
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": image.media_type, "config": config, "layers": layers},
        sort_keys=True,
    ).encode()
    manifest_digest = _write_blob(blobs, manifest)
    entry = {"mediaType": image.media_type, "digest": manifest_digest, "size": len(manifest)}
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}))
    return FetchedImage(image.reference, image.digest, image.index_digest, dest)


def fetch_image(reference: str, options: ScanOptions, dest: Path) -> FetchedImage:
    """Write the image `reference` names (one platform) as an OCI layout in the empty directory `dest`."""
    with open_image(reference, options) as opened:
        return copy_image(opened, dest)


def _config_descriptor(recording: _Recording, image: ResolvedImage, blobs: Path) -> dict[str, Any]:
    found = recording.small.get(image.config_digest)
    if found is None:
        raise JobError(f"fetch: {image.reference}: config {image.config_digest} was not read")
    descriptor, data = found
    _write_blob(blobs, data)
    media_type = descriptor.media_type or _CONFIG_TYPES.get(image.media_type, _CONFIG_TYPES[OCI_MANIFEST])
    return {"mediaType": media_type, "digest": image.config_digest, "size": len(data)}


def _copy_layers(source: ImageSource, image: ResolvedImage, blobs: Path, skip: int) -> list[dict[str, Any]]:
    """Every layer of `image` from `skip` on, in manifest order, PARALLEL_COPIES at a time from a registry
    (the first failure, in that order, is raised once the copies under way have ended, and the ones not started
    are not); the first `skip` only listed."""
    listed = [{"mediaType": d.media_type, "digest": d.digest, "size": d.size} for d in image.layers[:skip]]
    wanted = list(enumerate(image.layers))[skip:]
    if isinstance(source, OCILayoutSource | DockerArchiveSource):
        return listed + [_copy_layer(source, image, i, d, blobs) for i, d in wanted]
    with ThreadPoolExecutor(PARALLEL_COPIES, thread_name_prefix="acrguard-fetch") as pool:
        futures = [pool.submit(_copy_layer, source, image, i, d, blobs) for i, d in wanted]
        try:
            return listed + [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _copy_layer(
    source: ImageSource, image: ResolvedImage, i: int, descriptor: Descriptor, blobs: Path
) -> dict[str, Any]:
    """Stream one layer blob to the layout. The source's VerifyingReader checks size and digest; a blob
    without a sha256 digest to check (legacy docker-save layers; sha512) is hashed here for its layout name."""
    what = f"{image.reference}: layer {descriptor.digest or f'#{i}'}"
    reader = source.open_blob(descriptor, what)
    checked = reader.checked_digest
    hasher = None if checked.startswith("sha256:") else hashlib.sha256()
    blobs.joinpath("sha256").mkdir(parents=True, exist_ok=True)
    partial = blobs / "sha256" / f".partial-{i}"
    size = 0
    with partial.open("wb") as out:
        while chunk := reader.read(1 << 20):
            if hasher is not None:
                hasher.update(chunk)
            out.write(chunk)
            size += len(chunk)
        reader.verify()
    digest = checked if hasher is None else "sha256:" + hasher.hexdigest()
    os.replace(partial, blobs / "sha256" / digest.removeprefix("sha256:"))
    entry: dict[str, Any] = {"mediaType": descriptor.media_type, "digest": digest, "size": size}
    if dict(descriptor.annotations).get(_VERIFIED) == "no":
        # The inventory names such layers by diff_id (as `acrguard sbom` does); carry the mark over.
        entry["annotations"] = {_VERIFIED: "no"}
    return entry


def _write_blob(blobs: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    blobs.joinpath("sha256").mkdir(parents=True, exist_ok=True)
    (blobs / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"
