"""Paging of the lookups that grow with the store, over the HTTP handlers on a real SQLite store of their own:
sub-assessments by `$skipToken` (the last row's key) and the images carrying a vulnerability by `cursor`."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from scanner.model.types import Finding
from scanner.report.subassessments import MDVM_KEY, QUALYS_KEY, vulnerability_id
from scanner.store import FindingsStore, open_store
from tests.azure.conftest import KEY, MT, Call, t

REG = "fabrikam.azurecr.io"
ROUTE = {"sub": "0000", "rg": "rg1", "registry": "fabrikam", "key": QUALYS_KEY}
SUB = "list_sub_assessments"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alpine_findings: list[Finding]) -> FindingsStore:
    """Three Unhealthy images between Healthy ones; one pushed to two repositories."""
    path = str(tmp_path / "paging.sqlite")
    opened = open_store(path)
    for n, repo in ((1, "a/healthy"), (2, "b/unhealthy"), (3, "c/healthy"), (4, "d/unhealthy"), (4, "e/same")):
        opened.record_push(REG, repo, digest(n), f"v{n}", MT, t(n))
        unhealthy = "unhealthy" in repo or repo == "e/same"
        found = alpine_findings if unhealthy else []
        opened.save_assessment(REG, digest(n), found, "Unhealthy" if unhealthy else "Healthy", "", {}, t(n))
    monkeypatch.setenv("ACRGUARD_STORE", path)
    return opened


def pages(call: Call, query: dict[str, str], route: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every page, following nextLink, with the query each was asked with."""
    seen: list[dict[str, Any]] = []
    while True:
        status, body = call(SUB, route or ROUTE, query)
        assert status == 200, body
        seen.append(body)
        if "nextLink" not in body:
            return seen
        query = {k: v[0] for k, v in parse_qs(urlsplit(body["nextLink"]).query).items()}


