"""Detection over replayed layers: which package each layer introduced, and the final inventory.

After every layer the detectors whose files changed run again on the squashed view so far; a package
is attributed to the first layer from which it stayed present (trivy's applier does the same). At the
end every detector runs on the final view with the final OS, and language packages whose files the
OS package manager owns are marked, so later matching uses the distribution's advisory for them (or, for a
detector that says `skip_os_owned`, dropped: a Go binary an OS package ships is that package).

Failing closed: a detector run that raises what the detector contract allows (`DetectorError`, a
`PARSE_ERRORS` exception), runs out of memory or reports what it could not read is incomplete: it keeps,
besides its own packages, those the detector reported for the layers below (a layer that makes a
database unreadable must not hide what was known before it). `incomplete` lists what the final view
could not read, which makes the inventory Incomplete. Any other exception is a bug and propagates: the
scan fails. Packages are bounded per image (`max_packages`): each run gets what the others left.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from scanner.image.content import ContentStore
from scanner.image.layers import LayerReader
from scanner.image.streams import Budget
from scanner.image.tree import ByteView, Content, Dir, Tree, Unread
from scanner.inventory.detectors.base import (
    PARSE_ERRORS,
    BoundExceeded,
    DetectContext,
    Detector,
    DetectorError,
    Extraction,
)
from scanner.inventory.detectors.plugins import DetectorRegistry
from scanner.inventory.evidence import merge_lockfile_entries
from scanner.model.errors import one_line
from scanner.model.limits import Limits
from scanner.model.types import LayerInfo, OSInfo, Package, RawPackage, Warning_


class TreeFileSet:
    def __init__(self, files: dict[str, Content]) -> None:
        self._files = files

    def paths(self) -> list[str]:
        return sorted(self._files)

    def read(self, path: str) -> bytes:
        content = self._files[path]
        if isinstance(content, Unread):  # over max_file_size: the detector cannot read it, and must say so
            raise BoundExceeded(path, f"{content.size} bytes is over max_file_size: not read")
        return content.read()

    def view(self, path: str) -> ByteView:
        content = self._files[path]
        if isinstance(content, Unread):
            raise BoundExceeded(path, f"{content.size} bytes is over max_file_size: not read")
        return content.view()

    def head(self, path: str, size: int) -> bytes:
        content = self._files[path]
        return content.head[:size] if isinstance(content, Unread) else bytes(content.view()[:size])

    def size(self, path: str) -> int:
        return self._files[path].size

    def content(self, path: str) -> Content:
        return self._files[path]


@dataclass
class Run:
    extraction: Extraction
    os: OSInfo | None


class Analysis:
    def __init__(
        self, registry: DetectorRegistry, limits: Limits, scratch_dir: str | None = None, budget: Budget | None = None
    ) -> None:
        self.registry = registry
        self.detectors = list(registry)
        self.limits = limits
        self.tree = Tree(limits.max_symlink_depth)
        self.store = ContentStore(limits, scratch_dir)
        self.budget = budget or Budget(limits.max_total_bytes, limits.max_members)
        self.reader = LayerReader(self.tree, self.wanted, self.store, self.budget, limits, magic=self.magic)
        self.os: OSInfo | None = None
        self.first_seen: dict[str, dict[tuple[str, str, str, str, tuple[str, ...]], int]] = {}
        self.runs: dict[str, Run] = {}
        self.wanted_links: set[str] = set()
        self.per_file: dict[str, dict[str, tuple[Content, Extraction]]] = {}
        self.warnings: list[Warning_] = []
        # What the final view could not read (set by `finish`); non-empty: the inventory is Incomplete.
        self.incomplete: list[Warning_] = []

    def wanted(self, path: str) -> bool:
        return any(d.required(path) for d in self.detectors)

    def magic(self, path: str) -> bytes:
        """The prefix a wanted file must start with to be kept: the detectors' shared magic when every one
        wanting it declares the same, else "" (keep whatever it holds)."""
        magics = {d.magic_of(path) for d in self.detectors if d.required(path)}
        return magics.pop() if len(magics) == 1 else b""

    def _fileset(self, detector: Detector) -> TreeFileSet:
        files = {p: f.content for p, f in self.tree.files.items() if detector.required(p)}
        for link_path in sorted(self.wanted_links):
            if link_path in files or not detector.required(link_path):
                continue
            real = self.tree.resolve(link_path)
            node = self.tree.files.get(real) if real else None
            if real in files:
                continue  # the detector already sees the file under its own path: report it once
            if node is not None:
                files[link_path] = node.content
            elif real is not None and isinstance(self.tree.lookup(real), Dir):
                continue  # a link to a directory (merged-/usr /bin -> usr/bin): not a file anyone wants
            elif detector.group != "language":
                self.warnings.append(Warning_(link_path, "symlink to a file that is missing or was not read"))
        return TreeFileSet(files)

    def _context(self, detector: Detector, used: int = 0) -> DetectContext:
        """The detector's context: the OS so far, the limits, and the packages the image still has room for
        (the others' current runs and `used` already counted)."""
        others = sum(len(run.extraction.packages) for name, run in self.runs.items() if name != detector.name)
        return DetectContext(self.os, self.limits, max(self.limits.max_packages - others - used, 0))

    def _run(self, detector: Detector) -> Extraction:
        files = self._fileset(detector)
        previous = self.runs.get(detector.name)
        if not detector.per_file:
            return self._extract(detector, files, self._context(detector), previous.extraction if previous else None)
        # Re-parse only files whose content changed since the last run (a jar-heavy image would
        # otherwise re-read every archive after each layer that touches one).
        merged = Extraction()
        cache = self.per_file.setdefault(detector.name, {})
        fresh: dict[str, tuple[Content, Extraction]] = {}
        budget = self._context(detector).package_budget
        for path in files.paths():
            room = budget - len(merged.packages)
            if room <= 0:
                # The image is full: the files left are not parsed (nor kept, so a later run tries again).
                merged.bound(detector.ident, f"more than {self.limits.max_packages} packages (limit max_packages)")
                break
            content = files.content(path)
            hit = cache.get(path)
            if hit is None or hit[0] is not content:
                one = TreeFileSet({path: content})
                ctx = self._context(detector, len(merged.packages))
                hit = (content, self._extract(detector, one, ctx, hit[1] if hit is not None else None, path))
            fresh[path] = hit
            found = hit[1]
            if len(found.packages) > room:
                merged.bound(path, f"more than {self.limits.max_packages} packages (limit max_packages)")
            merged.packages.extend(found.packages[:room])
            merged.warnings.extend(found.warnings)
            merged.incomplete.extend(found.incomplete)
        self.per_file[detector.name] = fresh
        return merged

    def _extract(
        self, detector: Detector, files: TreeFileSet, ctx: DetectContext, previous: Extraction | None, where: str = ""
    ) -> Extraction:
        """One run of `detector`. What the contract lets it raise (and running out of memory) is not a
        warning but an incomplete run; anything else is a bug and propagates. An incomplete run keeps what
        `previous` (the run over the layers below) found besides its own: a layer that makes a database
        unreadable must not hide the packages known before it."""
        try:
            result = detector.extract(files, ctx)
        except DetectorError as err:
            result = Extraction(incomplete=[err.as_warning()])
        except MemoryError:
            result = Extraction(incomplete=[Warning_(where or detector.ident, f"{detector.ident} ran out of memory")])
        except PARSE_ERRORS as err:
            problem = f"{detector.ident} could not parse it: {_describe(err)}"
            result = Extraction(incomplete=[Warning_(where or detector.ident, problem)])
        if not result.incomplete or previous is None:
            return result
        found = {p.key() for p in result.packages}
        kept = [p for p in previous.packages if p.key() not in found]
        incomplete = _dedupe([*result.incomplete, *previous.incomplete])
        return Extraction([*result.packages, *kept], result.os or previous.os, result.warnings, incomplete)

    def after_layer(self, index: int) -> None:
        touched = self.tree.take_touched()
        for path in touched:
            if path in self.tree.links and self.wanted(path):
                self.wanted_links.add(path)
            else:
                self.wanted_links.discard(path)
        dirty = [d for d in self.detectors if any(d.required(p) for p in touched)]
        for detector in sorted(dirty, key=lambda d: d.group != "os"):
            extraction = self._run(detector)
            if detector.group == "os":
                self.os = extraction.os  # sorted first: package detectors below see this layer's OS
            self.runs[detector.name] = Run(extraction, self.os)
            previous = self.first_seen.get(detector.name, {})
            self.first_seen[detector.name] = {p.key(): previous.get(p.key(), index) for p in extraction.packages}

    def finish(self, layers: tuple[LayerInfo, ...]) -> tuple[OSInfo | None, list[Package], list[Warning_]]:
        """The OS, the packages and the warnings of the final view; `incomplete` is set as well."""
        warnings = list(self.reader.warnings) + self.warnings
        incomplete: list[Warning_] = []
        packages: list[Package] = []
        owned: set[str] = set()
        extractions: list[tuple[Detector, Extraction]] = []
        for detector in self.detectors:
            if detector.group == "os":
                continue
            run = self.runs.get(detector.name)
            if run is None:
                continue
            if run.os != self.os:  # the OS became known (or changed) after this detector last ran
                run = Run(self._run(detector), self.os)
            extractions.append((detector, run.extraction))
            if detector.group == "os-packages":
                for raw in run.extraction.packages:
                    owned.update(raw.owned_files)
        for detector in self.detectors:
            if detector.group == "os" and detector.name in self.runs:
                warnings.extend(self.runs[detector.name].extraction.warnings)
                incomplete.extend(self.runs[detector.name].extraction.incomplete)
        for _, extraction in extractions:
            warnings.extend(extraction.warnings)
            incomplete.extend(extraction.incomplete)
        for detector, extraction in extractions:
            seen = self.first_seen.get(detector.name, {})
            for raw in extraction.packages:
                os_owned = detector.group == "language" and _owned(raw, owned)
                if os_owned and detector.skip_os_owned:
                    continue  # the OS package's own binary: assessed through the distribution
                if len(packages) == self.limits.max_packages:
                    # Each run was given what the others left, but a run kept from below may not have been.
                    limit = self.limits.max_packages
                    incomplete.append(Warning_(detector.ident, f"more than {limit} packages (limit max_packages)"))
                    break
                index = seen.get(raw.key())
                layer = layers[index] if index is not None and index < len(layers) else None
                packages.append(_package(raw, detector, layer, os_owned))
        self.incomplete = _dedupe(incomplete)
        # A lockfile entry that an installed package matches is that package: counted once.
        return self.os, merge_lockfile_entries(packages), _dedupe(warnings)

    def close(self) -> None:
        self.store.close()


def _owned(raw: RawPackage, owned: set[str]) -> bool:
    return any(loc in owned or posixpath.dirname(loc) in owned for loc in raw.locations)


def _package(raw: RawPackage, detector: Detector, layer: LayerInfo | None, os_owned: bool) -> Package:
    return Package(
        name=raw.name,
        version=raw.version,
        ecosystem=raw.ecosystem,
        purl=raw.purl,
        source_name=raw.source_name or raw.name,
        source_version=raw.source_version or raw.version,
        arch=raw.arch,
        locations=raw.locations,
        kind=raw.kind,
        detector=detector.ident,
        layer=layer,
        os_owned=os_owned,
        metadata=raw.metadata,
        evidence=raw.evidence,
    )


def _dedupe(warnings: list[Warning_]) -> list[Warning_]:
    return list(dict.fromkeys(warnings))


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {one_line(err, 200)}"
