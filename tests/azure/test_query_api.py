"""The query side of the HTTP API on a real store: `$filter` on the sub-assessment listings (paging included),
ListAll at a registry's and a subscription's scope, and `GET /api/scans/{id}`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from scanner.model.types import Finding
from scanner.report.subassessments import MDVM_KEY, QUALYS_KEY, vulnerability_id
from scanner.store import open_store
from tests.azure.conftest import HEALTHY, REG, UNHEALTHY, Call

ROUTE = {"sub": "0000", "rg": "rg1", "registry": "contoso"}
LIST, REGISTRY_ALL, SUBSCRIPTION_ALL = (
    "list_sub_assessments",
    "list_registry_sub_assessments",
    "list_subscription_sub_assessments",
)
RESOURCE = "/subscriptions/0000/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/contoso"


def walk(call: Call, name: str, route: dict[str, str], params: dict[str, str]) -> list[dict[str, Any]]:
    """Every page's body, following nextLink."""
    bodies: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        status, body = call(name, route, query)
        assert status == 200, body
        bodies.append(body)
        if "nextLink" not in body:
            return bodies
        query = {k: v[0] for k, v in parse_qs(urlsplit(body["nextLink"]).query).items()}


def rows(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for body in bodies for row in body["value"]]


def test_filter_by_cve_severity_status_repository_digest_patchable(call: Call, alpine_findings: list[Finding]) -> None:
    route = {**ROUTE, "key": QUALYS_KEY}
    every = rows(walk(call, LIST, route, {}))
    cve = vulnerability_id(alpine_findings[0])

    def names(text: str, route: dict[str, str] = route, top: str = "2") -> list[str]:
        return [r["name"] for r in rows(walk(call, LIST, route, {"$filter": text, "$top": top}))]

    assert names(f"properties/id eq '{cve}'") == [r["name"] for r in every if r["properties"].get("id") == cve]
    assert names("status/code eq 'Healthy'") == [
        r["name"] for r in every if r["properties"]["status"]["code"] == "Healthy"
    ]
    assert len(names("properties/status/severity eq 'Medium' and status/code eq 'Unhealthy'")) == 8  # all Unknown
    assert names("properties/status/severity eq 'Low'") == names("status/code eq 'Healthy'")
    assert len(names("additionalData/repositoryName eq 'app/alpine'")) == 8
    assert names(f"additionalData/imageDigest eq '{HEALTHY}'") == names("status/code eq 'Healthy'")
    patchable = {r["name"] for r in every if r["properties"]["additionalData"].get("patchable")}
    assert set(names("additionalData/patchable eq true")) == patchable
    mdvm = {**ROUTE, "key": MDVM_KEY}
    assert set(names("additionalData/patchable eq true", mdvm)) == set(
        names("additionalData/softwareDetails/fixStatus eq 'FixAvailable'", mdvm)
    )
    assert len(names(f"additionalData/artifactDetails/digest eq '{UNHEALTHY}'", mdvm)) == 8


def test_a_filtered_page_is_short_but_the_walk_is_complete(call: Call) -> None:
    route = {**ROUTE, "key": QUALYS_KEY}
    status, first = call(LIST, route, {"$filter": "status/code eq 'Healthy'", "$top": "1"})
    assert status == 200 and len(first["value"]) <= 1
    bodies = walk(call, LIST, route, {"$filter": "status/code ne 'Healthy'", "$top": "3"})
    assert all(len(b["value"]) <= 3 for b in bodies) and len(rows(bodies)) == 8
    assert all("%24filter=" in b["nextLink"] or "$filter=" in b["nextLink"] for b in bodies[:-1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status/severity lt 'High'", "$filter: at 17: expected eq, ne or in, found 'lt'"),
        ("properties/cvss eq 'x'", "$filter: at 1: unknown field 'properties/cvss'"),
        ("id eq 'x' and (", "$filter: at 16: expected a field, found the end"),
    ],
)
def test_an_unsupported_filter_is_a_400_naming_it(call: Call, text: str, message: str) -> None:
    for name, route in (
        (LIST, {**ROUTE, "key": QUALYS_KEY}),
        (REGISTRY_ALL, ROUTE),
        (SUBSCRIPTION_ALL, {"sub": "0000"}),
    ):
        status, body = call(name, route, {"$filter": text})
        assert status == 400, body
        assert body["error"]["code"] == "BadRequest" and body["error"]["message"].startswith(message)
    status, body = call(LIST, {**ROUTE, "key": QUALYS_KEY}, {"$filter": "id eq '" + "x" * 2001 + "'"})
    assert status == 400 and "longer than 2000 characters" in body["error"]["message"]


