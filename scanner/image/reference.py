"""skopeo-style image references (pure).

Transports: `docker-archive:PATH[:REF]`, `oci-archive:PATH[:REF]`, `oci:DIR[:REF]`, `dir:PATH` (an
unpacked root filesystem: not skopeo's `dir:` layout, see README), `docker://NAME` and a bare registry
reference `HOST[:PORT]/REPO[:TAG|@DIGEST]`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from scanner.model.errors import ReferenceError_

LOCAL_TRANSPORTS = ("docker-archive", "oci-archive", "oci", "dir")
DEFAULT_REGISTRY = "docker.io"

# distribution/reference grammar, simplified: lower-case path components separated by / . _ -
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


@dataclass(frozen=True)
class LocalReference:
    transport: str  # docker-archive | oci-archive | oci | dir
    path: str
    ref: str = ""  # tag / image name inside the archive or layout, or "@N" index

    def __str__(self) -> str:
        return f"{self.transport}:{self.path}" + (f":{self.ref}" if self.ref else "")


@dataclass(frozen=True)
class RegistryReference:
    registry: str  # host[:port]
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def tag_or_digest(self) -> str:
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


ImageReference = LocalReference | RegistryReference


def parse_reference(text: str) -> ImageReference:
    """Parse a reference; a malformed one raises ReferenceError_ naming what is wrong."""
    if not text or text != text.strip():
        raise ReferenceError_(f"image reference '{text}': empty or surrounded by white space")
    transport, sep, rest = text.partition(":")
    if sep and transport in LOCAL_TRANSPORTS:
        return _parse_local(transport, rest, text)
    if text.startswith("docker://"):
        return parse_registry_reference(text[len("docker://") :])
    return parse_registry_reference(text)


def _parse_local(transport: str, rest: str, text: str) -> LocalReference:
    if not rest:
        raise ReferenceError_(f"image reference '{text}': {transport}: needs a path")
    if transport == "dir" or os.path.exists(rest) or ":" not in rest:
        return LocalReference(transport, rest)
    # PATH:REF where PATH exists; a path that itself holds ':' is taken whole when it exists (above).
    path, _, ref = rest.rpartition(":")
    if transport == "docker-archive" and ":" in path and not os.path.exists(path):
        # docker-archive:PATH:NAME:TAG: the reference may hold a ':' of its own.
        first, _, tail = rest.partition(":")
        path, ref = first, tail
    return LocalReference(transport, path, ref)


def parse_registry_reference(text: str) -> RegistryReference:
    name, digest = text, ""
    if "@" in text:
        name, _, digest = text.partition("@")
        if not _DIGEST.match(digest):
            raise ReferenceError_(f"image reference '{text}': invalid digest '{digest}'")
    tag = ""
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise ReferenceError_(f"image reference '{text}': invalid tag '{tag}'")
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        registry, repo_parts = first, parts[1:]
    else:
        registry, repo_parts = DEFAULT_REGISTRY, parts
        if len(parts) == 1:
            repo_parts = ["library", *parts]
    for component in repo_parts:
        if not _REPO_COMPONENT.match(component):
            raise ReferenceError_(f"image reference '{text}': invalid repository component '{component}'")
    if not tag and not digest:
        tag = "latest"
    return RegistryReference(registry, "/".join(repo_parts), tag, digest)
