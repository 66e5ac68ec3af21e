"""Strict reading of the user's policy files (disable rules, gates): the shared parts.

Policy files decide what is hidden and what is blocked, so a typo must be an error, never a silently
ignored key: duplicate keys are refused, unknown keys get a "did you mean" hint, and values are named by
kind in messages ("a list", "true/false") so a one-line error says what was wrong.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar, cast

import yaml

from scanner.model.errors import AcrguardError

E = TypeVar("E", bound=str)

# A rule's or a gate's name: 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: PyYAML keeps the last silently, hiding half an entry."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str | int | float | bool | date):
            continue  # an unhashable key: construct_mapping reports it
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def unknown_key(raw: Mapping[Any, Any], allowed: Sequence[str], what: str) -> tuple[str, str] | None:
    """The first key not in `allowed`, with the message for it, or None."""
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (expected {', '.join(allowed)})"
            return str(key), f"unknown {what}{hint}"
    return None


def pick(value: object, choices: Sequence[E]) -> E | None:
    """Case-insensitive choice: "high" is as unambiguous as "High"."""
    if isinstance(value, str):
        for choice in choices:
            if value.casefold() == choice.casefold():
                return choice
    return None


def show(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list | dict) or value is None:
        return kind(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def kind(value: object) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "true/false"),
        ((int, float), "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a mapping"),
        ((date, datetime), "a date"),
    ]
    if value is None:
        return "nothing"
    return next((label for types, label in kinds if isinstance(value, types)), type(value).__name__)


class FieldChecks:
    """The field checks of one kind of policy file, raising its error class.

    Messages read "<where>: '<field>': <message>"; the loaders alias the bound methods
    (`_fail = _checks.fail`) so their call sites stay short.
    """

    def __init__(self, error: type[AcrguardError]) -> None:
        self.error = error

    def fail(self, where: str, field: str, message: str) -> NoReturn:
        raise self.error(f"{where}: '{field}': {message}")

    def strings(self, where: str, key: str, value: object) -> list[str]:
        """A non-empty list of non-empty strings, stripped."""
        if not isinstance(value, list) or not value:
            self.fail(where, key, f"expected a non-empty list, got {kind(value)}")
        for item in value:
            if not isinstance(item, str) or not item.strip():
                self.fail(where, key, f"{show(item)} is not a non-empty string")
        return [cast(str, item).strip() for item in value]

    def globs(self, where: str, key: str, value: object) -> tuple[str, ...]:
        """A non-empty list of globs, case-folded: they match case-insensitively (`scanner.policy.globs`)."""
        return tuple(s.casefold() for s in self.strings(where, key, value))

    def choice(self, where: str, key: str, value: object, choices: Sequence[E]) -> E:
        chosen = pick(value, choices)
        if chosen is None:
            self.fail(where, key, f"{show(value)} is not one of {', '.join(choices)}")
        return chosen

    def choice_set(self, where: str, key: str, value: object, choices: Sequence[E]) -> frozenset[E]:
        """A non-empty list of `choices`."""
        if not isinstance(value, list) or not value:
            self.fail(where, key, f"expected a non-empty list of {', '.join(choices)}, got {kind(value)}")
        return frozenset(self.choice(where, key, item, choices) for item in value)

    def no_unknown_keys(self, where: str, raw: Mapping[Any, Any], allowed: Sequence[str], what: str) -> None:
        found = unknown_key(raw, allowed, what)
        if found is not None:
            self.fail(where, *found)

    def entries(
        self, path: Path, key: str, *, missing: str = "missing", not_a_list: str = "expected a list"
    ) -> list[Any]:
        """The raw entries of a policy file: a mapping with `version` (only 1) and a list under `key`. An empty
        file or an empty `key` (every entry commented out) has none. `missing` and `not_a_list` start the
        messages for a file without `key` and one whose `key` is not a list."""
        doc = read_document(path, self.error)
        if doc is None:
            return []
        where = str(path)
        if not isinstance(doc, dict):
            raise self.error(f"{where}: expected a mapping with a '{key}' list, got {kind(doc)}")
        self.no_unknown_keys(where, doc, ("version", key), "top-level key")
        if "version" in doc and doc["version"] != 1:
            self.fail(where, "version", f"{show(doc['version'])} is not supported (only 1)")
        if key not in doc:
            self.fail(where, key, missing)
        raw = doc[key]
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.fail(where, key, f"{not_a_list}, got {kind(raw)}")
        return raw


class Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def index(self) -> int: ...
    @property
    def source(self) -> str: ...


N = TypeVar("N", bound=Named)


def policy_files(directory: str | Path, *, missing_ok: bool, what: str, error: type[AcrguardError]) -> list[Path]:
    """`*.yaml` / `*.yml` files directly in `directory`, in name order (the order rules apply in)."""
    root = Path(directory)
    if not root.is_dir():
        if missing_ok and not root.exists():
            return []
        raise error(f"{root}: {what} directory does not exist or is not a directory")
    return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith("."))


def read_document(path: Path, error: type[AcrguardError]) -> Any:
    """The parsed YAML of one policy file (None when empty); unreadable or invalid YAML is `error`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read: {e}") from e
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise error(f"{path}: invalid YAML{at}: {e.problem or e.context}") from e
    except (yaml.YAMLError, ValueError) as e:  # ValueError: a date such as 2025-13-01
        raise error(f"{path}: invalid YAML: {e}") from e


def load_unique(
    paths: Iterable[Path], load: Callable[[Path], list[N]], noun: str, error: type[AcrguardError]
) -> list[N]:
    """Every entry of every file; names are unique across files (case-insensitively)."""
    entries: list[N] = []
    seen: dict[str, N] = {}
    for path in paths:
        for entry in load(path):
            other = seen.get(entry.name.casefold())
            if other is not None:
                raise error(
                    f"{path}: {noun} {entry.index} ('{entry.name}'): 'name': '{entry.name}' is already used by "
                    f"{other.source} {noun} {other.index}"
                )
            seen[entry.name.casefold()] = entry
            entries.append(entry)
    return entries
