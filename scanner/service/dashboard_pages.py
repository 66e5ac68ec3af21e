"""Rendering the dashboard: Jinja2 templates (HTML, autoescaped) and one stylesheet, overridable by name.

The packaged templates live in `scanner/data/dashboard/`; a directory given as `ACRGUARD_DASHBOARD_TEMPLATES`
(else `policies/dashboard` of a git checkout, when present) is searched first, so restyling means writing
`dashboard.css` there, and changing a page means copying its template there: the same pattern as the
remediation templates (`scanner.policy.remediation.make_environment`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2

from scanner.model.errors import AcrguardError
from scanner.policy.remediation import short_digest, template_search
from scanner.service import dashboard_charts

_PACKAGE = Path(__file__).resolve().parents[1]
PACKAGED = _PACKAGE / "data" / "dashboard"
CHECKOUT = _PACKAGE.parent / "policies" / "dashboard"
BASE_PATH = "/api/dashboard"
STYLESHEET = "dashboard.css"


class TemplateDirError(AcrguardError):
    """The configured template directory is missing (a page answers 500 Misconfigured, naming it)."""


@lru_cache(maxsize=4)
def environment(template_dir: str | None) -> jinja2.Environment:
    """One environment per template directory, compiled templates cached for the process's life."""
    search = template_search(template_dir, CHECKOUT, PACKAGED, TemplateDirError, "dashboard template")
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(p)) for p in search]),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short_digest"] = short_digest
    env.filters["when"] = when
    env.filters["path"] = path_segment
    env.globals["base"] = BASE_PATH
    env.globals["url"] = url
    env.globals["trend_chart"] = dashboard_charts.trend_chart
    env.globals["severity_bars"] = dashboard_charts.severity_bars
    env.globals["colours"] = dashboard_charts.SEVERITY_COLOURS
    return env


def render(template_dir: str | None, name: str, context: Mapping[str, Any]) -> str:
    return environment(template_dir).get_template(name).render(**context)


def stylesheet(template_dir: str | None) -> str:
    """`dashboard.css`, the user's when their directory holds one."""
    env = environment(template_dir)
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, STYLESHEET)
    return source


def when(value: datetime | None) -> str:
    """A time as `YYYY-MM-DD HH:MM UTC` ("—" when there is none)."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M UTC")


def path_segment(value: object) -> str:
    """A value as one URL path segment (`/` and `:` encoded as well)."""
    return quote(str(value), safe="")


def url(path: str, query: Mapping[str, Any] | None = None, **changes: Any) -> str:
    """`path` under the dashboard with `query` updated by `changes`; empty values are left out so that a
    link never carries a filter the page would not apply."""
    merged = {**(query or {}), **changes}
    pairs = [(k, str(v)) for k, v in merged.items() if v not in ("", None)]
    return f"{BASE_PATH}{path}" + (f"?{urlencode(pairs)}" if pairs else "")
