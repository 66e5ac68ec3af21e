"""The HTTP API end to end on a real store: bindings, sub-assessments in both shapes, lookups, auth, 400s."""

from __future__ import annotations

import json
import re
import sys
import types
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from scanner.model.types import SEVERITY_ORDER, Finding
from scanner.report.subassessments import MDVM_KEY, QUALYS_KEY, row_severity, vulnerability_id
from scanner.service.config import clients
from tests.azure.conftest import DELETED, HEALTHY, KEY, REG, UNHEALTHY, UNSCANNED, Call

ROUTE = {"sub": "0000", "rg": "rg1", "registry": "contoso"}
SUB = "list_sub_assessments"


def sub_route(key: str = QUALYS_KEY, **extra: str) -> dict[str, str]:
    return {**ROUTE, "key": key, **extra}


def all_rows(call: Call, key: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    query = dict(params or {})
    while True:
        status, body = call(SUB, sub_route(key), query)
        assert status == 200, body
        rows.extend(body["value"])
        if "nextLink" not in body:
            return rows
        query = {k: v[0] for k, v in parse_qs(urlsplit(body["nextLink"]).query).items()}


def test_bindings_routes_methods_auth_levels(functions: dict[str, Any]) -> None:
    expected = {
        "health": ("health", "ANONYMOUS"),
        "openapi_document": ("openapi.json", "ANONYMOUS"),
        "list_sub_assessments": (None, "FUNCTION"),
        "get_sub_assessment": (None, "FUNCTION"),
        "list_images": ("images", "FUNCTION"),
        "get_image": ("images/{registry}/{digest}", "FUNCTION"),
        "image_findings": ("images/{registry}/{digest}/findings", "FUNCTION"),
        "vulnerability_images": ("vulnerabilities/{vuln_id}/images", "FUNCTION"),
        "list_registry_sub_assessments": (
            "subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{registry}"
            "/providers/Microsoft.Security/subAssessments",
            "FUNCTION",
        ),
        "list_subscription_sub_assessments": (
            "subscriptions/{sub}/providers/Microsoft.Security/subAssessments",
            "FUNCTION",
        ),
        "get_scan": ("scans/{scan_id}", "FUNCTION"),
    }
    assert set(functions) == set(expected)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) for name in functions)  # the host's rule
    for name, (route, level) in expected.items():
        binding = json.loads(functions[name].get_function_json())["bindings"][0]
        assert binding["methods"] == ["GET"]
        assert binding.get("authLevel", "FUNCTION") == level, name
        if route is not None:
            assert binding["route"] == route
    sub_list = json.loads(functions["list_sub_assessments"].get_function_json())["bindings"][0]["route"]
    assert sub_list.endswith("/providers/Microsoft.Security/assessments/{key}/subAssessments")
    assert sub_list.startswith("subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/")


@pytest.fixture
def fn(functions: dict[str, Any]) -> dict[str, str]:
    return {"list": "list_sub_assessments", "get": "get_sub_assessment"}


def test_list_one_row_per_active_finding_in_both_shapes(call: Call, alpine_findings: list[Finding]) -> None:
    assert len(alpine_findings) == 8
    for key, kind in (
        (QUALYS_KEY, "ContainerRegistryVulnerability"),
        (MDVM_KEY, "AzureContainerRegistryVulnerability"),
    ):
        rows = all_rows(call, key, {"$top": "3", "api-version": "2019-01-01-preview"})
        unhealthy = [r for r in rows if r["properties"]["resourceDetails"]["id"].endswith(UNHEALTHY)]
        healthy = [r for r in rows if r["properties"]["resourceDetails"]["id"].endswith(HEALTHY)]
        assert len(unhealthy) == 8 and len(rows) == 9  # deleted and unscanned images have no rows
        assert not [r for r in rows if DELETED in r["id"] or UNSCANNED in r["properties"]["resourceDetails"]["id"]]
        assert [r["properties"]["status"]["code"] for r in healthy] == ["Healthy"]
        by_id = {vulnerability_id(f): f for f in alpine_findings}
        for row in unhealthy:
            assert row["type"] == "Microsoft.Security/assessments/subAssessments"
            assert row["id"] == (
                f"/subscriptions/0000/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/contoso"
                f"/providers/Microsoft.Security/assessments/{key}/subAssessments/{row['name']}"
            )
            props = row["properties"]
            finding = by_id[props["id"]]
            assert props["status"]["severity"] == row_severity(finding.severity)
            assert props["displayName"] == props["id"]
            assert props["additionalData"]["acrguard"]["advisoryId"] == finding.id
            assert props["status"]["severity"] in ("Low", "Medium", "High")
            assert props["resourceDetails"] == {"source": "Azure", "id": f"/repositories/app/alpine/images/{UNHEALTHY}"}
            assert props["additionalData"]["assessedResourceType"] == kind
            assert props["additionalData"]["acrguard"]["severity"] == finding.severity
        assert len({r["name"] for r in rows}) == 9


