"""`$filter` on the sub-assessments list: a small subset of OData's filter syntax, parsed into a predicate over
one sub-assessment resource.

Grammar (keywords in any case, field paths as listed in `FIELDS`, relative to the resource's `properties`, a
leading `properties/` optional, compared case-insensitively):

    filter     := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" or ")" | comparison
    comparison := field ("eq" | "ne") literal | field "in" "(" literal ("," literal)* ")"
    literal    := 'text' ('' is a quote) | true | false | null

`eq null` matches a row without the field. Strings compare exactly (OData compares case-sensitively). A field
holds a string or a boolean, and a literal of the other kind is refused, as are unknown fields and operators,
numbers and anything else: `FilterError` names the problem and its 1-based position. Bounded: `MAX_LENGTH`
characters, `MAX_COMPARISONS` comparisons, `MAX_DEPTH` levels of nesting, `MAX_IN` values in one `in` list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Resource = Mapping[str, Any]
Predicate = Callable[[Resource], bool]
Value = str | bool | None
Kind = Literal["string", "boolean"]

MAX_LENGTH = 2000
MAX_COMPARISONS = 64
MAX_DEPTH = 16
MAX_IN = 100


class FilterError(ValueError):
    """A `$filter` acrguard does not take; the message names the problem and where (1-based)."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"at {position}: {message}")
        self.position = position


@dataclass(frozen=True)
class Field:
    kind: Kind
    paths: tuple[tuple[str, ...], ...]  # alternative paths under `properties`: the Qualys and the MDVM shape's


def _field(kind: Kind, *paths: str) -> Field:
    return Field(kind, tuple(tuple(p.split("/")) for p in paths))


_REPOSITORY = _field("string", "additionalData/repositoryName", "additionalData/artifactDetails/repositoryName")
_DIGEST = _field("string", "additionalData/imageDigest", "additionalData/artifactDetails/digest")
_REGISTRY = _field("string", "additionalData/registryHost", "additionalData/artifactDetails/registryHost")
_PATCHABLE = _field("boolean", "additionalData/patchable")
# The fields a filter may name. The image's repository, digest and registry are one field whatever the shape: the
# path of either shape names it. `patchable` is the Qualys shape's; on an MDVM row it is `fixStatus` FixAvailable.
FIELDS: dict[str, Field] = {
    "id": _field("string", "id"),
    "displayName": _field("string", "displayName"),
    "status/code": _field("string", "status/code"),
    "status/severity": _field("string", "status/severity"),
    "status/cause": _field("string", "status/cause"),
    "resourceDetails/id": _field("string", "resourceDetails/id"),
    "additionalData/assessedResourceType": _field("string", "additionalData/assessedResourceType"),
    "additionalData/repositoryName": _REPOSITORY,
    "additionalData/artifactDetails/repositoryName": _REPOSITORY,
    "additionalData/imageDigest": _DIGEST,
    "additionalData/artifactDetails/digest": _DIGEST,
    "additionalData/registryHost": _REGISTRY,
    "additionalData/artifactDetails/registryHost": _REGISTRY,
    "additionalData/patchable": _PATCHABLE,
    "additionalData/vulnerabilityDetails/cveId": _field("string", "additionalData/vulnerabilityDetails/cveId"),
    "additionalData/softwareDetails/packageName": _field("string", "additionalData/softwareDetails/packageName"),
    "additionalData/softwareDetails/fixStatus": _field("string", "additionalData/softwareDetails/fixStatus"),
    "additionalData/acrguard/severity": _field("string", "additionalData/acrguard/severity"),
    "additionalData/acrguard/advisoryId": _field("string", "additionalData/acrguard/advisoryId"),
    "additionalData/acrguard/fixStatus": _field("string", "additionalData/acrguard/fixStatus"),
    "additionalData/acrguard/origin": _field("string", "additionalData/acrguard/origin"),
}
_BY_FOLDED = {name.casefold(): (name, spec) for name, spec in FIELDS.items()}
_PREFIX = "properties/"

_TOKEN = re.compile(
    r"\s+|(?P<string>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<number>-?[0-9][0-9.]*)|(?P<word>[A-Za-z_$][A-Za-z0-9_/.$-]*)"
)
_COMPARE = ("eq", "ne")
_LITERALS: dict[str, Value] = {"true": True, "false": False, "null": None}


@dataclass(frozen=True)
class _Token:
    kind: str  # string, punct, number, word, end
    text: str
    at: int  # 1-based position


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterError(position + 1, f"unexpected character {text[position]!r}")
        kind = match.lastgroup
        if kind is not None:
            found.append(_Token(kind, match.group(), position + 1))
        position = match.end()
    found.append(_Token("end", "", len(text) + 1))
    return found


