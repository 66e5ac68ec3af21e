"""The detector plugin contract.

A detector names the paths it needs (`required`) and parses bytes (`extract`). It never walks
directories, opens files or does any other I/O: the layer reader captures the files some detector
asked for and hands them over as a `FileSet`. Bad content inside a file it could read (a malformed
stanza, a header that does not parse) is a warning beside what it could read: partial failure is data.
What it could *not* read is never a warning: a file over a bound (`Limits.max_package_db_bytes`), a count
over a bound (packages, owned files, entries), a file it cannot parse at all goes into
`Extraction.incomplete`, or is raised as a `DetectorError`, and the image's inventory is Incomplete.
Any exception other than `DetectorError` and `PARSE_ERRORS` is a bug and fails the scan.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar, overload

from packageurl import PackageURL

from scanner.ecosystems.record import Ecosystem
from scanner.image.tree import ByteView
from scanner.model.errors import AcrguardError
from scanner.model.limits import Limits
from scanner.model.types import Evidence, OSInfo, RawPackage, Warning_

_Data = TypeVar("_Data", bound=ByteView)

Group = Literal["os", "os-packages", "language"]

# What parsing hostile bytes can raise past a detector's own checks (a value out of range, an index past
# the data, a truncated structure, nesting too deep for Python): the file was not read, the inventory is
# Incomplete. Everything else (TypeError, AttributeError…) is a bug, and fails the scan.
PARSE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    LookupError,
    ArithmeticError,
    struct.error,
    EOFError,
    RecursionError,
)

# What reading a broken or hostile zip (a jar, an egg) can raise: corrupt structures and streams, truncation,
# encrypted members (RuntimeError), unsupported compression methods (NotImplementedError).
ZIP_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    RuntimeError,
    ValueError,
    NotImplementedError,
)


class DetectorError(AcrguardError):
    """A file the detector could not read completely: the inventory is Incomplete. `where` names the file."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message

    def as_warning(self) -> Warning_:
        return Warning_(self.where, self.message)


class BoundExceeded(DetectorError):
    """A bound of `scanner.model.limits.Limits` (or a detector's own) was hit: the rest was not read."""


class FileSet(Protocol):
    """Read-only view of the captured files a detector asked for, keyed by absolute image path."""

    def paths(self) -> list[str]:
        """Sorted absolute paths (`/etc/os-release`) of the files present."""
        ...

    def read(self, path: str) -> bytes:
        """The whole content of one file from `paths()`; BoundExceeded if it was too large to be kept
        (`max_file_size`)."""
        ...

    def view(self, path: str) -> ByteView:
        """What `read` gives, without copying a large file's bytes into memory (a read-only map of it): for
        detectors that look at a few parts of a large file."""
        ...

    def size(self, path: str) -> int: ...

    def head(self, path: str, size: int) -> bytes:
        """The first `size` (at most 64) bytes of one file, there even when the file was too large to keep."""
        ...


@dataclass(frozen=True)
class DetectContext:
    """What a detector may know besides its files: the OS found by the `os` group (None if unknown), the
    image's bounds, and how many more packages the image may hold (`max_packages` less what the other
    detectors found)."""

    os: OSInfo | None = None
    limits: Limits = field(default_factory=Limits)
    packages_left: int | None = None  # None: limits.max_packages

    @property
    def package_budget(self) -> int:
        return self.limits.max_packages if self.packages_left is None else self.packages_left

    def read_database(self, files: FileSet, path: str) -> bytes:
        """A package database or metadata file's bytes; one over `max_package_db_bytes` is not read at all."""
        size = files.size(path)
        limit = self.limits.max_package_db_bytes
        if size > limit:
            raise BoundExceeded(path, f"{size} bytes, over the limit of {limit} (limit max_package_db_bytes)")
        return files.read(path)


@dataclass
class Extraction:
    packages: list[RawPackage] = field(default_factory=list)
    os: OSInfo | None = None  # set by `os` group detectors only
    warnings: list[Warning_] = field(default_factory=list)
    # What could not be read (a bound hit, a file that could not be parsed at all): non-empty makes the
    # inventory Incomplete. One line each, naming the file.
    incomplete: list[Warning_] = field(default_factory=list)

    def add_package(self, package: RawPackage, ctx: DetectContext, where: str) -> bool:
        """Append `package` unless the image's package budget is spent; False (and the bound recorded once)
        when it is, so that the caller stops reading."""
        if len(self.packages) >= ctx.package_budget:
            self.bound(where, f"more than {ctx.limits.max_packages} packages in the image (limit max_packages)")
            return False
        self.packages.append(package)
        return True

    def bound(self, where: str, message: str) -> None:
        entry = Warning_(where, message)
        if entry not in self.incomplete:
            self.incomplete.append(entry)


