"""The whole HTTP route table against the OpenAPI document: every route and method of the HTTP blueprints
(sub-assessments, management, registry notifications) and the Event Grid webhook serve answers is described
with its path parameters, and nothing else is; the management functions' bindings (routes, methods,
function-key auth level)."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from scanner.azure.api import bp as api_bp
from scanner.azure.events import bp as events_bp
from scanner.azure.manage import bp as manage_bp
from scanner.azure.openapi import EVENTGRID_PATH, document
from scanner.localhost.serve import EVENTGRID_PATH as SERVED_WEBHOOK
from tests.app_index import blueprint_functions
from tests.azure.manage_support import FUNCTIONS

HTTP_FUNCTIONS = blueprint_functions(api_bp, manage_bp, events_bp)

MANAGE = {
    "create_scan": ("scans", ["POST"]),
    "import_notifications": ("import-notifications", ["POST"]),
    "list_rules": ("rules", ["GET"]),
    "create_rule": ("rules", ["POST"]),
    "get_rule": ("rules/{name}", ["GET"]),
    "delete_rule": ("rules/{name}", ["DELETE"]),
    "list_dead_letters": ("dead-letters", ["GET"]),
    "requeue_dead_letter": ("dead-letters/{id}/requeue", ["POST"]),
}


def test_manage_bindings() -> None:
    for name, (route, methods) in MANAGE.items():
        http_in, http_out = json.loads(FUNCTIONS[name].get_function_json())["bindings"]
        assert (http_in["type"], http_in["route"], http_in["methods"], http_in["authLevel"]) == (
            "httpTrigger",
            route,
            methods,
            "FUNCTION",
        ), name
        assert http_out["type"] == "http"


def test_every_route_and_method_is_documented_and_nothing_else() -> None:
    doc = document()
    served: set[tuple[str, str]] = set()
    for fn in HTTP_FUNCTIONS.values():
        trigger = json.loads(fn.get_function_json())["bindings"][0]
        if trigger["type"] == "httpTrigger":
            served |= {("/" + trigger["route"], m.lower()) for m in trigger["methods"]}
    assert EVENTGRID_PATH == SERVED_WEBHOOK and doc["paths"][EVENTGRID_PATH]["servers"] == [{"url": "/"}]
    served |= {(EVENTGRID_PATH, "post"), (EVENTGRID_PATH, "options")}
    described = {(path, method) for path, item in doc["paths"].items() for method in item if method != "servers"}
    assert served == described
    for path, method in described:
        operation = doc["paths"][path][method]
        declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert declared == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, (path, method)
        assert any(code.startswith("2") for code in operation["responses"]), (path, method)
        if method in ("post", "delete", "options"):
            security = operation.get("security", doc["security"])
            assert security and {} not in security, ("writes are never anonymous", path, method)
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
