"""One package, counted once, however many ways it is known.

A project's lockfile and the packages installed from it describe the same code: an image built with
`poetry install` or `uv sync` holds both `uv.lock` (evidence "lockfile") and each package's dist-info
(evidence "installed"). When the same package (kind, name as its ecosystem normalises it, version) is seen
both ways in one image, the installed one is kept and its locations gain the lockfile's path, so that the
package, and every finding on it, is counted once and says where each piece of evidence is. A lockfile entry
that nothing installed matches stays, with evidence "lockfile".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from scanner.ecosystems.languages import LANGUAGES
from scanner.model.types import Package

# purl type -> how that ecosystem compares names (PyPI: PEP 503; npm, Maven, Go: as spelled).
_NORMALISE: dict[str, Callable[[str], str]] = {e.purl_type: e.normalise for e in LANGUAGES if e.purl_type}

Key = tuple[str, str, str]


def identity(package: Package) -> Key:
    """(kind, normalised name, version): what makes two records the same package."""
    normalise = _NORMALISE.get(package.kind)
    return (package.kind, normalise(package.name) if normalise else package.name, package.version)


def merge_lockfile_entries(packages: list[Package]) -> list[Package]:
    """`packages` with each lockfile entry that an installed package matches folded into that package (its
    locations gain the lockfile's); order otherwise kept."""
    installed: dict[Key, list[int]] = {}
    for index, package in enumerate(packages):
        if package.evidence == "installed":
            installed.setdefault(identity(package), []).append(index)
    merged = list(packages)
    dropped: set[int] = set()
    for index, package in enumerate(packages):
        if package.evidence != "lockfile":
            continue
        matches = installed.get(identity(package))
        if not matches:
            continue
        dropped.add(index)
        for match in matches:
            extra = tuple(loc for loc in package.locations if loc not in merged[match].locations)
            if extra:
                merged[match] = replace(merged[match], locations=merged[match].locations + extra)
    return [package for index, package in enumerate(merged) if index not in dropped]
