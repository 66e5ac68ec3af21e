"""OSV schema validation: the packaged schema, loaded and compiled once.

jsonschema is the authority, but walking a record through its validator costs about 1.5 ms (its per-keyword
dispatch and `$ref` resolution dominate), which made validation 80 % of import time. So the schema is also
compiled here into plain closures for the keywords it uses; a record the closures accept is valid, a record
they reject is re-checked by jsonschema, which supplies the message (and has the last word). A schema using
a keyword the compiler does not know falls back to jsonschema for every record. A differential test checks
the two agree on real records and on mutated ones. `format` is an annotation in Draft 2020-12 and is not
asserted by either path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from scanner.vulndb.errors import FeedError

SCHEMA_RESOURCE = ("data", "osv-snapshot", "osv-schema.json")

Check = Callable[[Any], bool]

# Keywords that never constrain an instance (annotations, or handled by the `$ref` resolver).
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
    }
)


class _Unsupported(Exception):
    """The schema uses a keyword the compiler does not handle: use jsonschema for everything."""


def _json_equal(a: Any, b: Any) -> bool:
    # JSON Schema equality: true is not 1, 1 equals 1.0, containers compare member-wise.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _is_type(name: str) -> Check:
    if name == "object":
        return lambda x: isinstance(x, dict)
    if name == "array":
        return lambda x: isinstance(x, list)
    if name == "string":
        return lambda x: isinstance(x, str)
    if name == "null":
        return lambda x: x is None
    if name == "boolean":
        return lambda x: isinstance(x, bool)
    if name == "number":
        return lambda x: isinstance(x, int | float) and not isinstance(x, bool)
    if name == "integer":
        return lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())
    raise _Unsupported(f"type {name!r}")


class _Compiler:
    """Compiles a Draft 2020-12 schema (the subset OSV uses) into `Check` closures."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        if pointer in self.refs:
            return self.refs[pointer]
        if pointer != "#" and not pointer.startswith("#/"):
            raise _Unsupported(f"$ref {pointer!r}")
        target: Any = self.root
        for part in pointer[2:].split("/") if pointer != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                raise _Unsupported(f"$ref {pointer!r}")
            target = target[part]
        # Late binding, so a recursive schema compiles: the slot is filled after the target compiles.
        slot: list[Check] = []
        self.refs[pointer] = lambda x: slot[0](x)
        slot.append(self.compile(target))
        return self.refs[pointer]

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return lambda x: True
        if schema is False:
            return lambda x: False
        if not isinstance(schema, Mapping):
            raise _Unsupported("schema is not an object")
        checks: list[Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS or key in ("then", "else", "additionalProperties", "patternProperties"):
                continue
            checks.append(self.keyword(key, value, schema))
        if "additionalProperties" in schema or "patternProperties" in schema:
            checks.append(self.extra_properties(schema))
        return _conjunction(checks)

    def keyword(self, key: str, value: Any, schema: Mapping[str, Any]) -> Check:
        if key == "$ref":
            return self.ref(value)
        if key == "type":
            names = [value] if isinstance(value, str) else list(value)
            tests = [_is_type(n) for n in names]
            return tests[0] if len(tests) == 1 else (lambda x: any(t(x) for t in tests))
        if key == "properties":
            props = {name: self.compile(sub) for name, sub in value.items()}
            items = tuple(props.items())

            def properties(x: Any) -> bool:
                if isinstance(x, dict):
                    for name, check in items:
                        if name in x and not check(x[name]):
                            return False
                return True

            return properties
        if key == "required":
            required = frozenset(value)
            return lambda x: not isinstance(x, dict) or x.keys() >= required
        if key == "items":
            sub = self.compile(value)
            return lambda x: not isinstance(x, list) or all(map(sub, x))
        if key == "contains":
            if "minContains" in schema or "maxContains" in schema:
                raise _Unsupported("minContains/maxContains")
            sub = self.compile(value)
            return lambda x: not isinstance(x, list) or any(map(sub, x))
        if key == "minItems":
            return lambda x: not isinstance(x, list) or len(x) >= value
        if key == "maxItems":
            return lambda x: not isinstance(x, list) or len(x) <= value
        if key == "minLength":
            return lambda x: not isinstance(x, str) or len(x) >= value
        if key == "maxLength":
            return lambda x: not isinstance(x, str) or len(x) <= value
        if key == "pattern":
            search = re.compile(value).search
            return lambda x: not isinstance(x, str) or search(x) is not None
        if key == "enum":
            if all(isinstance(o, str) for o in value):
                strings = frozenset(value)  # the common case, and OSV's: a set lookup
                return lambda x: isinstance(x, str) and x in strings
            options = list(value)
            return lambda x: any(_json_equal(x, o) for o in options)
        if key == "const":
            if isinstance(value, str):
                return lambda x: isinstance(x, str) and x == value
            return lambda x: _json_equal(x, value)
        if key == "allOf":
            return _conjunction([self.compile(s) for s in value])
        if key == "anyOf":
            subs = [self.compile(s) for s in value]
            return lambda x: any(s(x) for s in subs)
        if key == "oneOf":
            subs = [self.compile(s) for s in value]

            def one_of(x: Any) -> bool:
                passed = 0
                for sub in subs:
                    if sub(x):
                        passed += 1
                        if passed > 1:
                            return False
                return passed == 1

            return one_of
        if key == "not":
            sub = self.compile(value)
            return lambda x: not sub(x)
        if key == "if":
            cond = self.compile(value)
            then = self.compile(schema.get("then", True))
            other = self.compile(schema.get("else", True))
            return lambda x: then(x) if cond(x) else other(x)
        raise _Unsupported(f"keyword {key!r}")

    def extra_properties(self, schema: Mapping[str, Any]) -> Check:
        known = frozenset(schema.get("properties", {}))
        patterns = [(re.compile(p).search, self.compile(s)) for p, s in schema.get("patternProperties", {}).items()]
        additional = self.compile(schema.get("additionalProperties", True))

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for name, value in x.items():
                matched = False
                for search, sub in patterns:
                    if search(name) is not None:
                        matched = True
                        if not sub(value):
                            return False
                if not matched and name not in known and not additional(value):
                    return False
            return True

        return check


def _conjunction(checks: list[Check]) -> Check:
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda x: first(x) and second(x)
    frozen = tuple(checks)

    def every(x: Any) -> bool:
        for check in frozen:  # noqa: SIM110 - all() over a generator costs a frame per call, on the hot path
            if not check(x):
                return False
        return True

    return every


def compile_schema(schema: Mapping[str, Any]) -> Check | None:
    """The schema as one `Check`, or None when it uses a keyword this compiler does not handle."""
    try:
        return _Compiler(schema).compile(schema)
    except (_Unsupported, re.error, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class SchemaInfo:
    sha256: str
    dialect: str


class OsvValidator:
    """Validates OSV records; `error(record)` is None for a valid record, else a one-line reason."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        # Imported here, not at module level: jsonschema's format helpers take about a second to import,
        # and every `acrguard` command imports this module through the `db` subcommand's parser.
        from jsonschema import exceptions as jsonschema_exceptions
        from jsonschema import validators as jsonschema_validators

        self._best_match = jsonschema_exceptions.best_match
        cls = jsonschema_validators.validator_for(schema, default=jsonschema_validators.Draft202012Validator)
        try:
            cls.check_schema(schema)
        except jsonschema_exceptions.SchemaError as exc:
            raise FeedError(f"OSV schema is not a valid JSON Schema: {exc.message}") from exc
        # No format checker: `format` stays an annotation, as Draft 2020-12 specifies by default.
        self._slow = cls(schema)
        self._fast = compile_schema(schema)
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
        self.info = SchemaInfo(hashlib.sha256(canonical).hexdigest(), str(schema.get("$schema", "")))

    @property
    def compiled(self) -> bool:
        return self._fast is not None

    def error(self, record: Any) -> str | None:
        if self._fast is not None and self._fast(record):
            return None
        best = self._best_match(self._slow.iter_errors(record))
        if best is None:
            return None
        where = "/".join(str(p) for p in best.absolute_path)
        message = best.message if len(best.message) <= 200 else best.message[:197] + "..."
        return f"{where or '(record)'}: {message}"


@cache
def osv_validator() -> OsvValidator:
    """The validator of the schema packaged with acrguard (ossf/osv-schema validation/schema.json)."""
    resource = resources.files("scanner").joinpath(*SCHEMA_RESOURCE)
    try:
        schema = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FeedError(f"packaged OSV schema {'/'.join(SCHEMA_RESOURCE)} unreadable: {exc}") from exc
    return OsvValidator(schema)
