"""PHP packages installed by Composer, and Composer lockfiles (OSV ecosystem "Packagist").

- `.../vendor/composer/installed.json`: Composer's record of what it installed in that `vendor` directory,
  evidence "installed". Composer 1 writes a list of packages; Composer 2 an object `{"packages": [...],
  "dev": bool, "dev-package-names": [...]}`. Every package there is on disk and is reported; those Composer 2
  names as dev packages carry a `dev` metadata flag so a consumer can filter them.
- `composer.lock` outside any `vendor` directory (a library's own lockfile shipped inside `vendor` describes
  its author's checkout, not this image), evidence "lockfile": its `packages`. Its `packages-dev` are not
  reported: a production image is built with `composer install --no-dev`, which leaves them in the lockfile
  but not on disk, so reporting them would flag code the image does not hold; when they are installed,
  installed.json reports them (marked dev).

Names are lower-cased (Packagist's names are). Composer keeps a tag's spelling as the version (`v1.8.1`) while
Packagist advisories write `1.8.1`: a leading `v` before a digit is dropped, so that the same package from
installed.json and composer.lock has the same name, version and purl (`pkg:composer/<vendor>/<name>@<version>`)
and only the evidence differs. Branch checkouts (`dev-main`, `2.x-dev`) are not releases any advisory range
can name, and are skipped.

Pure: parses the bytes handed over in a FileSet, never touches the filesystem. Malformed JSON or an entry
without a name or version is a warning; a file over `max_package_db_bytes`, JSON nested deeper than Python can
parse, more than `MAX_ENTRIES` entries, and more packages than the image may hold are not read past the bound
and make the inventory Incomplete.
"""

from __future__ import annotations

import re

from scanner.ecosystems.languages import PACKAGIST
from scanner.inventory.detectors.base import (
    BoundExceeded,
    DetectContext,
    Detector,
    Extraction,
    FileSet,
    json_document,
    language_package,
)
from scanner.model.types import Evidence, RawPackage, Warning_

_INSTALLED = "/vendor/composer/installed.json"
_LOCKFILE = "/composer.lock"
MAX_ENTRIES = 100_000
# Composer's own name rule (vendor/project, lower case), loosened to accept upper case, which we lower.
_VALID_NAME = re.compile(r"[a-z0-9](?:[_.-]*[a-z0-9]+)*/[a-z0-9](?:[_.-]*[a-z0-9]+)*\Z")
_VALID_VERSION = re.compile(r"[0-9][0-9A-Za-z.+_-]{0,127}\Z")


class PhpDetector(Detector):
    name = "php"
    version = 1
    group = "language"
    per_file = True

    def required(self, path: str) -> bool:
        # Hot path (every file of every layer): one suffix check rejects almost everything.
        if path.endswith(_INSTALLED):
            return True
        return path.endswith(_LOCKFILE) and "/vendor/" not in path

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        for path, data in self.read_each(files, out, lambda path: ctx.read_database(files, path)):
            try:
                packages = _parse(path, data, out.warnings)
            except BoundExceeded as err:
                out.bound(err.where, err.message)
                continue
            for package in packages:
                if not out.add_package(package, ctx, path):
                    return out
        return out


def _parse(path: str, data: bytes, warnings: list[Warning_]) -> list[RawPackage]:
    document = json_document(path, data, warnings)
    if document is None:
        return []
    lockfile = path.endswith(_LOCKFILE)
    dev_names: set[str] = set()
    if lockfile:
        entries = document.get("packages") if isinstance(document, dict) else None
    elif isinstance(document, list):  # Composer 1
        entries = document
    elif isinstance(document, dict):  # Composer 2
        entries = document.get("packages")
        names = document.get("dev-package-names")
        if isinstance(names, list):
            dev_names = {name.lower() for name in names[:MAX_ENTRIES] if isinstance(name, str)}
    else:
        entries = None
    if entries is None:
        if not (lockfile and isinstance(document, dict)):  # a lockfile may have no `packages` at all
            warnings.append(Warning_(path, "no list of packages; skipped"))
        return []
    if not isinstance(entries, list):
        warnings.append(Warning_(path, "packages is not a list; skipped"))
        return []
    if len(entries) > MAX_ENTRIES:
        raise BoundExceeded(path, f"more than {MAX_ENTRIES} packages; not read")
    packages: list[RawPackage] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        package = _package(path, index, entry, dev_names, lockfile, warnings)
        if package is not None and (package.name, package.version) not in seen:
            seen.add((package.name, package.version))
            packages.append(package)
    return packages


def release_version(version: str) -> str:
    """A Composer version as Packagist advisories write it: `v1.8.1` -> `1.8.1`."""
    if version[:1] in "vV" and version[1:2].isdigit():
        return version[1:]
    return version


def _package(
    path: str, index: int, entry: object, dev_names: set[str], lockfile: bool, warnings: list[Warning_]
) -> RawPackage | None:
    if not isinstance(entry, dict):
        warnings.append(Warning_(path, f"package #{index} is not an object; skipped"))
        return None
    name, version = entry.get("name"), entry.get("version")
    if not isinstance(name, str) or not _VALID_NAME.match(name.lower()):
        warnings.append(Warning_(path, f"package #{index} has no valid name ({str(name)[:80]!r}); skipped"))
        return None
    name = name.lower()
    if not isinstance(version, str) or not version.strip():
        warnings.append(Warning_(path, f"package {name} has no valid version ({str(version)[:80]!r}); skipped"))
        return None
    version = version.strip()
    if version.startswith("dev-") or version.endswith("-dev"):
        return None  # a branch checkout: no advisory range names it
    version = release_version(version)
    if not _VALID_VERSION.match(version):
        warnings.append(Warning_(path, f"package {name} has no valid version ({version[:80]!r}); skipped"))
        return None
    metadata: list[tuple[str, str]] = []
    if name in dev_names:
        metadata.append(("dev", "true"))
    licence = entry.get("license")
    if isinstance(licence, list):
        text = " OR ".join(item for item in licence if isinstance(item, str))
        if text and len(text) <= 200:
            metadata.append(("license", text))
    vendor, _, project = name.partition("/")
    evidence: Evidence = "lockfile" if lockfile else "installed"
    return language_package(
        PACKAGIST, name, version, path, metadata, purl_namespace=vendor, purl_name=project, evidence=evidence
    )
