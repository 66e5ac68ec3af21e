"""The dashboard's functions in the real function app: anonymous to the host (a browser sends no function
key; each page checks its caller itself), under `dashboard`, with names the host accepts."""

from __future__ import annotations

import json
import re

from tests.app_index import app_functions


def test_dashboard_routes_are_registered_and_anonymous_to_the_host() -> None:
    dashboard = {
        name: json.loads(f.get_function_json())["bindings"][0]
        for name, f in app_functions().items()
        if name.startswith("dashboard_")
    }
    assert {b["route"] for b in dashboard.values()} >= {
        "dashboard",
        "dashboard/login",
        "dashboard/images/{registry}/{digest}",
        "dashboard/vulnerabilities/{vuln_id}",
        "dashboard/rules",
        "dashboard/operations",
    }
    for name, binding in dashboard.items():
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name)
        assert binding["authLevel"] == "ANONYMOUS", name
        assert binding["route"].startswith("dashboard")