def resource(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["properties"]["resourceDetails"]["id"], row["properties"].get("id", ""), row["name"]


def test_pages_cross_image_boundaries_and_the_last_has_no_next_link(
    call: Call, store: FindingsStore, alpine_findings: list[Finding]
) -> None:
    whole = pages(call, {"$top": "1000"})
    assert len(whole) == 1 and "nextLink" not in whole[0]
    rows = whole[0]["value"]
    per_image = len(alpine_findings)
    assert len(rows) == 2 + 3 * per_image  # one Healthy row per healthy image, one per finding otherwise
    assert [r["properties"]["status"]["code"] for r in rows].count("Healthy") == 2
    images = [r["properties"]["resourceDetails"]["id"].split("/images/")[0] for r in rows]
    assert images == sorted(images)  # grouped by repository, in order
    for top in (1, 3, per_image, per_image + 1, len(rows) - 1, len(rows)):
        paged = pages(call, {"$top": str(top), "api-version": "2019-01-01-preview"})
        assert [r for p in paged for r in p["value"]] == rows, top
        assert all(len(p["value"]) == top for p in paged[:-1]) and 1 <= len(paged[-1]["value"]) <= top
        assert len(paged) == -(-len(rows) // top)  # no empty trailing page when the rows divide evenly
        if len(paged) > 1:  # the link keeps the other parameters
            assert "api-version=2019-01-01-preview" in paged[0]["nextLink"]
    status, row = call("get_sub_assessment", {**ROUTE, "name": rows[per_image + 1]["name"]})
    assert status == 200 and row == rows[per_image + 1]


def test_rows_added_between_pages_neither_repeat_nor_shift(
    call: Call, store: FindingsStore, alpine_findings: list[Finding]
) -> None:
    status, first = call(SUB, ROUTE, {"$top": "4"})
    assert status == 200 and len(first["value"]) == 4 and "nextLink" in first
    before = [resource(r) for r in pages(call, {"$top": "1000"})[0]["value"]]
    # Between pages: a new image sorting before the cursor and one after it.
    store.record_push(REG, "a/aaa-new", digest(7), "v7", MT, t(7))
    store.save_assessment(REG, digest(7), [], "Healthy", "", {}, t(7))
    store.record_push(REG, "z/new", digest(8), "v8", MT, t(8))
    store.save_assessment(REG, digest(8), alpine_findings[:1], "Unhealthy", "", {}, t(8))
    query = {k: v[0] for k, v in parse_qs(urlsplit(first["nextLink"]).query).items()}
    rest = [resource(r) for p in pages(call, query) for r in p["value"]]
    got = [resource(r) for r in first["value"]] + rest
    assert len(got) == len(set(got))
    assert got[:-1] == before  # a/aaa-new sorts before the cursor: a client walking the pages never sees it
    assert got[-1][:2] == (f"/repositories/z/new/images/{digest(8)}", vulnerability_id(alpine_findings[0]))


def test_registry_by_resource_name_or_login_server_and_both_shapes(call: Call, store: FindingsStore) -> None:
    by_name = pages(call, {"$top": "5"})
    by_host = pages(call, {"$top": "5"}, {**ROUTE, "registry": REG})
    assert [r["name"] for p in by_name for r in p["value"]] == [r["name"] for p in by_host for r in p["value"]]
    mdvm = pages(call, {"$top": "5"}, {**ROUTE, "key": MDVM_KEY})
    kinds = {r["properties"]["additionalData"]["assessedResourceType"] for p in mdvm for r in p["value"]}
    assert kinds == {"AzureContainerRegistryVulnerability"}
    assert pages(call, {}, {**ROUTE, "registry": "unknown"}) == [{"value": []}]


def _token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("token", ["garbage!", _token(["a", "b"]), _token({"o": 50}), _token(["a", "b", 3])])
def test_bad_skip_token_is_400_naming_it(call: Call, store: FindingsStore, token: str) -> None:
    status, body = call(SUB, ROUTE, {"$skipToken": token})
    assert status == 400 and body["error"]["message"].startswith("$skipToken:")


def test_images_carrying_a_vulnerability_paged(
    call: Call, store: FindingsStore, alpine_findings: list[Finding]
) -> None:
    twin = replace(alpine_findings[0], package=replace(alpine_findings[0].package, name="twin"))
    store.record_push(REG, "f/twin", digest(9), "v9", MT, t(9))
    store.save_assessment(REG, digest(9), [alpine_findings[0], twin], "Unhealthy", "", {}, t(9))
    vuln = alpine_findings[0].id
    route = {"vuln_id": vuln}
    status, whole = call("vulnerability_images", route, {"limit": "1000"})
    assert status == 200 and "nextLink" not in whole and whole["vulnerability"] == vuln
    expected = [
        {"registry": REG, "repository": repo, "digest": digest(n)}
        for n, repo in ((2, "b/unhealthy"), (4, "d/unhealthy"), (4, "e/same"), (9, "f/twin"))
    ]
    assert whole["value"] == expected  # by registry, digest, repository; the twin finding listed once
    for limit in (1, 2, 3, 4):
        got: list[dict[str, str]] = []
        query: dict[str, str] = {"limit": str(limit)}
        while True:
            status, body = call("vulnerability_images", route, query)
            assert status == 200 and 1 <= len(body["value"]) <= limit
            got.extend(body["value"])
            if "nextLink" not in body:
                break
            query = {k: v[0] for k, v in parse_qs(urlsplit(body["nextLink"]).query).items()}
        assert got == expected, limit
    assert call("vulnerability_images", {"vuln_id": "CVE-0000-0"})[1]["value"] == []
    for params, parameter in (({"limit": "0"}, "limit"), ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor")):
        status, body = call("vulnerability_images", route, params)
        assert status == 400 and body["error"]["message"].startswith(f"{parameter}:")


def test_paged_vulnerability_response_matches_the_openapi_document(
    call: Call, store: FindingsStore, alpine_findings: list[Finding]
) -> None:
    doc = call("openapi_document", headers={})[1]
    operation = doc["paths"]["/vulnerabilities/{vuln_id}/images"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"vuln_id", "limit", "cursor"}
    schema = doc["components"]["schemas"]["ImageKeyList"]
    assert {"nextLink", "vulnerability", "value"} <= set(schema["properties"])
    status, body = call("vulnerability_images", {"vuln_id": alpine_findings[0].id}, {"limit": "1"})
    assert status == 200 and "nextLink" in body
    registry = Registry().with_resource("urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012))
    Draft202012Validator({"$ref": "urn:doc#/components/schemas/ImageKeyList"}, registry=registry).validate(body)


def _next_link(functions: dict[str, Any], url: str) -> str:
    """The nextLink of the first page of images asked for at `url` (the URL the host saw: its Host header)."""
    from scanner.model.settings import Settings
    from scanner.service.config import clients

    clients.configure(Settings.from_environ())
    req = func.HttpRequest("GET", url, params={"limit": "1"}, headers={"x-api-key": KEY}, body=b"")
    response = functions["list_images"].get_user_function()(req)
    body = json.loads(response.get_body())
    assert response.status_code == 200 and "nextLink" in body, body
    return str(body["nextLink"])


@pytest.mark.parametrize(
    ("configured", "base"),
    [
        ({"ACRGUARD_PUBLIC_URL": "https://scanner.contoso.com/acrguard/"}, "https://scanner.contoso.com/acrguard"),
        ({"WEBSITE_HOSTNAME": "acrguard-x.azurewebsites.net"}, "https://acrguard-x.azurewebsites.net"),
        ({"WEBSITE_HOSTNAME": "localhost:7071"}, "http://localhost:7071"),  # the Core Tools' host
        (
            {"ACRGUARD_PUBLIC_URL": "http://10.0.0.4:7071", "WEBSITE_HOSTNAME": "acrguard-x.azurewebsites.net"},
            "http://10.0.0.4:7071",
        ),
        ({}, ""),  # nothing configured: relative to wherever the client reached the API
    ],
)
def test_next_link_base_is_configured_never_the_hosts_url(
    functions: dict[str, Any],
    store: FindingsStore,
    monkeypatch: pytest.MonkeyPatch,
    configured: dict[str, str],
    base: str,
) -> None:
    monkeypatch.delenv("WEBSITE_HOSTNAME", raising=False)
    for name, value in configured.items():
        monkeypatch.setenv(name, value)
    for url in ("http://evil.example/api/images?limit=1", "http://evil.example:8443/api/images"):
        link = _next_link(functions, url)
        assert link.startswith(f"{base}/api/images?") and "evil" not in link, link
        assert parse_qs(urlsplit(link).query)["limit"] == ["1"]


def test_a_public_url_that_is_not_an_http_url_is_a_settings_error() -> None:
    from scanner.model.settings import Settings, SettingsError

    for bad in ("ftp://x", "scanner.contoso.com", "https://x/?a=1", "https://x/#top", "https://"):
        with pytest.raises(SettingsError, match="ACRGUARD_PUBLIC_URL"):
            Settings.from_environ({"ACRGUARD_PUBLIC_URL": bad})


@pytest.mark.parametrize(
    ("route", "params", "culprit"),
    [
        ({}, {"registry": "reg\x00"}, "query parameter registry: contains NUL"),
        ({}, {"repository": "\ud800"}, "query parameter repository: contains a lone surrogate"),
        ({}, {"cursor\x00": "x"}, "query parameter cursor\\x00: contains NUL"),
        ({"registry": REG, "digest": "sha256:\x00"}, {}, "route parameter digest: contains NUL"),
    ],
)
def test_nul_and_lone_surrogates_in_parameters_are_400_naming_them(
    call: Call, store: FindingsStore, route: dict[str, str], params: dict[str, str], culprit: str
) -> None:
    name = "get_image" if route else "list_images"
    status, body = call(name, route, params)
    assert status == 400 and body["error"]["code"] == "BadRequest", body
    assert body["error"]["message"].startswith(culprit), body
