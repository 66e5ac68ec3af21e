"""OSV schema validation: the compiled fast path agrees with jsonschema, on real records and mutated ones."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from jsonschema import Draft202012Validator

from scanner.vulndb.schema import OsvValidator, compile_schema, osv_validator
from scanner.vulndb.snapshot import snapshot_dir
from tests.vulndb.feedtools import ALMA, FIXTURES, GOLANG, LINTER, PYPA, load_record, records_in

SCHEMA = json.loads((FIXTURES / "osv-schema" / "validation" / "schema.json").read_text())
REAL = records_in(PYPA) + records_in(GOLANG) + records_in(ALMA) + records_in(LINTER)


def test_packaged_schema_is_the_upstream_file() -> None:
    packaged = json.loads((snapshot_dir() / "osv-schema.json").read_text())
    assert packaged == SCHEMA
    assert osv_validator().compiled  # every keyword of this schema has a compiled form
    assert osv_validator().info.dialect == "https://json-schema.org/draft/2020-12/schema"


def _mutations(record: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Edits that each break (or, some, keep) validity, touching every kind of keyword the schema uses."""

    def edit(name: str, change: Callable[[dict[str, Any]], None]) -> tuple[str, dict[str, Any]]:
        clone = copy.deepcopy(record)
        change(clone)
        return name, clone

    yield edit("no id", lambda r: r.pop("id"))
    yield edit("id prefix unknown", lambda r: r.update(id="NOPE-1"))
    yield edit("modified not a time", lambda r: r.update(modified="yesterday"))
    yield edit("modified as number", lambda r: r.update(modified=20240101))
    yield edit("aliases null", lambda r: r.update(aliases=None))
    yield edit("aliases of numbers", lambda r: r.update(aliases=[1, 2]))
    yield edit("summary bool", lambda r: r.update(summary=True))
    yield edit("severity bad CVSS", lambda r: r.update(severity=[{"type": "CVSS_V3", "score": "CVSS:2/AV:N"}]))
    yield edit("severity Ubuntu", lambda r: r.update(severity=[{"type": "Ubuntu", "score": "medium"}]))
    yield edit("severity no score", lambda r: r.update(severity=[{"type": "CVSS_V3"}]))
    yield edit("extra top-level key", lambda r: r.update(x_extra={"a": 1}))
    if not record.get("affected"):
        return
    entry = "affected"
    yield edit("affected null", lambda r: r.update(affected=None))
    yield edit("affected object", lambda r: r.update(affected={}))
    yield edit("package no name", lambda r: r[entry][0].setdefault("package", {}).pop("name", None))
    yield edit("unknown ecosystem", lambda r: r[entry][0].setdefault("package", {}).update(ecosystem="Nope"))
    yield edit("ecosystem suffix", lambda r: r[entry][0].setdefault("package", {}).update(ecosystem="Debian:13"))
    yield edit("versions of ints", lambda r: r[entry][0].update(versions=[1]))
    yield edit(
        "severity in both places",
        lambda r: (
            r.update(severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]),
            r[entry][0].update(severity=[{"type": "Ubuntu", "score": "low"}]),
        ),
    )
    ranges = record["affected"][0].get("ranges")
    if not ranges:
        return
    yield edit("range type unknown", lambda r: r[entry][0]["ranges"][0].update(type="RANGE"))
    yield edit("range without events", lambda r: r[entry][0]["ranges"][0].pop("events"))
    yield edit("events empty", lambda r: r[entry][0]["ranges"][0].update(events=[]))
    yield edit("events no introduced", lambda r: r[entry][0]["ranges"][0].update(events=[{"fixed": "1"}]))
    yield edit(
        "event with two keys",
        lambda r: r[entry][0]["ranges"][0].update(events=[{"introduced": "0", "fixed": "1"}]),
    )
    yield edit(
        "fixed and last_affected",
        lambda r: r[entry][0]["ranges"][0].update(events=[{"introduced": "0"}, {"fixed": "2"}, {"last_affected": "1"}]),
    )
    yield edit("GIT without repo", lambda r: r[entry][0]["ranges"][0].update(type="GIT"))
    yield edit(
        "GIT short hash",
        lambda r: r[entry][0]["ranges"][0].update(
            type="GIT", repo="https://x", events=[{"introduced": "0"}, {"fixed": "abc123"}]
        ),
    )
    yield edit(
        "GIT full hash",
        lambda r: r[entry][0]["ranges"][0].update(
            type="GIT", repo="https://x", events=[{"introduced": "0"}, {"fixed": "a" * 40}]
        ),
    )
    yield edit("database_specific list", lambda r: r[entry][0]["ranges"][0].update(database_specific=[]))


def _cases() -> list[tuple[str, dict[str, Any]]]:
    # Every OSV record of the snapshot (`nvd/` holds NVD's CVE records, not OSV ones).
    root = snapshot_dir()
    paths = [
        p for p in sorted(root.rglob("*")) if p.suffix in (".json", ".yaml") and p.relative_to(root).parts[0] != "nvd"
    ]
    snapshot = [load_record(p) for p in paths]
    cases = [(f"real {r.get('id', '?')}", r) for r in REAL + snapshot if "id" in r]
    for record in REAL[::3]:  # a spread of sources
        cases += [(f"{record['id']}: {name}", mutated) for name, mutated in _mutations(record)]
    return cases


CASES = _cases()


def test_compiled_schema_agrees_with_jsonschema() -> None:
    check = compile_schema(SCHEMA)
    assert check is not None
    reference = Draft202012Validator(SCHEMA)
    assert len(CASES) > 400
    disagree = [name for name, record in CASES if check(record) != reference.is_valid(record)]
    assert disagree == []


def test_the_mutations_do_reject() -> None:
    rejected = [name for name, record in CASES if osv_validator().error(record) is not None]
    assert len(rejected) > 200  # most mutations break the record; a few (GIT full hash...) must not
    # Of the real records, only the two known bad ones: a short GIT hash, and the linter's `nointroduced` sample.
    assert sorted(name for name in rejected if name.startswith("real ")) == [
        "real CVE-2023-41045",
        "real PYSEC-2021-371",
    ]


def test_linter_negative_samples() -> None:
    validator = osv_validator()
    error = validator.error(load_record(LINTER / "nointroduced-CVE-2023-41045.json"))
    assert error is not None and error.startswith("affected/0/ranges/0/events")
    assert validator.error(load_record(LINTER / "nopackage-GHSA-9v2f-6vcg-3hgv.json")) is None
    assert validator.error(load_record(LINTER / "nondistinct-CVE-2018-5407.json")) is None


def test_format_is_an_annotation() -> None:
    # `published` has `format: date-time`; a pattern-conforming impossible date passes, as Draft 2020-12 says.
    record = dict(load_record(GOLANG / "osv" / "GO-2026-5028.json"), published="2021-13-45T99:99:99Z")
    assert osv_validator().error(record) is None


def test_an_unknown_keyword_falls_back_to_jsonschema() -> None:
    schema = dict(SCHEMA, properties=dict(SCHEMA["properties"], aliases={"type": "array", "uniqueItems": True}))
    assert compile_schema(schema) is None
    validator = OsvValidator(schema)
    assert not validator.compiled
    record = load_record(PYPA / "vulns" / "jinja2" / "PYSEC-2014-8.yaml")
    assert validator.error(record) is None
    error = validator.error(dict(record, aliases=["CVE-1", "CVE-1"]))
    assert error is not None and error.startswith("aliases")
