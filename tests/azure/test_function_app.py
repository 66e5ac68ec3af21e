"""The function app indexes like the Functions host would, and its handlers answer."""

from __future__ import annotations

import json

import azure.functions as func

from tests.app_index import app_functions


def test_health_function_binding_and_response() -> None:
    functions = app_functions()
    health = functions["health"]
    trigger = health.get_trigger()
    assert trigger.route == "health" and trigger.methods is not None
    assert json.loads(health.get_function_json())["bindings"][0]["authLevel"] == "ANONYMOUS"
    response = health.get_user_function()(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert response.status_code == 200
    assert json.loads(response.get_body())["status"] == "ok"


def test_timer_bindings() -> None:
    functions = app_functions()
    bindings = {
        name: json.loads(functions[name].get_function_json())["bindings"] for name in ("resource_log", "db_update")
    }
    (log_timer,) = bindings["resource_log"]
    assert (log_timer["type"], log_timer["name"], log_timer["schedule"]) == ("timerTrigger", "timer", "0 */15 * * * *")
    (db_timer,) = bindings["db_update"]
    assert (db_timer["type"], db_timer["name"], db_timer["schedule"]) == ("timerTrigger", "timer", "0 0 */6 * * *")
    assert not log_timer.get("runOnStartup") and not db_timer.get("runOnStartup")
