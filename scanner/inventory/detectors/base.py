"""The detector plugin contract.

A detector names the paths it needs (`required`) and parses bytes (`extract`). It never walks
directories, opens files or does any other I/O: the layer reader captures the files some detector
asked for and hands them over as a `FileSet`. A detector never raises for bad content: it returns
what it could read plus warnings (partial failure is data).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

from packageurl import PackageURL

from scanner.ecosystems.record import Ecosystem
from scanner.model.types import OSInfo, RawPackage, Warning_

Group = Literal["os", "os-packages", "language"]


class FileSet(Protocol):
    """Read-only view of the captured files a detector asked for, keyed by absolute image path."""

    def paths(self) -> list[str]:
        """Sorted absolute paths (`/etc/os-release`) of the files present."""
        ...

    def read(self, path: str) -> bytes:
        """The whole content of one file from `paths()`."""
        ...

    def size(self, path: str) -> int: ...


@dataclass(frozen=True)
class DetectContext:
    """What a detector may know besides its files: the OS found by the `os` group (None if unknown)."""

    os: OSInfo | None = None


@dataclass
class Extraction:
    packages: list[RawPackage] = field(default_factory=list)
    os: OSInfo | None = None  # set by `os` group detectors only
    warnings: list[Warning_] = field(default_factory=list)


class Detector(ABC):
    """One plugin. `name` is unique in a registry; bump `version` whenever parsing changes (the version
    goes into cache keys, so a changed parser invalidates cached layer results)."""

    name: ClassVar[str]
    version: ClassVar[int]
    group: ClassVar[Group]
    # True when each file is parsed on its own (no cross-file logic): the core may then call extract
    # with one file at a time and reuse results for files that did not change between layers.
    per_file: ClassVar[bool] = False

    @abstractmethod
    def required(self, path: str) -> bool:
        """True if this detector needs the file at `path` (absolute, normalised, no trailing slash)."""

    @abstractmethod
    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        """Parse the files. Must not raise for malformed content."""

    @property
    def ident(self) -> str:
        return f"{self.name}@{self.version}"


class FixedPathDetector(Detector, ABC):
    """A detector whose files live at known absolute paths (package databases, release files)."""

    paths: ClassVar[frozenset[str]]

    def required(self, path: str) -> bool:
        return path in self.paths


class MemoryFileSet:
    """A FileSet over a dict; used by tests and by the orchestrator for small views."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._files = dict(files)

    def paths(self) -> list[str]:
        return sorted(self._files)

    def read(self, path: str) -> bytes:
        return self._files[path]

    def size(self, path: str) -> int:
        return len(self._files[path])


def language_package(
    ecosystem: Ecosystem,
    name: str,
    version: str,
    path: str,
    metadata: list[tuple[str, str]],
    *,
    purl_namespace: str = "",
    purl_name: str = "",
) -> RawPackage:
    """A package of a language ecosystem: its own source, found at one metadata file or archive. Its kind and
    purl type are the ecosystem's; the purl names it `purl_namespace`/`purl_name` (default: `name`)."""
    purl = PackageURL(
        type=ecosystem.purl_type, namespace=purl_namespace or None, name=purl_name or name, version=version
    )
    return RawPackage(
        name=name,
        version=version,
        ecosystem=ecosystem.name,
        purl=str(purl.to_string()),
        source_name=name,
        source_version=version,
        locations=(path,),
        kind=ecosystem.purl_type,
        metadata=tuple(metadata),
    )
