"""Case-insensitive glob matching for disable rules and gates: packages by name or purl, images by repository
or registry. Globs arrive case-folded (`FieldChecks.globs`); values are folded here."""

from __future__ import annotations

from fnmatch import fnmatchcase

from scanner.model.types import Package


def package_matches(package: Package, globs: tuple[str, ...]) -> bool:
    """A `pkg:` glob against the purl, any other against the binary or the source name: a Debian fix is
    published for the source package (openssl) while the image holds binaries (libssl3); either may be named."""
    names = {package.name.casefold(), package.source_name.casefold()} - {""}
    purl = package.purl.casefold()
    for glob in globs:
        if glob.startswith("pkg:"):
            if purl and fnmatchcase(purl, glob):
                return True
        elif any(fnmatchcase(n, glob) for n in names):
            return True
    return False


def name_matches(value: str, globs: tuple[str, ...]) -> bool:
    """An empty value (an image with no repository: a local archive) matches no glob, not even "*"."""
    folded = value.casefold()
    return bool(folded) and any(fnmatchcase(folded, g) for g in globs)
