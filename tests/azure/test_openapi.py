"""The OpenAPI document: structurally checked (no OpenAPI 3.1 meta-schema is installed here:
openapi-spec-validator is not a dependency), its schemas are valid JSON Schema 2020-12, every $ref
resolves, every route is described, and real responses validate against the described schemas."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from scanner.report.subassessments import QUALYS_KEY
from tests.azure.conftest import REG, UNHEALTHY, Call


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_document_is_openapi_31_and_complete(call: Call, functions: dict[str, Any]) -> None:
    status, doc = call("openapi_document", headers={})
    assert status == 200
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] and doc["info"]["version"]
    for ref in _refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # KeyError: a dangling $ref
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    routes = {json.loads(f.get_function_json())["bindings"][0]["route"] for f in functions.values()}
    # This blueprint's routes; the whole table with the management routes and methods: test_manage_openapi.py.
    assert {"/" + r for r in routes} <= set(doc["paths"])
    for path in {"/" + r for r in routes}:
        item = doc["paths"][path]
        assert set(item) == {"get"}
        declared = {p["name"] for p in item["get"]["parameters"] if p["in"] == "path"}
        assert declared == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, path
        assert "200" in item["get"]["responses"]


def _validator(doc: dict[str, Any], name: str) -> Draft202012Validator:
    registry: Registry = Registry().with_resource(
        "urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"urn:doc#/components/schemas/{name}"}, registry=registry)


def test_responses_match_the_described_schemas(call: Call) -> None:
    doc = call("openapi_document", headers={})[1]
    sub = {"sub": "s", "rg": "r", "registry": "contoso", "key": QUALYS_KEY}
    _validator(doc, "SubAssessmentList").validate(call("list_sub_assessments", sub, {"$top": "2"})[1])
    _validator(doc, "ImageList").validate(call("list_images", params={"limit": "1"})[1])
    _validator(doc, "FindingList").validate(call("image_findings", {"registry": REG, "digest": UNHEALTHY})[1])
    _validator(doc, "Error").validate(call("get_image", {"registry": REG, "digest": "x"})[1])