def test_unknown_severity_is_medium_never_low(call: Call, alpine_findings: list[Finding]) -> None:
    unknown = {vulnerability_id(f) for f in alpine_findings if f.severity == "Unknown"}
    assert unknown  # the Alpine secdb rates none of its advisories
    rows = all_rows(call, QUALYS_KEY)
    for row in rows:
        if row["properties"].get("id") in unknown:
            assert row["properties"]["status"]["severity"] == "Medium"
            assert row["properties"]["additionalData"]["acrguard"]["severity"] == "Unknown"


def test_shape_parameter_overrides_the_key(call: Call) -> None:
    status, body = call("list_sub_assessments", sub_route(QUALYS_KEY), {"shape": "mdvm"})
    assert status == 200
    kinds = {r["properties"]["additionalData"]["assessedResourceType"] for r in body["value"]}
    assert "AzureContainerRegistryVulnerability" in kinds
    data = next(r for r in body["value"] if r["properties"]["status"]["code"] == "Unhealthy")["properties"]
    details = data["additionalData"]
    assert details["artifactDetails"]["registryHost"] == REG
    assert details["artifactDetails"]["tags"] == ["3.10"]
    assert details["softwareDetails"]["osDetails"] == {"osPlatform": "linux", "osVersion": "alpine_linux_3.10"}


def test_paging_is_stable_and_complete(call: Call) -> None:
    whole = all_rows(call, QUALYS_KEY, {"$top": "1000"})
    paged = all_rows(call, QUALYS_KEY, {"$top": "2"})
    assert [r["name"] for r in paged] == [r["name"] for r in whole]
    status, first = call("list_sub_assessments", sub_route(), {"$top": "2"})
    assert status == 200 and len(first["value"]) == 2 and "$skipToken" in first["nextLink"]


def test_get_one_and_missing(call: Call) -> None:
    rows = all_rows(call, MDVM_KEY)
    status, row = call("get_sub_assessment", sub_route(MDVM_KEY, name=rows[3]["name"]))
    assert status == 200 and row == rows[3]
    status, body = call("get_sub_assessment", sub_route(MDVM_KEY, name="00000000-0000-0000-0000-000000000000"))
    assert status == 404 and body["error"]["code"] == "NotFound"


def test_unknown_assessment_key_is_404(call: Call) -> None:
    status, body = call("list_sub_assessments", sub_route("not-a-key"))
    assert status == 404 and "not-a-key" in body["error"]["message"]


def test_images_listing_paged_and_filtered(call: Call) -> None:
    status, body = call("list_images", params={"registry": REG, "limit": "2"})
    assert status == 200 and len(body["value"]) == 2 and "cursor=" in body["nextLink"]
    status, body = call("list_images", params={"registry": REG, "status": "Healthy"})
    assert [i["digest"] for i in body["value"]] == [HEALTHY]
    status, body = call("list_images", params={"registry": REG, "repository": "app/alpine"})
    assert [i["digest"] for i in body["value"]] == [UNHEALTHY]


def test_image_detail_and_404(call: Call) -> None:
    status, body = call("get_image", {"registry": REG, "digest": UNHEALTHY})
    assert status == 200
    assert body["health"] == "Unhealthy" and len(body["findings"]) == 8 and body["tags"] == ["app/alpine:3.10"]
    assert body["summary"]
    status, body = call("get_image", {"registry": REG, "digest": "sha256:" + "9" * 64})
    assert status == 404


def test_vulnerability_lookup(call: Call, alpine_findings: list[Finding]) -> None:
    cve = next(c for f in alpine_findings for c in f.cve_ids)
    status, body = call("vulnerability_images", {"vuln_id": cve})
    assert status == 200
    assert [(i["repository"], i["digest"]) for i in body["value"]] == [("app/alpine", UNHEALTHY)]


def test_findings_filters(call: Call, alpine_findings: list[Finding]) -> None:
    route = {"registry": REG, "digest": UNHEALTHY}
    assert len(call("image_findings", route)[1]["value"]) == 8
    patchable = sum(f.patchable for f in alpine_findings)
    assert len(call("image_findings", route, {"patchable": "true"})[1]["value"]) == patchable
    assert len(call("image_findings", route, {"fix_status": "fixed"})[1]["value"]) == patchable
    severity = alpine_findings[0].severity
    rows = call("image_findings", route, {"severity": severity, "include_disabled": "true"})[1]["value"]
    assert rows and all(r["severity"] == severity for r in rows)