def test_list_all_at_a_registry_scope(call: Call) -> None:
    listed = rows(walk(call, LIST, {**ROUTE, "key": MDVM_KEY}, {}))
    everything = rows(walk(call, REGISTRY_ALL, ROUTE, {"$top": "4"}))
    assert everything == listed  # the MDVM-era key, Defender's current one
    qualys = rows(walk(call, REGISTRY_ALL, ROUTE, {"shape": "qualys"}))
    assert qualys == rows(walk(call, LIST, {**ROUTE, "key": QUALYS_KEY}, {}))


def test_list_all_at_a_subscription_scope(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    assert call(SUBSCRIPTION_ALL, {"sub": "0000"}) == (200, {"value": []})  # no registry configured
    monkeypatch.setenv("ACRGUARD_REGISTRY_RESOURCES", f"{REG}={RESOURCE}")
    expected = rows(walk(call, LIST, {**ROUTE, "rg": "rg-acr", "key": MDVM_KEY}, {}))
    assert rows(walk(call, SUBSCRIPTION_ALL, {"sub": "0000"}, {"$top": "2"})) == expected
    assert all(r["id"].startswith(RESOURCE + "/providers/Microsoft.Security/") for r in expected)
    assert call(SUBSCRIPTION_ALL, {"sub": "1111"}) == (200, {"value": []})  # another subscription's
    # Two registries, the second empty: the token says which registry the cursor is in.
    other = "/subscriptions/0000/resourceGroups/rg-b/providers/Microsoft.ContainerRegistry/registries/empty"
    monkeypatch.setenv("ACRGUARD_REGISTRY_RESOURCES", f"{REG}={RESOURCE},{other}")
    bodies = walk(call, SUBSCRIPTION_ALL, {"sub": "0000"}, {"$top": "4"})
    assert rows(bodies) == expected and len(bodies) == 3
    status, body = call(SUBSCRIPTION_ALL, {"sub": "0000"}, {"$skipToken": "not-issued"})
    assert status == 400 and body["error"]["message"].startswith("$skipToken:")


def test_a_scan_by_id(call: Call, store_path: str) -> None:
    at = datetime(2026, 2, 1, tzinfo=UTC)
    with open_store(store_path) as store:
        scan_id = store.start_scan("scans.example", "app/x", "sha256:" + "9" * 64, "manual", at)
        store.finish_scan(scan_id, "succeeded", "", {"fetch": 1.5}, "1.2.3", "db-7", ["apk@1"], at)
    status, scan = call("get_scan", {"scan_id": scan_id})
    assert status == 200
    assert scan == {
        "scanId": scan_id,
        "registry": "scans.example",
        "repository": "app/x",
        "digest": "sha256:" + "9" * 64,
        "status": "succeeded",
        "trigger": "manual",
        "startedAt": "2026-02-01T00:00:00+00:00",
        "finishedAt": "2026-02-01T00:00:00+00:00",
        "error": "",
        "timings": {"fetch": 1.5},
        "scannerVersion": "1.2.3",
        "dbVersion": "db-7",
        "detectorVersions": ["apk@1"],
    }
    status, missing = call("get_scan", {"scan_id": "nope"})
    assert status == 404 and missing["error"] == {"code": "NotFound", "message": "no scan 'nope'"}
    assert call("get_scan", {"scan_id": scan_id}, headers={})[0] == 401


def test_a_filter_matching_nothing_reads_a_bounded_number_of_rows_per_page(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scanner.service import lookups

    monkeypatch.setattr(lookups, "FILTER_BUDGET", 3)
    bodies = walk(call, LIST, {**ROUTE, "key": QUALYS_KEY}, {"$filter": "id eq 'CVE-0000-0000'", "$top": "2"})
    # 9 rows, 2 a read, a page stops once 3 were read: 4, 4 and the last 1, every page empty.
    assert [len(b["value"]) for b in bodies] == [0, 0, 0]
    assert all("nextLink" in b for b in bodies[:-1])
