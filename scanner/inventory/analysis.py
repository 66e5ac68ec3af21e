"""Detection over replayed layers: which package each layer introduced, and the final inventory.

After every layer the detectors whose files changed run again on the squashed view so far; a package
is attributed to the first layer from which it stayed present (trivy's applier does the same). At the
end every detector runs on the final view with the final OS, and language packages whose files the
OS package manager owns are marked, so later matching uses the distribution's advisory for them.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from scanner.image.content import ContentStore
from scanner.image.layers import LayerReader
from scanner.image.streams import Budget
from scanner.image.tree import Content, Dir, Tree
from scanner.inventory.detectors.base import DetectContext, Detector, Extraction
from scanner.inventory.detectors.plugins import DetectorRegistry
from scanner.model.limits import Limits
from scanner.model.types import LayerInfo, OSInfo, Package, RawPackage, Warning_


class TreeFileSet:
    def __init__(self, files: dict[str, Content]) -> None:
        self._files = files

    def paths(self) -> list[str]:
        return sorted(self._files)

    def read(self, path: str) -> bytes:
        return self._files[path].read()

    def size(self, path: str) -> int:
        return self._files[path].size

    def content(self, path: str) -> Content:
        return self._files[path]


@dataclass
class _Run:
    extraction: Extraction
    os: OSInfo | None


class Analysis:
    def __init__(self, registry: DetectorRegistry, limits: Limits, scratch_dir: str | None = None) -> None:
        self.registry = registry
        self.detectors = list(registry)
        self.limits = limits
        self.tree = Tree(limits.max_symlink_depth)
        self.store = ContentStore(limits, scratch_dir)
        self.budget = Budget(limits.max_total_bytes, limits.max_members)
        self.reader = LayerReader(self.tree, self.wanted, self.store, self.budget, limits)
        self.os: OSInfo | None = None
        self.first_seen: dict[str, dict[tuple[str, str, str, str, tuple[str, ...]], int]] = {}
        self.runs: dict[str, _Run] = {}
        self.wanted_links: set[str] = set()
        self._per_file: dict[str, dict[str, tuple[Content, Extraction]]] = {}
        self.warnings: list[Warning_] = []

    def wanted(self, path: str) -> bool:
        return any(d.required(path) for d in self.detectors)

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

    def _run(self, detector: Detector) -> Extraction:
        files = self._fileset(detector)
        if not detector.per_file:
            return self._extract(detector, files)
        # Re-parse only files whose content changed since the last run (a jar-heavy image would
        # otherwise re-read every archive after each layer that touches one).
        merged = Extraction()
        cache = self._per_file.setdefault(detector.name, {})
        fresh: dict[str, tuple[Content, Extraction]] = {}
        for path in files.paths():
            content = files.content(path)
            hit = cache.get(path)
            if hit is None or hit[0] is not content:
                hit = (content, self._extract(detector, TreeFileSet({path: content})))
            fresh[path] = hit
            merged.packages.extend(hit[1].packages)
            merged.warnings.extend(hit[1].warnings)
        self._per_file[detector.name] = fresh
        return merged

    def _extract(self, detector: Detector, files: TreeFileSet) -> Extraction:
        try:
            return detector.extract(files, DetectContext(self.os))
        except Exception as exc:  # a detector bug must not lose the rest of the inventory
            return Extraction(warnings=[Warning_(detector.ident, f"detector failed: {type(exc).__name__}: {exc}")])

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
            self.runs[detector.name] = _Run(extraction, self.os)
            previous = self.first_seen.get(detector.name, {})
            self.first_seen[detector.name] = {p.key(): previous.get(p.key(), index) for p in extraction.packages}

    def finish(self, layers: tuple[LayerInfo, ...]) -> tuple[OSInfo | None, list[Package], list[Warning_]]:
        warnings = list(self.reader.warnings) + self.warnings
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
                run = _Run(self._run(detector), self.os)
            extractions.append((detector, run.extraction))
            if detector.group == "os-packages":
                for raw in run.extraction.packages:
                    owned.update(raw.owned_files)
        for detector in self.detectors:
            if detector.group == "os" and detector.name in self.runs:
                warnings.extend(self.runs[detector.name].extraction.warnings)
        for _, extraction in extractions:
            warnings.extend(extraction.warnings)
        for detector, extraction in extractions:
            seen = self.first_seen.get(detector.name, {})
            for raw in extraction.packages:
                index = seen.get(raw.key())
                layer = layers[index] if index is not None and index < len(layers) else None
                packages.append(_package(raw, detector, layer, detector.group == "language" and _owned(raw, owned)))
        return self.os, packages, _dedupe(warnings)

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
    )


def _dedupe(warnings: list[Warning_]) -> list[Warning_]:
    return list(dict.fromkeys(warnings))
