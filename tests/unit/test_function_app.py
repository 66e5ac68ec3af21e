"""The function app indexes like the Functions host would, and its handlers answer."""

from __future__ import annotations

import json

import azure.functions as func

from function_app import app


def test_health_function_binding_and_response() -> None:
    functions = {f.get_function_name(): f for f in app.get_functions()}
    health = functions["health"]
    trigger = health.get_trigger()
    assert trigger.route == "health" and trigger.methods is not None
    assert json.loads(health.get_function_json())["bindings"][0]["authLevel"] == "ANONYMOUS"
    response = health.get_user_function()(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert response.status_code == 200
    assert json.loads(response.get_body())["status"] == "ok"