def test_findings_by_risk_by_default_or_by_severity(call: Call, alpine_findings: list[Finding]) -> None:
    route = {"registry": REG, "digest": UNHEALTHY}
    by_default = call("image_findings", route)[1]["value"]
    by_risk = call("image_findings", route, {"sort": "risk"})[1]["value"]
    assert by_default == by_risk
    # The risk shown is today's: the stored findings with the database's current KEV and EPSS (the bundled
    # snapshot's EPSS slice scores the sample's CVEs), and the list is in its order.
    current = clients.current_signals(list(alpine_findings))
    assert sorted(r["risk"] for r in by_risk) == sorted(f.risk for f in current)
    assert any(r["epss"] for r in by_risk)
    keys = [(-r["risk"], SEVERITY_ORDER.index(r["severity"]), r["id"], r["package"]["name"]) for r in by_risk]
    assert keys == sorted(keys) and all(r["risk"] > 0 for r in by_risk)
    by_severity = call("image_findings", route, {"sort": "SEVERITY"})[1]["value"]
    assert [SEVERITY_ORDER.index(r["severity"]) for r in by_severity] == sorted(
        SEVERITY_ORDER.index(r["severity"]) for r in by_severity
    )
    assert sorted(r["key"] for r in by_severity) == sorted(r["key"] for r in by_risk)


@pytest.mark.parametrize(
    ("function", "route", "params", "parameter"),
    [
        ("image_findings", {"registry": REG, "digest": UNHEALTHY}, {"severity": "Huge"}, "severity"),
        ("image_findings", {"registry": REG, "digest": UNHEALTHY}, {"patchable": "maybe"}, "patchable"),
        ("image_findings", {"registry": REG, "digest": UNHEALTHY}, {"fix_status": "x"}, "fix_status"),
        ("image_findings", {"registry": REG, "digest": UNHEALTHY}, {"include_disabled": "1"}, "include_disabled"),
        ("image_findings", {"registry": REG, "digest": UNHEALTHY}, {"sort": "newest"}, "sort"),
        ("list_images", {}, {"status": "Sick"}, "status"),
        ("list_images", {}, {"limit": "0"}, "limit"),
        ("list_images", {}, {"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ("list_sub_assessments", sub_route(), {"$skipToken": "garbage!"}, "$skipToken"),
        ("list_sub_assessments", sub_route(), {"$top": "-1"}, "$top"),
        ("list_sub_assessments", sub_route(), {"shape": "other"}, "shape"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    call: Call, function: str, route: dict[str, str], params: dict[str, str], parameter: str
) -> None:
    status, body = call(function, route, params)
    assert status == 400
    assert body["error"]["message"].startswith(f"{parameter}:") and "\n" not in body["error"]["message"]


def test_key_required_when_configured(call: Call) -> None:
    route = {"registry": REG, "digest": UNHEALTHY}
    assert call("get_image", route, headers={})[0] == 401
    assert call("get_image", route, headers={"x-api-key": "wrong"})[0] == 401
    # The key is accepted in its own header only: as a bearer token it is nothing.
    assert call("get_image", route, headers={"Authorization": f"Bearer {KEY}"})[0] == 401
    assert call("get_image", route, headers={"X-Api-Key": KEY})[0] == 200


def test_bearer_token_setting(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACRGUARD_API_KEY")
    monkeypatch.setenv("ACRGUARD_API_TOKEN", "tok")
    assert call("list_images", headers={"Authorization": "Bearer tok"})[0] == 200
    assert call("list_images", headers={"Authorization": "Bearer nope"})[0] == 401
    assert call("list_images", headers={"x-api-key": "tok"})[0] == 401  # the token is no key


def test_the_events_token_reads_nothing(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACRGUARD_API_KEY")
    monkeypatch.setenv("ACRGUARD_EVENTS_TOKEN", "events")
    for headers in ({"Authorization": "Bearer events"}, {"x-api-key": "events"}):
        assert call("list_images", headers=headers)[0] == 401


def test_anonymous_refused_unless_explicitly_allowed(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACRGUARD_API_KEY")
    assert call("list_images", headers={})[0] == 401
    monkeypatch.setenv("ACRGUARD_ALLOW_ANONYMOUS", "yes")  # only the exact word opens it
    assert call("list_images", headers={})[0] == 401
    monkeypatch.setenv("ACRGUARD_ALLOW_ANONYMOUS", "true")
    assert call("list_images", headers={})[0] == 200


def test_in_azure_the_host_checks_function_keys(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    # Inside the Functions host's Python worker (its module loaded) on an App Service instance.
    monkeypatch.delenv("ACRGUARD_API_KEY")
    monkeypatch.setitem(sys.modules, "azure_functions_worker", types.ModuleType("azure_functions_worker"))
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")
    assert call("list_images", headers={})[0] == 200


def test_app_service_variables_alone_open_nothing(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    # A container on App Service (`acrguard serve` there, say) has them too, and no host checks its keys.
    monkeypatch.delenv("ACRGUARD_API_KEY")
    monkeypatch.setenv("WEBSITE_SITE_NAME", "app")
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc")
    assert call("list_images", headers={})[0] == 401


def test_health_stays_anonymous_and_says_nothing(call: Call) -> None:
    status, body = call("health", headers={})
    assert status == 200 and set(body) == {"status", "scanner_version"}


def test_store_not_configured_is_503(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACRGUARD_STORE")
    status, body = call("list_images")
    assert status == 503 and "ACRGUARD_STORE" in body["error"]["message"]