def _lookup(resource: Resource, spec: Field) -> Value:
    properties = resource.get("properties")
    for path in spec.paths:
        node: Any = properties
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            return node if isinstance(node, str | bool) else str(node)
    if spec is _PATCHABLE:  # the MDVM shape says it as a fix status
        status = _lookup(resource, FIELDS["additionalData/softwareDetails/fixStatus"])
        return None if status is None else status == "FixAvailable"
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.comparisons = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def _take(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def _keyword(self, *words: str) -> str | None:
        token = self.token
        if token.kind == "word" and token.text.lower() in words:
            self.index += 1
            return token.text.lower()
        return None

    def _expect(self, text: str, what: str) -> None:
        if self.token.kind != "punct" or self.token.text != text:
            raise FilterError(self.token.at, f"expected {what}, found {self._shown(self.token)}")
        self.index += 1

    @staticmethod
    def _shown(token: _Token) -> str:
        return "the end" if token.kind == "end" else repr(token.text[:40])

    def parse(self) -> Predicate:
        predicate = self._or(0)
        if self.token.kind != "end":
            raise FilterError(self.token.at, f"expected 'and', 'or' or the end, found {self._shown(self.token)}")
        return predicate

    def _or(self, depth: int) -> Predicate:
        terms = [self._and(depth)]
        while self._keyword("or"):
            terms.append(self._and(depth))
        return terms[0] if len(terms) == 1 else lambda r: any(term(r) for term in terms)

    def _and(self, depth: int) -> Predicate:
        terms = [self._unary(depth)]
        while self._keyword("and"):
            terms.append(self._unary(depth))
        return terms[0] if len(terms) == 1 else lambda r: all(term(r) for term in terms)

    def _unary(self, depth: int) -> Predicate:
        if depth >= MAX_DEPTH:
            raise FilterError(self.token.at, f"nested more than {MAX_DEPTH} levels deep")
        if self._keyword("not"):
            inner = self._unary(depth + 1)
            return lambda r: not inner(r)
        if self.token.kind == "punct" and self.token.text == "(":
            self.index += 1
            inner = self._or(depth + 1)
            self._expect(")", "')'")
            return inner
        return self._comparison()

    def _field(self) -> tuple[str, Field]:
        token = self._take()
        if token.kind != "word":
            raise FilterError(token.at, f"expected a field, found {self._shown(token)}")
        path = token.text[len(_PREFIX) :] if token.text.lower().startswith(_PREFIX) else token.text
        known = _BY_FOLDED.get(path.casefold())
        if known is None:
            raise FilterError(token.at, f"unknown field {token.text[:80]!r} (known: {', '.join(FIELDS)})")
        return known

    def _literal(self, name: str, spec: Field) -> Value:
        token = self._take()
        if token.kind == "string":
            value: Value = token.text[1:-1].replace("''", "'")
        elif token.kind == "word" and token.text.lower() in _LITERALS:
            value = _LITERALS[token.text.lower()]
        elif token.kind == "number":
            raise FilterError(token.at, "numbers are not supported: no field holds one")
        else:
            raise FilterError(token.at, f"expected a value ('text', true, false or null), found {self._shown(token)}")
        if value is not None and (spec.kind == "boolean") != isinstance(value, bool):
            raise FilterError(token.at, f"{name} holds a {spec.kind}, not {token.text[:40]}")
        return value

    def _comparison(self) -> Predicate:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise FilterError(self.token.at, f"more than {MAX_COMPARISONS} comparisons")
        name, spec = self._field()
        operator_at = self.token
        operator = self._keyword(*_COMPARE, "in")
        if operator is None:
            raise FilterError(operator_at.at, f"expected eq, ne or in, found {self._shown(operator_at)}")
        if operator == "in":
            self._expect("(", "'(' after in")
            values = [self._literal(name, spec)]
            while self.token.kind == "punct" and self.token.text == ",":
                self.index += 1
                if len(values) == MAX_IN:
                    raise FilterError(self.token.at, f"more than {MAX_IN} values in one 'in' list")
                values.append(self._literal(name, spec))
            self._expect(")", "',' or ')'")
            return lambda r: _lookup(r, spec) in values
        value = self._literal(name, spec)
        if operator == "eq":
            return lambda r: _lookup(r, spec) == value
        return lambda r: _lookup(r, spec) != value


def parse_filter(text: str) -> Predicate:
    """The predicate a `$filter` says; `FilterError` for anything outside the grammar above."""
    if len(text) > MAX_LENGTH:
        raise FilterError(MAX_LENGTH + 1, f"longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise FilterError(1, "empty")
    return _Parser(text).parse()
