"""The `$filter` grammar of the sub-assessments list (scanner.service.odata_filter) on hand-made resources."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.service.odata_filter import MAX_COMPARISONS, MAX_DEPTH, MAX_IN, MAX_LENGTH, FilterError, parse_filter

QUALYS = {
    "name": "a",
    "properties": {
        "id": "CVE-2019-14697",
        "status": {"code": "Unhealthy", "severity": "High"},
        "additionalData": {
            "assessedResourceType": "ContainerRegistryVulnerability",
            "patchable": True,
            "repositoryName": "app/web",
            "imageDigest": "sha256:aa",
            "acrguard": {"severity": "Critical", "advisoryId": "ALPINE-CVE-2019-14697"},
        },
    },
}
MDVM = {
    "name": "b",
    "properties": {
        "id": "CVE-2019-1547",
        "status": {"code": "Unhealthy", "severity": "Medium"},
        "additionalData": {
            "assessedResourceType": "AzureContainerRegistryVulnerability",
            "artifactDetails": {"repositoryName": "app/api", "digest": "sha256:bb"},
            "softwareDetails": {"fixStatus": "NoFixAvailable", "packageName": "openssl"},
            "acrguard": {"severity": "Unknown"},
        },
    },
}
HEALTHY = {"name": "c", "properties": {"status": {"code": "Healthy", "severity": "Low"}, "additionalData": {}}}
ROWS: list[dict[str, Any]] = [QUALYS, MDVM, HEALTHY]


def kept(text: str) -> list[str]:
    keep = parse_filter(text)
    return [row["name"] for row in ROWS if keep(row)]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("properties/status/severity eq 'High'", ["a"]),
        ("status/severity ne 'High'", ["b", "c"]),
        ("id eq 'CVE-2019-1547'", ["b"]),
        ("properties/id eq null", ["c"]),
        ("additionalData/patchable eq true", ["a"]),
        ("additionalData/patchable eq false", ["b"]),  # MDVM: fixStatus is not FixAvailable
        ("additionalData/repositoryName eq 'app/api'", ["b"]),  # either shape's path names the repository
        ("additionalData/artifactDetails/repositoryName in ('app/web', 'app/api')", ["a", "b"]),
        ("additionalData/imageDigest eq 'sha256:bb' or status/code eq 'Healthy'", ["b", "c"]),
        ("not (status/code eq 'Healthy') and additionalData/acrguard/severity ne 'Unknown'", ["a"]),
        ("STATUS/CODE EQ 'Unhealthy' AND (id eq 'x' OR id eq 'CVE-2019-14697')", ["a"]),
        ("additionalData/softwareDetails/packageName eq 'openssl'", ["b"]),
        ("additionalData/acrguard/advisoryId eq 'ALPINE-CVE-2019-14697'", ["a"]),
        ("id eq 'it''s'", []),
    ],
)
def test_grammar(text: str, names: list[str]) -> None:
    assert kept(text) == names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("properties/status/severity gt 'Low'", "at 28: expected eq, ne or in, found 'gt'"),
        ("severity eq 'High'", "at 1: unknown field 'severity'"),
        ("id eq 'x' and", "at 14: expected a field, found the end"),
        ("(id eq 'x'", "at 11: expected ')', found the end"),
        ("id eq 'unterminated", "at 7: unexpected character"),
        ("additionalData/patchable eq 'yes'", "at 29: additionalData/patchable holds a boolean, not 'yes'"),
        ("id eq true", "at 7: id holds a string, not true"),
        ("cvssV30Score eq 7", "at 1: unknown field"),
        ("id eq 7", "at 7: numbers are not supported"),
        ("id eq 'a' id", "at 11: expected 'and', 'or' or the end, found 'id'"),
        ("id in 'a'", "at 7: expected '(' after in"),
        ("", "at 1: empty"),
        ("id eq 'a' ; drop", "at 11: unexpected character ';'"),
    ],
)
def test_refusals_name_the_problem_and_where(text: str, message: str) -> None:
    with pytest.raises(FilterError) as refused:
        parse_filter(text)
    assert str(refused.value).startswith(message)


def test_bounds() -> None:
    with pytest.raises(FilterError, match=f"longer than {MAX_LENGTH}"):
        parse_filter("id eq '" + "x" * MAX_LENGTH + "'")
    with pytest.raises(FilterError, match="comparisons"):
        parse_filter(" or ".join(["id eq 'x'"] * (MAX_COMPARISONS + 1)))
    with pytest.raises(FilterError, match="nested"):
        parse_filter("(" * (MAX_DEPTH + 1) + "id eq 'x'" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(FilterError, match="values in one 'in' list"):
        parse_filter("id in (" + ",".join(["'x'"] * (MAX_IN + 1)) + ")")
    assert kept("(" * (MAX_DEPTH - 1) + "id eq 'CVE-2019-1547'" + ")" * (MAX_DEPTH - 1)) == ["b"]
