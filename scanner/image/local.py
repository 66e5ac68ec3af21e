"""Local image sources: OCI layouts (`oci:`, `oci-archive:`) and `docker save` archives."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from scanner.image.containers import Container
from scanner.image.filerange import FileRange
from scanner.image.manifest import DOCKER_MANIFEST, Descriptor, load_json
from scanner.image.resolve import MEMBER_ANNOTATION, ImageSource, checked_range
from scanner.image.streams import VerifyingReader, file_chunks
from scanner.model.errors import ImageError, counted

REF_NAME = "org.opencontainers.image.ref.name"
_BLOB_PATH = re.compile(r"^blobs/(sha256|sha512)/([a-f0-9]{64}|[a-f0-9]{128})$")
_INDEX_MEDIA = "application/vnd.oci.image.index.v1+json"


def _blob_name(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


class _LocalSource(ImageSource):
    def __init__(self, container: Container, reference: str, ref: str, max_document: int, max_blob: int) -> None:
        self.container = container
        self.reference = reference
        self.ref = ref  # the image inside the archive or layout, if it holds several
        self.max_document = max_document
        self.max_blob = max_blob

    def close(self) -> None:
        self.container.close()


class OCILayoutSource(_LocalSource):
    """An OCI image layout in a directory or archive; `ref` picks an entry of index.json by its
    org.opencontainers.image.ref.name annotation (or `@N`, the N-th entry).

    `blobs_verified`: the writer of the layout checked every blob against the digest it is named by (the
    sandboxed child's input, written by the scan job's trusted half), so reading it does not hash the blobs
    again; sizes are still checked, and a layer's diff_id is computed and checked as ever."""

    def __init__(
        self,
        container: Container,
        reference: str,
        ref: str,
        max_document: int,
        max_blob: int,
        blobs_verified: bool = False,
    ) -> None:
        super().__init__(container, reference, ref, max_document, max_blob)
        self.blobs_verified = blobs_verified

    def _index_json(self) -> dict[str, Any]:
        if not self.container.exists("index.json"):
            raise ImageError(f"{self.reference}: no index.json (not an OCI image layout)")
        doc = load_json(self.container.read("index.json", self.max_document), f"{self.reference}: index.json")
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
            raise ImageError(f"{self.reference}: index.json lists no manifests")
        return doc

    def root(self) -> tuple[Any, str, str]:
        doc = self._index_json()
        entries = [e for e in doc["manifests"] if isinstance(e, dict)]
        chosen = self._choose(entries)
        if chosen is None:
            # Several platform entries directly in index.json: index.json is the image index.
            return doc, _INDEX_MEDIA, ""
        descriptor = Descriptor(str(chosen.get("mediaType", "")), str(chosen.get("digest", "")), 0)
        return self.document(descriptor, f"{self.reference}: manifest"), descriptor.media_type, descriptor.digest

    def _choose(self, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        if self.ref.startswith("@") and self.ref[1:].isdigit():
            n = int(self.ref[1:])
            if n >= len(entries):
                raise ImageError(f"{self.reference}: index.json has {len(entries)} entries, no @{n}")
            return entries[n]
        if self.ref:
            for entry in entries:
                annotations = entry.get("annotations") or {}
                names = {annotations.get(REF_NAME), annotations.get("io.containerd.image.name")}
                if self.ref in names or any(str(n).endswith(f":{self.ref}") for n in names if n):
                    return entry
            raise ImageError(f"{self.reference}: no image named '{self.ref}' in index.json")
        if len(entries) == 1:
            return entries[0]
        if not entries:
            raise ImageError(f"{self.reference}: index.json lists no images")
        if all(isinstance(e.get("platform"), dict) for e in entries):
            return None
        raise ImageError(
            f"{self.reference}: index.json lists {counted(len(entries), 'image')}; name one with :REF or :@N"
        )

    def document(self, descriptor: Descriptor, what: str) -> Any:
        data = self._read_verified(descriptor.digest, what, self.max_document)
        return load_json(data, what)

    def _read_verified(self, digest: str, what: str, limit: int) -> bytes:
        name = _blob_name(digest)
        if not _BLOB_PATH.match(name):
            raise ImageError(f"{what}: invalid digest '{digest}'")
        if not self.container.exists(name):
            raise ImageError(f"{what}: missing from the layout")
        reader = VerifyingReader(file_chunks(self.container.open(name)), digest, -1, limit, what)
        data = reader.read(limit + 1)
        reader.verify()
        return data

    def open_blob(self, descriptor: Descriptor, what: str) -> VerifyingReader:
        name = _blob_name(descriptor.digest)
        if not _BLOB_PATH.match(name):
            raise ImageError(f"{what}: invalid digest '{descriptor.digest}'")
        if not self.container.exists(name):
            raise ImageError(f"{what}: missing from the layout")
        handle = self.container.open(name)
        return VerifyingReader(file_chunks(handle), self._to_check(descriptor), descriptor.size, self.max_blob, what)

    def blob_range(self, descriptor: Descriptor) -> tuple[FileRange, str] | None:
        name = _blob_name(descriptor.digest)
        if not _BLOB_PATH.match(name) or not self.container.exists(name):
            return None  # open_blob says what is wrong
        return checked_range(self.container.locate(name), self._to_check(descriptor), self.max_blob)

    def _to_check(self, descriptor: Descriptor) -> str:
        return "" if self.blobs_verified else descriptor.digest


class DockerArchiveSource(_LocalSource):
    """`docker save` output: manifest.json with Config and Layers paths. Docker 25+ saves also hold an
    OCI layout; when its index.json lists images, that (content-addressed) view is used instead."""

    def __init__(self, container: Container, reference: str, ref: str, max_document: int, max_blob: int) -> None:
        super().__init__(container, reference, ref, max_document, max_blob)
        self._oci: OCILayoutSource | None = None
        self._config: tuple[str, bytes] | None = None  # (digest, bytes) of the chosen image's config
        if container.exists("index.json") and self._index_has_images():
            self._oci = OCILayoutSource(container, reference, ref, max_document, max_blob)

    def _index_has_images(self) -> bool:
        try:
            doc = load_json(self.container.read("index.json", self.max_document), "index.json")
        except ImageError:
            return False
        return isinstance(doc, dict) and isinstance(doc.get("manifests"), list) and bool(doc["manifests"])

    def root(self) -> tuple[Any, str, str]:
        if self._oci is not None:
            return self._oci.root()
        entry = self._entry()
        config_name = entry.get("Config")
        layers = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layers, list):
            raise ImageError(f"{self.reference}: manifest.json entry lacks Config or Layers")
        config = self.container.read(config_name, self.max_document)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self._config = (config_digest, config)
        layer_docs = []
        for name in layers:
            if not isinstance(name, str):
                raise ImageError(f"{self.reference}: manifest.json has a non-string layer path")
            match = _BLOB_PATH.match(name.lstrip("./"))
            digest = f"{match.group(1)}:{match.group(2)}" if match else "sha256:" + "0" * 64
            layer_docs.append(
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                    "digest": digest,
                    "size": self.container.size(name),
                    "annotations": {MEMBER_ANNOTATION: name, "acrguard.verified": "yes" if match else "no"},
                }
            )
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": layer_docs,
        }
        return manifest, DOCKER_MANIFEST, ""

    def _entry(self) -> dict[str, Any]:
        if not self.container.exists("manifest.json"):
            raise ImageError(f"{self.reference}: no manifest.json (not a docker save archive)")
        doc = load_json(self.container.read("manifest.json", self.max_document), f"{self.reference}: manifest.json")
        if not isinstance(doc, list) or not doc or not all(isinstance(e, dict) for e in doc):
            raise ImageError(f"{self.reference}: manifest.json is not a non-empty list of images")
        if self.ref.startswith("@") and self.ref[1:].isdigit():
            n = int(self.ref[1:])
            if n >= len(doc):
                raise ImageError(f"{self.reference}: archive holds {counted(len(doc), 'image')}, no @{n}")
            return dict(doc[n])
        if self.ref:
            for entry in doc:
                if self.ref in (entry.get("RepoTags") or []):
                    return dict(entry)
            raise ImageError(f"{self.reference}: no image tagged '{self.ref}' in the archive")
        if len(doc) > 1:
            raise ImageError(
                f"{self.reference}: archive holds {counted(len(doc), 'image')}; "
                "name one as docker-archive:PATH:NAME:TAG or :@N"
            )
        return dict(doc[0])

    def document(self, descriptor: Descriptor, what: str) -> Any:
        if self._oci is not None:
            return self._oci.document(descriptor, what)
        raise ImageError(f"{what}: docker save archives hold no manifests by digest")

    def open_blob(self, descriptor: Descriptor, what: str) -> VerifyingReader:
        if self._oci is not None:
            return self._oci.open_blob(descriptor, what)
        if self._config is not None and descriptor.digest == self._config[0]:
            config = self._config[1]
            return VerifyingReader(iter([config]), descriptor.digest, len(config), self.max_document, what)
        member, digest = _member(descriptor)
        if member is None:
            raise ImageError(f"{what}: unknown blob {descriptor.digest}")
        handle = self.container.open(member)
        return VerifyingReader(file_chunks(handle), digest, descriptor.size, self.max_blob, what)

    def blob_range(self, descriptor: Descriptor) -> tuple[FileRange, str] | None:
        if self._oci is not None:
            return self._oci.blob_range(descriptor)
        member, digest = _member(descriptor)
        return None if member is None else checked_range(self.container.locate(member), digest, self.max_blob)


def _member(descriptor: Descriptor) -> tuple[str | None, str]:
    """The archive member holding a layer, and the digest its content must have ("" where the archive does not
    name its blob digest, only the config's diff_id)."""
    annotations = dict(descriptor.annotations)
    digest = descriptor.digest if annotations.get("acrguard.verified") == "yes" else ""
    return annotations.get(MEMBER_ANNOTATION), digest
