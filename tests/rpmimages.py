"""Images of rpm distributions built with real rpm tooling, for tests that match them against advisories.

`rpmbuild` makes empty packages with the given name, epoch, version, release and source package (one spec per
source package, each binary a subpackage, so the binaries' SOURCERPM is the source's as in a real
distribution), `rpm --justdb` records them in a fresh rpm database (SQLite, Debian's rpm default), and the
database goes into a one-layer OCI layout with the distribution's release files. Built once per content: the
layouts are cached under `.cache/acrguard-tests/rpm-images/` keyed by a hash of what went in.

Debian's package `rpm` provides both tools; `scripts/install-system-deps.sh` installs it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from tests import ocibuild

# Empty packages have no files, so no build-id links either; saying so keeps rpmbuild from warning.
_NO_ID_LINKS = "_build_id_links none"
CACHE = Path(__file__).resolve().parents[1] / ".cache" / "acrguard-tests" / "rpm-images"


@dataclass(frozen=True)
class Rpm:
    """One installed binary package. `source` is the source package's name (default: the package's own);
    the source RPM recorded is `<source>-<version>-<release>.src.rpm`, as rpmbuild writes it."""

    name: str
    version: str
    release: str
    epoch: int | None = None
    source: str = ""
    arch: str = "x86_64"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run scripts/install-system-deps.sh (Debian package `rpm`)")
    return path


def _spec(source: str, packages: list[Rpm]) -> str:
    first = packages[0]
    lines = [
        f"Name: {source}",
        f"Version: {first.version}",
        f"Release: {first.release}",
        *([f"Epoch: {first.epoch}"] if first.epoch is not None else []),
        "Summary: test package",
        "License: MIT",
        f"BuildArch: {first.arch}",
        "%description",
        "test package",
    ]
    own = any(p.name == source for p in packages)
    for package in packages:
        if package.name == source:
            continue
        lines += [f"%package -n {package.name}", "Summary: test subpackage", f"%description -n {package.name}", "test"]
    if own:
        lines += ["%files"]
    for package in packages:
        if package.name != source:
            lines += [f"%files -n {package.name}"]
    return "\n".join(lines) + "\n"


def build_rpmdb(packages: Iterable[Rpm], target: Path) -> Path:
    """An rpm database (directory with `rpmdb.sqlite`) at `target` that records exactly these packages."""
    rpmbuild, rpm = _tool("rpmbuild"), _tool("rpm")
    groups: dict[tuple[str, str, str, int | None, str], list[Rpm]] = {}
    for package in packages:
        key = (package.source or package.name, package.version, package.release, package.epoch, package.arch)
        groups.setdefault(key, []).append(package)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rpmbuild-") as scratch:
        top = Path(scratch)
        for (source, *_), members in groups.items():
            spec = top / f"{source}.spec"
            spec.write_text(_spec(source, members))
            subprocess.run(
                [rpmbuild, "-bb", "--quiet", "--define", f"_topdir {top}", "--define", _NO_ID_LINKS, str(spec)],
                check=True,
                capture_output=True,
            )
        built = sorted(str(path) for path in (top / "RPMS").rglob("*.rpm"))
        subprocess.run([rpm, "--dbpath", str(target), "--initdb"], check=True, capture_output=True)
        subprocess.run(
            [rpm, "--dbpath", str(target), "-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos", *built],
            check=True,
            capture_output=True,
        )
    return target


def rpm_image(release_files: Mapping[str, str], packages: Iterable[Rpm]) -> str:
    """An `oci:` reference to a one-layer image holding `release_files` (path → text, e.g. `etc/os-release`)
    and an rpm database of `packages` at `var/lib/rpm/rpmdb.sqlite`."""
    items = list(packages)
    key = hashlib.sha256(json.dumps([sorted(release_files.items()), [asdict(p) for p in items]]).encode()).hexdigest()[
        :20
    ]
    layout = CACHE / key
    if not (layout / "index.json").is_file():
        with tempfile.TemporaryDirectory(prefix="rpmdb-") as scratch:
            db = build_rpmdb(items, Path(scratch) / "rpm")
            entries = [ocibuild.Entry(path, text.encode()) for path, text in sorted(release_files.items())]
            entries += [
                ocibuild.Entry(f"var/lib/rpm/{f.name}", f.read_bytes())
                for f in sorted(db.iterdir())
                if f.name.startswith("rpmdb.sqlite") and f.stat().st_size
            ]
            staging = CACHE / f".{key}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            ocibuild.write_layout(staging, [ocibuild.Image([ocibuild.Layer(ocibuild.layer_tar(entries))])])
            shutil.rmtree(layout, ignore_errors=True)
            staging.rename(layout)
    return f"oci:{layout}"
