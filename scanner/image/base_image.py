"""Which of an image's layers came from the image it was built on (pure).

Two witnesses, both read from the image itself (no other image is fetched):

- The OCI annotations `org.opencontainers.image.base.name` and `.base.digest`, which Docker's official images,
  `docker buildx --annotation`, Chainguard's and Red Hat's builds put on the manifest (or its index entry, or
  as config labels). They name the base but do not say how many layers it has.
- The build history. A Dockerfile's last instruction is usually `CMD` or `ENTRYPOINT`, which makes no layer
  (`empty_layer`); so is the base image's. An empty-layer `CMD`/`ENTRYPOINT` entry followed by entries that do
  make layers is where the base image ended and this image's own build began: the last such entry wins (a base
  built on another base has one of its own further up). Docker (classic and BuildKit), Buildah/Podman and kaniko
  all record these entries.

The history is believed only when its layer-making entries are exactly as many as the image's layers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from scanner.model.types import BaseImage

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
MAX_NAME = 512  # a reference is at most 255 (repository) + host + tag + digest
_DIGEST = re.compile(r"^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# `CMD ["sh"]` (BuildKit, kaniko), `/bin/sh -c #(nop)  CMD ["/bin/sh"]` (classic builder, Buildah).
_FINAL_STEP = re.compile(r"^(?:/bin/sh -c #\(nop\)\s+)?(?:CMD|ENTRYPOINT)\b")


def history_base_layers(history: Any) -> int:
    """How many layers the base image has, from a config's `history` list; 0 when it does not show."""
    if not isinstance(history, list):
        return 0
    layers = 0
    boundaries = [0]
    for entry in history:
        if not isinstance(entry, dict):
            return 0
        if entry.get("empty_layer"):
            if layers and _FINAL_STEP.match(str(entry.get("created_by", "")).lstrip()):
                boundaries.append(layers)
        else:
            layers += 1
    # The image's own final CMD has no layers after it: the base ends at the last one that has.
    return max(b for b in boundaries if b < layers) if layers else 0


def annotated_base(*sources: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(name, digest) of the base from the first source that names one; invalid values are left out (they are
    shown to people and used in remediation text: no controls, bounded)."""
    for source in sources:
        values = dict(source)
        name = str(values.get(BASE_NAME, "")).strip()
        digest = str(values.get(BASE_DIGEST, "")).strip()
        if _CONTROL.search(name) or len(name) > MAX_NAME:
            name = ""
        if not _DIGEST.match(digest):
            digest = ""
        if name or digest:
            return name, digest
    return "", ""


def base_image(layers_from_history: int, name: str, digest: str, total_layers: int) -> BaseImage | None:
    layers = layers_from_history if 0 < layers_from_history < total_layers else 0
    if not (layers or name or digest):
        return None
    return BaseImage(name=name, digest=digest, layers=layers)
