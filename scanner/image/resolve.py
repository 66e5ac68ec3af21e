"""From a root document (index or manifest) to the images to inventory; shared by every source."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from scanner.image.filerange import FileRange
from scanner.image.manifest import (
    Descriptor,
    ImageConfig,
    Platform,
    document_kind,
    parse_config,
    parse_index,
    parse_manifest,
    select_platforms,
)
from scanner.image.streams import VerifyingReader
from scanner.model.errors import ImageError, counted

MEMBER_ANNOTATION = "acrguard.member"  # docker-archive: the tar member a legacy layer lives in


@dataclass(frozen=True)
class ResolvedImage:
    reference: str
    digest: str  # manifest digest ("" for legacy docker-archive and dir:)
    index_digest: str
    media_type: str
    config_digest: str
    config: ImageConfig
    layers: tuple[Descriptor, ...]
    # Its index entry's annotations, then the manifest's (a later pair wins: the manifest's own say).
    annotations: tuple[tuple[str, str], ...] = ()


def checked_range(data: FileRange | None, digest: str, max_size: int) -> tuple[FileRange, str] | None:
    """`data` with the digest to check, if it can be read in place: a sha256 digest or none (the content's own
    digest is the SHA-256 computed while it is read), and within `max_size` (a larger one is streamed, and
    refused there with the stream's own error)."""
    if data is None:
        return None
    if (digest and not digest.startswith("sha256:")) or data.size > max_size:
        data.release()
        return None
    return data, digest


class ImageSource(ABC):
    """An adapter that can fetch an image's documents and blobs, each verified against its digest."""

    reference: str

    @abstractmethod
    def root(self) -> tuple[Any, str, str]:
        """The top document: (parsed JSON, media type, digest or "")."""

    @abstractmethod
    def document(self, descriptor: Descriptor, what: str) -> Any:
        """A manifest or index named by digest, parsed, digest verified."""

    @abstractmethod
    def open_blob(self, descriptor: Descriptor, what: str) -> VerifyingReader:
        """A blob stream; the caller reads it and calls verify()."""

    def blob_range(self, descriptor: Descriptor) -> tuple[FileRange, str] | None:
        """Where a blob lies in a local file, with the sha256 digest its content must have ("" where the source
        names none); None where it is not stored so, or has a digest of another algorithm (then: `open_blob`)."""
        return None

    def read_blob(self, descriptor: Descriptor, what: str, max_size: int) -> bytes:
        if descriptor.size > max_size:
            raise ImageError(f"{what}: {descriptor.size} bytes is over the limit of {max_size}")
        reader = self.open_blob(descriptor, what)
        data = reader.read(max_size + 1)
        reader.verify()
        return data

    def images(self, platform: Platform | None, max_document: int, max_platforms: int) -> list[ResolvedImage]:
        """Resolve the images to inventory: one for `platform`, or every platform if None."""
        doc, media_type, digest = self.root()
        kind = document_kind(doc, media_type)
        if kind == "manifest":
            return [self._image(doc, media_type, digest, "", max_document, ())]
        index = parse_index(doc, media_type, f"{self.reference}: index")
        chosen = select_platforms(index, platform)
        if len(chosen) > max_platforms:
            raise ImageError(f"{self.reference}: index lists {counted(len(chosen), 'image')}, over max_platforms")
        if not chosen:
            raise ImageError(f"{self.reference}: index lists no images")
        images = []
        for descriptor in chosen:
            child = self.document(descriptor, f"{self.reference}: manifest {descriptor.digest}")
            if document_kind(child, descriptor.media_type) != "manifest":
                raise ImageError(f"{self.reference}: nested index {descriptor.digest} is not supported")
            images.append(
                self._image(
                    child, descriptor.media_type, descriptor.digest, digest, max_document, descriptor.annotations
                )
            )
        return images

    def _image(
        self,
        doc: Any,
        media_type: str,
        digest: str,
        index_digest: str,
        max_document: int,
        entry_annotations: tuple[tuple[str, str], ...],
    ) -> ResolvedImage:
        what = f"{self.reference}: manifest {digest}".rstrip()
        manifest = parse_manifest(doc, media_type, what)
        config_bytes = self.read_blob(
            manifest.config, f"{self.reference}: config {manifest.config.digest}", max_document
        )
        config = parse_config(config_bytes, f"{self.reference}: config {manifest.config.digest}")
        return ResolvedImage(
            reference=self.reference,
            digest=digest,
            index_digest=index_digest,
            media_type=manifest.media_type,
            config_digest=manifest.config.digest,
            config=config,
            layers=manifest.layers,
            annotations=entry_annotations + manifest.annotations,
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files or connections."""
