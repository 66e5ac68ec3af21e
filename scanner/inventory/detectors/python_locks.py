"""Python lockfiles: what poetry, uv and pipenv resolved for a project (evidence "lockfile").

A lockfile says what a project was resolved against, not what is installed: an image that installed the
packages also has their dist-info (evidence "installed"), and the inventory keeps one of the two (see
`scanner.inventory.evidence`). Only what a default install puts in place is reported:

- `poetry.lock` (`[[package]]`): lock-version 1.x marks each package `category = "main"` or `"dev"`; lock
  2.1 (Poetry 2) lists its `groups`. A package only in `dev` (1.x) or in no `main` group (2.1) is left out:
  `poetry install --only main` / `--without dev` does not install it, and if an image did install it its
  dist-info says so. Lock 2.0 (Poetry 1.5 to 1.8) records neither: every package is kept.
- `uv.lock` (`[[package]]`, `source`): the project itself and workspace members (`editable`, `virtual`)
  are the application, not PyPI releases, and are left out. The others are kept when some project reaches
  them through its `dependencies` or `optional-dependencies` (following the extras each edge asks for); one
  reached only through `dev-dependencies` is left out (`uv sync --no-dev`). With no project in the file
  nothing can be told apart: every package is kept.
- `Pipfile.lock` (JSON): `default` is kept, `develop` left out (`pipenv install --deploy` without `--dev`).
  An entry with no `==` version (a git or path dependency) is not a PyPI release and is skipped.

Names are kept as the file spells them (the tools write them PEP 503 normalised already); the purl uses
the PEP 503 name. A file that does not parse as TOML/JSON at all is Incomplete; a bad entry is a warning.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from scanner.ecosystems.languages import PYPI
from scanner.inventory.detectors.base import DetectorError, language_package
from scanner.model.types import RawPackage, Warning_

LOCKFILES = ("/poetry.lock", "/uv.lock", "/Pipfile.lock")


def parse_lockfile(
    path: str, data: bytes, warnings: list[Warning_], check: Callable[[str, str], str]
) -> Iterator[RawPackage]:
    """The packages of one lockfile; `check(name, version)` returns a problem or "". DetectorError when the
    file does not parse at all."""
    try:
        text = data.decode("utf-8")
        import tomllib  # imported when a lockfile is read: most images have none, and every scan loads the detectors

        document = json.loads(text) if path.endswith("/Pipfile.lock") else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        kind = "JSON" if path.endswith("/Pipfile.lock") else "TOML"
        raise DetectorError(path, f"not valid {kind} ({_first_line(err)}); not read") from None
    if not isinstance(document, dict):
        raise DetectorError(path, "not a lockfile (the document is not a table); not read")
    if path.endswith("/poetry.lock"):
        entries, tool = _poetry(document), "poetry"
    elif path.endswith("/uv.lock"):
        entries, tool = _uv(document), "uv"
    else:
        entries, tool = _pipenv(document), "pipenv"
    for name, version in entries:
        problem = check(name, version)
        if problem:
            warnings.append(Warning_(path, problem))
            continue
        metadata = [("lockfile", tool)]
        yield language_package(PYPI, name, version, path, metadata, purl_name=PYPI.normalise(name), evidence="lockfile")


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


def _tables(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = document.get(key, [])
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key, "")
    return value if isinstance(value, str) else ""


def _poetry(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for entry in _tables(document, "package"):
        category = entry.get("category")
        groups = entry.get("groups")
        if category == "dev":
            continue
        if isinstance(groups, list) and "main" not in groups:
            continue
        yield _text(entry, "name"), _text(entry, "version")


def _uv(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    entries = _tables(document, "package")
    projects = [e for e in entries if _uv_local(e)]
    reached = _uv_reached(entries, projects) if projects else None
    for entry in entries:
        if _uv_local(entry):
            continue
        name = _text(entry, "name")
        if reached is not None and PYPI.normalise(name) not in reached:
            continue
        yield name, _text(entry, "version")


def _uv_local(entry: dict[str, Any]) -> bool:
    source = entry.get("source")
    return isinstance(source, dict) and ("editable" in source or "virtual" in source)


def _uv_edges(value: object) -> Iterator[tuple[str, list[str]]]:
    """(normalised name, extras asked for) of a uv dependency list."""
    if not isinstance(value, list):
        return
    for dep in value:
        if isinstance(dep, dict) and isinstance(dep.get("name"), str):
            extras = dep.get("extra", [])
            yield (
                PYPI.normalise(dep["name"]),
                [e for e in extras if isinstance(e, str)] if isinstance(extras, list) else [],
            )


def _uv_reached(entries: list[dict[str, Any]], projects: list[dict[str, Any]]) -> set[str]:
    """Normalised names reachable from the projects' runtime dependencies (and their optional ones)."""
    by_name = {PYPI.normalise(_text(e, "name")): e for e in entries}
    queue: deque[tuple[str, list[str]]] = deque()
    for project in projects:
        queue.extend(_uv_edges(project.get("dependencies")))
        optional = project.get("optional-dependencies")
        if isinstance(optional, dict):
            for deps in optional.values():
                queue.extend(_uv_edges(deps))
    reached: set[tuple[str, str]] = set()  # (name, extra or ""): each edge is followed once
    names: set[str] = set()
    while queue:
        name, extras = queue.popleft()
        for extra in ["", *extras]:
            if (name, extra) in reached:
                continue
            reached.add((name, extra))
            names.add(name)
            entry = by_name.get(name)
            if entry is None:
                continue
            if not extra:
                queue.extend(_uv_edges(entry.get("dependencies")))
            else:
                optional = entry.get("optional-dependencies")
                if isinstance(optional, dict):
                    queue.extend(_uv_edges(optional.get(extra)))
    return names


def _pipenv(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    default = document.get("default", {})
    if not isinstance(default, dict):
        return
    for name, entry in default.items():
        if not isinstance(entry, dict):
            continue
        version = _text(entry, "version")
        if not version.startswith("=="):
            continue  # a git, path or url dependency: not a PyPI release
        yield name, version.lstrip("=")
