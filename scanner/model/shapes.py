"""Each model's JSON form, described once, field by field.

Three things are derived from these descriptions, so a new field is added here and nowhere else:
the storage codec (`scanner.model.codec`: every field, an exact round trip), the user-facing inventory
JSON (`scanner.report.inventory_json`: the fields marked shown) and the check of a sandboxed child's
output (`scanner.sandbox.output`: every field, by its kind). Keys are the dataclass attribute names, in the
order the JSON forms write them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Generic, Literal, TypeVar, cast, get_args

from scanner.model.types import (
    BaseImage,
    Category,
    Coverage,
    Cvss,
    Epss,
    Finding,
    ImageInfo,
    Inventory,
    Kev,
    LayerInfo,
    OSInfo,
    Package,
    Status,
    Warning_,
)

T = TypeVar("T")
Convert = Callable[[Any], Any]

# text: a string; count: a whole number from 0; flag: true or false; score: a number; choice: one of
# `choices`; texts: a tuple of strings (a JSON list); pairs: string pairs (a list of [key, value] lists);
# one: a nested model (None where `optional`); many: a tuple of nested models (a JSON list).
Kind = Literal["text", "count", "flag", "score", "choice", "texts", "pairs", "one", "many"]


@dataclass(frozen=True)
class Field:
    """One field of a model: its key (the attribute's name), what kind of value it holds, and whether the
    user-facing JSON shows it. Written with the helpers below: `text("name")`, `one("layer", LAYER)`…"""

    name: str
    kind: Kind
    shape: Shape[Any] | None = None  # for one and many
    optional: bool = False  # for one: None is a value
    choices: tuple[str, ...] = ()  # for choice
    shown: bool = True  # in the user-facing JSON; False: storage only, kept for the exact round trip
    # The value of a text (or score) field added after documents were stored: a stored document without it
    # loads with this (None: the field is required).
    absent: str | float | None = None
    # For an optional one field added after documents were stored: a stored document without it loads None.
    added_later: bool = False

    def __post_init__(self) -> None:
        if (self.kind in ("one", "many")) != (self.shape is not None):
            raise TypeError(f"{self.name}: a nested shape goes with the kinds one and many, and only with them")


def text(name: str, *, shown: bool = True, absent: str | None = None) -> Field:
    return Field(name, "text", shown=shown, absent=absent)


def count(name: str, *, shown: bool = True) -> Field:
    return Field(name, "count", shown=shown)


def flag(name: str) -> Field:
    return Field(name, "flag")


def score(name: str, *, absent: float | None = None) -> Field:
    return Field(name, "score", absent=absent)


def choice(name: str, choices: tuple[str, ...]) -> Field:
    return Field(name, "choice", choices=choices)


def texts(name: str, *, shown: bool = True) -> Field:
    return Field(name, "texts", shown=shown)


def pairs(name: str, *, shown: bool = True) -> Field:
    return Field(name, "pairs", shown=shown)


def one(name: str, shape: Shape[Any], *, optional: bool = False, added_later: bool = False) -> Field:
    return Field(name, "one", shape, optional, added_later=added_later and optional)


def many(name: str, shape: Shape[Any]) -> Field:
    return Field(name, "many", shape)


class Shape(Generic[T]):
    """A dataclass's fields: `dump` and `load` are exact inverses (through JSON too), `view` dumps the shown ones.

    Every parameter of the dataclass must be described (checked here): a field left out would be lost in storage."""

    def __init__(self, model: type[T], *fields: Field) -> None:
        self.model = model
        self.fields = fields
        self.keys = tuple(f.name for f in fields)
        self._params = params = tuple(f.name for f in dataclasses.fields(cast(Any, model)) if f.init)
        if sorted(params) != sorted(self.keys):
            raise TypeError(f"{model.__name__}: described {self.keys}, the dataclass has {params}")
        # This runs for every package and finding the store writes and reads: `dump` is generated, as
        # dataclasses generates __init__, so that it costs what a hand-written dict display costs; `load` takes
        # the stored values with one C-level getter and converts only the few fields that need it.
        self.dump: Callable[[T], dict[str, Any]] = _compile_dump(model.__name__, fields)
        self._take = itemgetter(*params)  # the stored values in the dataclass's parameter order
        self._absent: dict[str, str | float | None] = {f.name: f.absent for f in fields if f.absent is not None}
        self._absent.update({f.name: None for f in fields if f.added_later})
        self._loads = tuple((params.index(f.name), load) for f in fields if (load := _load(f)) is not None)

    def load(self, data: Mapping[str, Any]) -> T:
        return self._build(data, self._loads)

    def loader(self, **decode: Convert) -> Callable[[Mapping[str, Any]], T]:
        """`load`, with the named fields decoded by the given functions of their stored values instead."""
        if unknown := sorted(set(decode) - set(self.keys)):
            raise TypeError(f"{self.model.__name__} has no field {', '.join(unknown)}")
        loads = [(i, load) for i, load in self._loads if self._params[i] not in decode]
        loads += [(self._params.index(key), load) for key, load in decode.items()]
        return lambda data: self._build(data, loads)

    def _build(self, data: Mapping[str, Any], loads: Iterable[tuple[int, Convert]]) -> T:
        try:
            values = list(self._take(data))
        except KeyError:
            if not self._absent:
                raise
            values = list(self._take({**self._absent, **data}))  # stored before a field was added
        for i, load in loads:
            values[i] = load(values[i])
        return self.model(*values)

    def view(self, obj: T, **render: Convert) -> dict[str, Any]:
        """The shown fields, nested models as their views; `render` gives a field's JSON from its value instead."""
        out: dict[str, Any] = {}
        for f in self.fields:
            if not f.shown:
                continue
            value = getattr(obj, f.name)
            if f.name in render:
                out[f.name] = render[f.name](value)
            elif f.shape is None:
                dump = _DUMPS.get(f.kind)
                out[f.name] = value if dump is None else dump(value)
            elif f.kind == "many":
                out[f.name] = [f.shape.view(item) for item in value]
            else:
                out[f.name] = None if value is None else f.shape.view(value)
        return out


def _compile_dump(model: str, fields: tuple[Field, ...]) -> Callable[[Any], dict[str, Any]]:
    """`def dump(obj): return {"name": obj.name, "layer": _layer(obj.layer), ...}` for these fields."""
    converters: dict[str, Any] = {}
    items = []
    for f in fields:
        value = f"obj.{f.name}"  # a dataclass field's name: an identifier (the Shape checked it is one)
        if (dump := _dump(f)) is not None:
            converters[f"_{f.name}"] = dump
            value = f"_{f.name}({value})"
        items.append(f"{f.name!r}: {value}")
    namespace = dict(converters)
    exec(f"def dump(obj):\n    return {{{', '.join(items)}}}\n", namespace)
    dump = namespace["dump"]
    dump.__qualname__ = f"{model}.dump"
    return cast(Callable[[Any], dict[str, Any]], dump)


def _dump(f: Field) -> Convert | None:
    """What makes the field's value JSON-able; None where it already is."""
    if f.shape is not None:
        return _nested_each(f, f.shape.dump, list)
    return _DUMPS.get(f.kind)


def _load(f: Field) -> Convert | None:
    """What makes the field's value from its JSON; None where it is the value."""
    if f.shape is not None:
        return _nested_each(f, f.shape.load, tuple)
    return _LOADS.get(f.kind)


def _nested_each(f: Field, convert: Convert, collect: Callable[[list[Any]], Any]) -> Convert:
    """`convert` (a nested shape's dump or load) of a one field's value (None kept where optional), or of each
    of a many field's values, collected by `collect`."""
    if f.kind == "one":
        return (lambda v: None if v is None else convert(v)) if f.optional else convert
    # A list comprehension: twice as fast as a generator here.
    return lambda items: collect([convert(item) for item in items])


def _pairs(items: tuple[tuple[str, str], ...]) -> list[list[str]]:
    return [[k, v] for k, v in items]


def _tuple_pairs(items: list[list[str]]) -> tuple[tuple[str, str], ...]:
    # A list comprehension: twice as fast as a generator here, and this runs for every stored package.
    return tuple([(str(k), str(v)) for k, v in items])


def _float(value: float) -> float:
    # A score stored as 7 (an int after some JSON round trips) must come back as the float 7.0.
    return float(value)


_DUMPS: dict[Kind, Convert] = {"texts": list, "pairs": _pairs}
_LOADS: dict[Kind, Convert] = {"flag": bool, "score": _float, "texts": tuple, "pairs": _tuple_pairs}


OS: Shape[OSInfo] = Shape(
    OSInfo,
    text("id"),
    text("version"),
    text("codename"),
    text("name", shown=False),
    text("pretty_name", shown=False),
    texts("id_like", shown=False),
    text("source", shown=False),
    text("cpe", shown=False, absent=""),  # added after inventories were stored
)

LAYER: Shape[LayerInfo] = Shape(
    LayerInfo,
    count("index"),
    text("digest"),
    text("diff_id"),
    text("media_type", shown=False),
    count("size", shown=False),
    text("created_by"),
)

PACKAGE: Shape[Package] = Shape(
    Package,
    text("name"),
    text("version"),
    text("ecosystem"),
    text("purl"),
    text("source_name"),
    text("source_version"),
    text("arch"),
    one("layer", LAYER, optional=True),
    texts("locations"),
    text("kind", shown=False),
    text("detector"),
    flag("os_owned"),
    pairs("metadata", shown=False),
    text("evidence", absent="installed"),  # added after inventories were stored
)

BASE_IMAGE: Shape[BaseImage] = Shape(BaseImage, text("name"), text("digest"), count("layers"))

IMAGE: Shape[ImageInfo] = Shape(
    ImageInfo,
    text("reference"),
    text("digest"),
    text("config_digest"),
    text("platform"),
    one("os", OS, optional=True),
    text("media_type", shown=False),
    text("index_digest"),
    many("layers", LAYER),
    one("base", BASE_IMAGE, optional=True, added_later=True),  # added after images were stored
)

WARNING: Shape[Warning_] = Shape(Warning_, text("where"), text("message"))

INVENTORY: Shape[Inventory] = Shape(
    Inventory,
    one("image", IMAGE),
    choice("status", get_args(Status)),
    text("reason"),
    many("packages", PACKAGE),
    many("warnings", WARNING),
)

CVSS: Shape[Cvss] = Shape(Cvss, text("version"), text("vector"), score("score"))

KEV: Shape[Kev] = Shape(Kev, text("date_added"), text("due_date"), flag("ransomware"))

EPSS: Shape[Epss] = Shape(Epss, score("score"), score("percentile"), text("date"))

# Stored findings only: the scan JSON's findings (`scanner.report.scan_json`) are written by hand.
FINDING: Shape[Finding] = Shape(
    Finding,
    text("id"),
    texts("aliases"),
    one("package", PACKAGE),
    text("installed_version"),
    text("fixed_version"),
    text("fix_status"),
    text("severity"),
    text("severity_source"),
    one("cvss", CVSS, optional=True),
    text("category"),
    text("summary"),
    texts("references"),
    text("published"),
    text("modified"),
    flag("disabled"),
    text("disabled_by"),
    text("remediation"),
    one("kev", KEV, optional=True, added_later=True),  # added after findings were stored
    one("epss", EPSS, optional=True, added_later=True),
    score("risk", absent=0.0),  # added later: findings stored before it load unscored (0)
    text("origin", absent=""),  # added later: findings stored before it load as "not known"
)

# What the vulnerability database held for one ecosystem of an image: stored with an assessment, shown in the
# scan JSON (which adds whether the ecosystem was assessed).
COVERAGE: Shape[Coverage] = Shape(
    Coverage,
    text("ecosystem"),
    choice("kind", get_args(Category)),
    count("advisories"),
    text("feed_date"),
    flag("selection"),
)