class Detector(ABC):
    """One plugin. `name` is unique in a registry; bump `version` whenever parsing changes (the version
    goes into cache keys, so a changed parser invalidates cached layer results)."""

    name: ClassVar[str]
    version: ClassVar[int]
    group: ClassVar[Group]
    # True when each file is parsed on its own (no cross-file logic): the core may then call extract
    # with one file at a time and reuse results for files that did not change between layers.
    per_file: ClassVar[bool] = False
    # True when a package whose file an OS package owns is dropped rather than marked `os_owned`: what the
    # detector reads (a compiled binary) is the OS package itself, assessed through the distribution.
    skip_os_owned: ClassVar[bool] = False
    # The first bytes every file this detector reads starts with ("" for any): a detector that wants most
    # files by name (binaries have no suffix) gets only those with the magic kept, so an image full of other
    # extensionless files does not fill the capture budget.
    magic: ClassVar[bytes] = b""

    def magic_of(self, path: str) -> bytes:
        """The magic of the file at `path`, for a detector whose files are of several kinds."""
        return self.magic

    @abstractmethod
    def required(self, path: str) -> bool:
        """True if this detector needs the file at `path` (absolute, normalised, no trailing slash)."""

    @abstractmethod
    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        """Parse the files: malformed content is a warning, what could not be read is `incomplete` (or a
        raised `DetectorError`); see the module's docstring."""

    @property
    def ident(self) -> str:
        return f"{self.name}@{self.version}"

    def own_paths(self, files: FileSet) -> Iterator[str]:
        """This detector's files, in order: the FileSet may also hold files other detectors asked for."""
        return (path for path in files.paths() if self.required(path))

    @overload
    def read_each(self, files: FileSet, out: Extraction) -> Iterator[tuple[str, bytes]]: ...
    @overload
    def read_each(
        self, files: FileSet, out: Extraction, read: Callable[[str], _Data]
    ) -> Iterator[tuple[str, _Data]]: ...

    def read_each(
        self, files: FileSet, out: Extraction, read: Callable[[str], ByteView] | None = None
    ) -> Iterator[tuple[str, ByteView]]:
        """Each of this detector's files with its bytes (`read`, default `files.read`). A file that could not
        be read makes `out` incomplete where `unread_matters` says it could have held packages."""
        for path in self.own_paths(files):
            try:
                data = (read or files.read)(path)
            except DetectorError as err:
                if self.unread_matters(files, path):
                    out.bound(err.where, err.message)
                continue
            yield path, data

    def unread_matters(self, files: FileSet, path: str) -> bool:
        """Whether an unread file of this detector's makes the inventory incomplete (by default, always)."""
        del files, path
        return True


class FixedPathDetector(Detector, ABC):
    """A detector whose files live at known absolute paths (package databases, release files)."""

    paths: ClassVar[frozenset[str]]

    def required(self, path: str) -> bool:
        return path in self.paths


def text_lines(data: bytes) -> Iterator[str]:
    """The lines of `data` as `bytes.decode(errors="replace").splitlines()` gives them, one at a time: the
    file's bytes are held once, never a list of every line."""
    for raw in io.BytesIO(data):
        # A chunk ends at "\n", which no UTF-8 sequence contains: decoding it alone decodes like the whole.
        yield from raw.decode("utf-8", errors="replace").splitlines()


class MemoryFileSet:
    """A FileSet over a dict; used by tests and by the orchestrator for small views."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._files = dict(files)

    def paths(self) -> list[str]:
        return sorted(self._files)

    def read(self, path: str) -> bytes:
        return self._files[path]

    def view(self, path: str) -> ByteView:
        return self._files[path]

    def size(self, path: str) -> int:
        return len(self._files[path])

    def head(self, path: str, size: int) -> bytes:
        return self._files[path][:size]


def language_package(
    ecosystem: Ecosystem,
    name: str,
    version: str,
    path: str,
    metadata: list[tuple[str, str]],
    *,
    purl_namespace: str = "",
    purl_name: str = "",
    evidence: Evidence = "installed",
) -> RawPackage:
    """A package of a language ecosystem: its own source, found at one metadata file or archive. Its kind and
    purl type are the ecosystem's; the purl names it `purl_namespace`/`purl_name` (default: `name`); `evidence`
    says how the file knows it (installed metadata, a lockfile, a binary's build info, a runtime's own files)."""
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
        evidence=evidence,
    )


def json_document(path: str, data: bytes, warnings: list[Warning_]) -> Any:
    """The JSON in a file, or None (with a warning naming the file) when it is not JSON. Nesting past the
    parser's recursion limit is a bound: the file was not read, the inventory is Incomplete."""
    try:
        # bytes input: json detects UTF-8/16/32 and a UTF-8 BOM by itself (MSBuild writes deps.json with a BOM).
        return json.loads(data)
    except RecursionError:
        raise BoundExceeded(path, "JSON nested deeper than the parser's recursion limit; not read") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError both derive from it
        warnings.append(Warning_(path, f"malformed JSON ({err}); skipped"))
        return None


def json_object(path: str, data: bytes, warnings: list[Warning_]) -> dict[str, Any] | None:
    """`json_document`, when it is an object; None with a warning otherwise."""
    document = json_document(path, data, warnings)
    if document is not None and not isinstance(document, dict):
        warnings.append(Warning_(path, "JSON document is not an object; skipped"))
        return None
    return document
