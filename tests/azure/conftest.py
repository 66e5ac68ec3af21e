"""A real SQLite findings store filled through its own write API with a real assessment (the Alpine 3.10
fixture image against the Alpine secdb), plus a healthy, a deleted and an unscanned image; and the blueprint
indexed once on an app of its own (function_app.app is indexed by the unit tests, and indexing twice raises)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from scanner.assess.findings import find_vulnerabilities
from scanner.assess.image_health import summarise
from scanner.inventory.build import inventory
from scanner.model.settings import Settings
from scanner.model.types import Finding
from scanner.service.config import clients
from scanner.store import open_store
from scanner.vulndb.location import open_scan_database
from scanner.vulndb.osv_import import import_sources
from tests.app_index import blueprint_functions
from tests.azure.manage_support import FRONT_DOOR_SETTINGS, manage_env, vulndb_path  # noqa: F401 - the management tests' fixtures

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REG = "contoso.azurecr.io"
REPO = "app/alpine"
MT = "application/vnd.docker.distribution.manifest.v2+json"
UNHEALTHY = "sha256:" + "1" * 64
HEALTHY = "sha256:" + "2" * 64
DELETED = "sha256:" + "3" * 64
UNSCANNED = "sha256:" + "4" * 64
KEY = "s3cret-key"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture(scope="session")
def alpine_findings(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    inv = inventory(f"docker-archive:{FIXTURES / 'images/fanal/image3_gz_layers.tar'}")[0]
    path = tmp_path_factory.mktemp("osv") / "alpine.sqlite"
    import_sources(path, [str(FIXTURES / "osv/alpine-secdb/v3.10")])
    return find_vulnerabilities(inv.packages, open_scan_database(str(path)))


@pytest.fixture(scope="session")
def store_path(tmp_path_factory: pytest.TempPathFactory, alpine_findings: list[Finding]) -> str:
    path = str(tmp_path_factory.mktemp("store") / "findings.sqlite")
    with open_store(path) as store:
        store.record_push(REG, REPO, UNHEALTHY, "3.10", MT, t(0))
        store.save_assessment(REG, UNHEALTHY, alpine_findings, "Unhealthy", "", summarise(alpine_findings), t(1))
        store.record_push(REG, "app/healthy", HEALTHY, "latest", MT, t(2))
        store.save_assessment(REG, HEALTHY, [], "Healthy", "", summarise([]), t(3))
        store.record_push(REG, "app/gone", DELETED, "old", MT, t(4))
        store.save_assessment(REG, DELETED, alpine_findings, "Unhealthy", "", summarise(alpine_findings), t(5))
        store.mark_deleted(REG, "app/gone", DELETED, t(6))
        store.record_push(REG, "app/new", UNSCANNED, "next", MT, t(7))
    return path


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    from scanner.azure.api import bp

    return blueprint_functions(bp)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, store_path: str) -> Iterator[None]:
    for name in ("WEBSITE_INSTANCE_ID", "ACRGUARD_API_TOKEN", "ACRGUARD_ALLOW_ANONYMOUS", *FRONT_DOOR_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACRGUARD_STORE", store_path)
    monkeypatch.setenv("ACRGUARD_API_KEY", KEY)
    yield


Call = Callable[..., tuple[int, Any]]


@pytest.fixture
def call(functions: dict[str, Any]) -> Call:
    """call(function name, route params, query params, headers) → (status, decoded JSON)."""

    def run(
        name: str,
        route: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        req = func.HttpRequest(
            "GET",
            "http://localhost/api/x",
            params=params or {},
            route_params=route or {},
            headers={"x-api-key": KEY} if headers is None else headers,
            body=b"",
        )
        # The settings as the test left the environment: in Azure a changed app setting restarts the host.
        clients.configure(Settings.from_environ())
        response = functions[name].get_user_function()(req)
        return response.status_code, json.loads(response.get_body())

    return run
