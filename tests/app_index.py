"""The real function app (`function_app.app`) indexed once per test process: `get_functions()` raises when
called a second time on the same app, so every test module that needs the real index shares this one."""

from __future__ import annotations

from functools import cache

from azure.functions.decorators.function_app import Function


@cache
def app_functions() -> dict[str, Function]:
    from function_app import app

    return {f.get_function_name(): f for f in app.get_functions()}
