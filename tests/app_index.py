"""The real function app (`function_app.app`) indexed once per test process: `get_functions()` raises when
called a second time on the same app, so every test module that needs the real index shares this one; and
blueprints indexed on an app of their own (indexing function_app.app in a test module would make another
module's index of it raise)."""

from __future__ import annotations

from functools import cache

import azure.functions as func
from azure.functions.decorators.function_app import Blueprint, Function


@cache
def app_functions() -> dict[str, Function]:
    from function_app import app

    return {f.get_function_name(): f for f in app.get_functions()}


def blueprint_functions(*blueprints: Blueprint) -> dict[str, Function]:
    """The functions of `blueprints` registered on a new app with function-level auth, by name."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for blueprint in blueprints:
        app.register_functions(blueprint)
    return {f.get_function_name(): f for f in app.get_functions()}
