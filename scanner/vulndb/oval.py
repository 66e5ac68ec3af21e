"""Oracle Linux security advisories (ELSA) from Oracle's OVAL (`com.oracle.elsa-ol8.xml`), converted to OSV records.

Each `<definition class="patch">` with an `elsa` reference becomes one record: id the ELSA id, ecosystem
`Oracle Linux:<major>`, one affected entry per package, range ECOSYSTEM introduced "0" fixed at the EVR the
definition says the package must not be earlier than (a zero epoch left out, as acrguard's rpm detector writes
installed versions), CVEs (`<reference source="CVE">`, `<cve>`) as `related` (see `alas` for why not aliases),
Oracle's `<severity>` as `database_specific.severity`, `issued` as `published` and `modified` (Oracle's OVAL
carries no update date).

The criteria are read as OVAL evaluates them: each criterion names a test (`test_ref`); the test an object (the
rpm name) and a state (`<evr operation="less than">`, an `arch` or `version` pattern, a `release` pattern
`ksplice`, a signature key). The release comes from the "Oracle Linux N is installed" test (object
`oraclelinux-release`, state version `^N`). Where a document holds definitions without their tests (a slice), the
criterion's comment, which Oracle writes from the same data ("openssl is earlier than 1:1.1.1k-7.el8_6"), is read
instead.

Choices, where one definition gives one package several fixes:

* ksplice: criteria groups with a "ksplice-based" test (state `release` pattern `ksplice`), or whose EVR is a
  `.ksplice` build, are left out. They concern Ksplice user-space patch packages of running hosts, not the rpms an
  image installs; a definition of ksplice packages only is skipped (counted, named).
* arches: the x86_64 and aarch64 branches usually name the same EVR; where they differ (a respin on one arch,
  ELSA-2022-4803), or where one arch lists two rebuilds of a package (ELSA-2024-2961, 110-1.el8 and
  110-1.0.1.el8), the lowest EVR is kept. OSV ecosystems carry no arch, and both builds are fixes the erratum
  ships: reporting the lower one as vulnerable would be a false alarm.
* a definition naming several Oracle Linux releases, or none, is skipped (counted, named).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

from scanner.vulndb.converted import (
    MAX_AFFECTED,
    MAX_DETAILS,
    MAX_IDS,
    MAX_SUMMARY,
    Converted,
    clip,
    cve_list,
    lowest_rpm,
    normalise_evr,
    rfc3339,
)
from scanner.vulndb.xmlstream import MAX_DEPTH, local, text

ECOSYSTEM = "Oracle Linux"
MAX_DEFINITIONS = 100_000  # Oracle Linux 8 has ~5,000 ELSAs; all releases together ~20,000
MAX_TABLE = 5_000_000  # tests, objects and states of one document
_INSTALLED = re.compile(r"^Oracle Linux (\d+)\b.*is installed$")
_EARLIER = re.compile(r"^(\S+) is earlier than (\S+)$")
_ARCH = re.compile(r"^Oracle Linux arch is (\S+)$")
_VERSION_PATTERN = re.compile(r"^\^?(\d+)")
RELEASE_OBJECT = "oraclelinux-release"


@dataclass(frozen=True)
class _Criterion:
    ref: str
    comment: str


@dataclass
class _Definition:
    """What a definition says, kept until its tests (later in the document) are read."""

    elsa: str
    title: str
    description: str
    severity: str
    issued: str | None
    cves: list[str]
    url: str
    platforms: list[str]
    # Each criteria node's own criterions, with the criterions of the nodes above it (release, arch).
    groups: list[tuple[tuple[_Criterion, ...], tuple[_Criterion, ...]]] = field(default_factory=list)


@dataclass(frozen=True)
class _Fact:
    kind: str  # release | arch | package | ksplice | other
    name: str = ""
    value: str = ""


@dataclass
class _Tables:
    tests: dict[str, tuple[str, str]] = field(default_factory=dict)  # test id → (object id, state id)
    objects: dict[str, str] = field(default_factory=dict)  # object id → rpm name
    states: dict[str, tuple[str, str]] = field(default_factory=dict)  # state id → (kind, value)

    def size(self) -> int:
        return len(self.tests) + len(self.objects) + len(self.states)


def parse_oval(stream: Iterator[tuple[str, Element]], root: Element, origin: str) -> Converted:
    """The records of an `<oval_definitions>` document whose root start event has been read."""
    result = Converted("oval")
    definitions: list[_Definition] = []
    tables = _Tables()
    parents: list[Element] = [root]
    for event, element in stream:
        if event == "start":
            parents.append(element)
            continue
        parents.pop()
        name = local(element.tag)
        if name == "definition":
            if len(definitions) >= MAX_DEFINITIONS:
                raise ValueError(f"more than {MAX_DEFINITIONS} definitions")
            definition = _read_definition(element, origin, result)
            if definition is not None:
                definitions.append(definition)
        elif name.endswith("_test") and element.get("id"):
            obj, state = element.find("{*}object"), element.find("{*}state")
            tables.tests[element.get("id", "")] = (
                obj.get("object_ref", "") if obj is not None else "",
                state.get("state_ref", "") if state is not None else "",
            )
        elif name.endswith("_object") and element.get("id"):
            tables.objects[element.get("id", "")] = text(element.find("{*}name"))
        elif name.endswith("_state") and element.get("id"):
            tables.states[element.get("id", "")] = _state(element)
        else:
            continue
        if tables.size() > MAX_TABLE:
            raise ValueError(f"more than {MAX_TABLE} tests, objects and states")
        parents[-1].clear()  # read: drop it (and its siblings read before it)
    for definition in definitions:
        record = _record(definition, tables, origin, result)
        if record is not None:
            result.records.append(record)
    return result


def _state(element: Element) -> tuple[str, str]:
    for child in element:
        kind = local(child.tag)
        if kind == "evr" and child.get("operation", "") == "less than":
            return "evr", text(child)
        if kind in ("arch", "version", "release"):
            return kind, text(child)
        if kind == "signature_keyid":
            return "signature", text(child)
    return "other", ""


def _read_definition(element: Element, origin: str, result: Converted) -> _Definition | None:
    if element.get("class") != "patch":
        return None
    metadata = element.find("{*}metadata")
    if metadata is None:
        return None
    elsa = next(
        (r.get("ref_id", "") for r in metadata.iter() if local(r.tag) == "reference" and r.get("source") == "elsa"),
        "",
    )
    if not elsa.startswith("ELSA-"):
        result.skip(f"{element.get('id', '(no id)')} ({origin}): no ELSA reference")
        return None
    cve_texts = [
        r.get("ref_id", "") for r in metadata.iter() if local(r.tag) == "reference" and r.get("source") == "CVE"
    ]
    cve_texts += [text(c) for c in metadata.iter() if local(c.tag) == "cve"]
    advisory = metadata.find("{*}advisory")
    issued_element = advisory.find("{*}issued") if advisory is not None else None
    url = next(
        (r.get("ref_url", "") for r in metadata.iter() if local(r.tag) == "reference" and r.get("source") == "elsa"),
        "",
    )
    definition = _Definition(
        elsa=elsa,
        title=text(metadata.find("{*}title")),
        description=clip(metadata.findtext("{*}description") or "", MAX_DETAILS),  # kernel changelogs run long
        severity=text(advisory.find("{*}severity")) if advisory is not None else "",
        issued=rfc3339(issued_element.get("date", "")) if issued_element is not None else None,
        cves=cve_list(cve_texts)[:MAX_IDS],
        url=url,
        platforms=[text(p) for p in metadata.iter() if local(p.tag) == "platform"],
    )
    criteria = element.find("{*}criteria")
    if criteria is not None:
        try:
            _walk(criteria, (), definition.groups, 0)
        except ValueError as exc:
            result.skip(f"{elsa} ({origin}): {exc}")
            return None
    return definition


def _walk(
    criteria: Element,
    above: tuple[_Criterion, ...],
    groups: list[tuple[tuple[_Criterion, ...], tuple[_Criterion, ...]]],
    depth: int,
) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"criteria nested deeper than {MAX_DEPTH}")
    own = tuple(
        _Criterion(c.get("test_ref", ""), " ".join(c.get("comment", "").split()))
        for c in criteria
        if local(c.tag) == "criterion"
    )
    if own:
        groups.append((above, own))
    for child in criteria:
        if local(child.tag) == "criteria":
            _walk(child, above + own, groups, depth + 1)


def _fact(criterion: _Criterion, tables: _Tables) -> _Fact:
    """What a criterion tests: through its test, object and state where the document holds them, else its comment."""
    test = tables.tests.get(criterion.ref)
    if test is not None and test[0] in tables.objects and test[1] in tables.states:
        name = tables.objects[test[0]]
        kind, value = tables.states[test[1]]
        if name == RELEASE_OBJECT and kind == "version":
            match = _VERSION_PATTERN.match(value)
            return _Fact("release", value=match.group(1)) if match else _Fact("other")
        if name == RELEASE_OBJECT and kind == "arch":
            return _Fact("arch", value=value)
        if kind == "evr":
            return _Fact("package", name, value)
        if kind == "release" and "ksplice" in value:
            return _Fact("ksplice", name)
        return _Fact("other")
    comment = criterion.comment
    if match := _INSTALLED.match(comment):
        return _Fact("release", value=match.group(1))
    if match := _ARCH.match(comment):
        return _Fact("arch", value=match.group(1))
    if match := _EARLIER.match(comment):
        return _Fact("package", match.group(1), match.group(2))
    if comment.endswith(" is ksplice-based"):
        return _Fact("ksplice", comment.removesuffix(" is ksplice-based"))
    return _Fact("other")


def _record(definition: _Definition, tables: _Tables, origin: str, result: Converted) -> dict[str, Any] | None:
    label = f"{definition.elsa} ({origin})"
    releases: set[str] = set()
    fixes: dict[str, list[str]] = {}
    ksplice_only = False
    for above, own in definition.groups:
        facts_above = [_fact(c, tables) for c in above]
        facts = [_fact(c, tables) for c in own]
        releases.update(f.value for f in (*facts_above, *facts) if f.kind == "release")
        packages = [f for f in facts if f.kind == "package"]
        if not packages:
            continue
        if any(f.kind == "ksplice" for f in facts) or any("ksplice" in f.value for f in packages):
            ksplice_only = True
            continue
        for fact in packages:
            fixes.setdefault(fact.name, []).append(normalise_evr(fact.value))
    if not releases:
        releases = {m.group(1) for p in definition.platforms if (m := re.match(r"^Oracle Linux (\d+)$", p))}
    if len(releases) != 1:
        result.skip(f"{label}: {'several' if releases else 'no'} Oracle Linux releases ({', '.join(sorted(releases))})")
        return None
    if not fixes:
        reason = "ksplice packages only" if ksplice_only else "no package criteria"
        result.skip(f"{label}: {reason}, not converted")
        return None
    if len(fixes) > MAX_AFFECTED:
        result.skip(f"{label}: more than {MAX_AFFECTED} packages")
        return None
    if definition.issued is None:
        result.skip(f"{label}: no issued date")
        return None
    (release,) = releases
    try:
        affected = [_affected(release, name, lowest_rpm(evrs)) for name, evrs in sorted(fixes.items())]
    except (ValueError, IndexError) as exc:
        result.skip(f"{label}: unreadable EVR ({exc})")
        return None
    record: dict[str, Any] = {
        "id": definition.elsa,
        "modified": definition.issued,
        "published": definition.issued,
        "summary": clip(definition.title, MAX_SUMMARY),
        "details": definition.description,
        "related": definition.cves,
        "affected": affected,
        "references": [
            {"type": "ADVISORY", "url": definition.url or f"https://linux.oracle.com/errata/{definition.elsa}.html"}
        ],
    }
    if definition.severity:
        record["database_specific"] = {"severity": definition.severity}
    return record


def _affected(release: str, name: str, fixed: str) -> dict[str, Any]:
    return {
        "package": {"ecosystem": f"{ECOSYSTEM}:{release}", "name": name},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
    }
