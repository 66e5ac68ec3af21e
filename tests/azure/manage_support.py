"""Shared set-up of the management API tests: the sub-assessment and management blueprints indexed on an app
of their own, and real adapters configured through the environment as the Functions host would: a SQLite
findings store and queue in a temp dir, a vulnerability database imported from the Alpine secdb fixture,
a rules directory with one file rule. The scan job's fetch step is the one injected part: it returns the
inventory of a real docker-save archive (as tests/service does), so a drain needs no registry."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from scanner import __version__
from scanner.azure.api import bp as api_bp
from scanner.azure.manage import bp as manage_bp
from scanner.azure.openapi import document
from scanner.inventory.build import inventory
from scanner.model.settings import Settings
from scanner.model.types import Inventory
from scanner.queue import ScanRequest
from scanner.service.config import clients
from scanner.service.pipeline import DrainCounts, drain_queue
from scanner.vulndb.osv_import import import_sources
from tests.app_index import blueprint_functions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ARCHIVE = FIXTURES / "images/fanal/image3_gz_layers.tar"
KEY = "manage-key"
REG = "contoso.azurecr.io"
REPO = "app/alpine"
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
FILE_RULE = "file-accept-nothing"
# Settings that change who may call: unset in every test unless the test sets them.
FRONT_DOOR_SETTINGS = ("WEBSITE_SITE_NAME", "ACRGUARD_EVENTS_TOKEN", "ACRGUARD_TRUST_FUNCTIONS_HOST")


FUNCTIONS = blueprint_functions(api_bp, manage_bp)


@pytest.fixture(scope="session")
def vulndb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("manage-vulndb") / "vulndb.sqlite"
    import_sources(path, [str(FIXTURES / "osv/alpine-secdb/v3.10")])
    return path


@functools.cache
def archive_inventory() -> Inventory:
    """The real inventory of the fixture archive: what the scan job would return for it."""
    return inventory(f"docker-archive:{ARCHIVE}")[0]


@pytest.fixture
def manage_env(tmp_path: Path, vulndb_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "accept.yaml").write_text(
        f"rules:\n  - name: {FILE_RULE}\n    justification: matches no finding\n"
        "    match:\n      ids: [CVE-0000-00000]\n"
    )
    for name in ("WEBSITE_INSTANCE_ID", "ACRGUARD_API_TOKEN", "ACRGUARD_ALLOW_ANONYMOUS", *FRONT_DOOR_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    for name in ("ACRGUARD_GATES", "ACRGUARD_INSECURE_REGISTRIES", "ACRGUARD_HEALTH_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACRGUARD_STORE", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("ACRGUARD_QUEUE", str(tmp_path / "queue.sqlite"))
    monkeypatch.setenv("ACRGUARD_DB", str(vulndb_path))
    monkeypatch.setenv("ACRGUARD_REGISTRIES", REG)  # the registry the tests' requests name
    monkeypatch.setenv("ACRGUARD_RULES", str(rules))
    monkeypatch.setenv("ACRGUARD_API_KEY", KEY)
    monkeypatch.setenv("ACRGUARD_GATES", str(tmp_path / "no-gates"))  # an empty gates directory: no actions
    (tmp_path / "no-gates").mkdir()
    clients.close()
    yield tmp_path
    clients.close()


Response = tuple[int, Any]


def call(
    name: str,
    body: Any = None,
    route: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Response:
    """Invokes one function as the host would: (status, decoded JSON body)."""
    binding = json.loads(FUNCTIONS[name].get_function_json())["bindings"][0]
    payload = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    req = func.HttpRequest(
        binding["methods"][0],
        f"http://localhost/api/{binding['route']}",
        params=params or {},
        route_params=route or {},
        headers={"x-api-key": KEY} if headers is None else headers,
        body=payload,
    )
    # The settings as the test left the environment: in Azure a changed app setting restarts the host.
    clients.configure(Settings.from_environ())
    response = FUNCTIONS[name].get_user_function()(req)
    return response.status_code, json.loads(response.get_body())


def drain(max_messages: int = 16, seen: list[ScanRequest] | None = None) -> DrainCounts:
    """The queue worker's step with the configured policy; the fetch step returns the fixture archive's
    inventory (and keeps each request in `seen`)."""

    def fetch(request: ScanRequest) -> Inventory:
        if seen is not None:
            seen.append(request)
        return archive_inventory()

    return drain_queue(
        clients.queue(), clients.store(), clients.db(), fetch, __version__, max_messages, policy=clients.policy()
    )


def sub_assessments(registry_name: str = "contoso") -> list[dict[str, Any]]:
    from scanner.report.subassessments import QUALYS_KEY

    route = {"sub": "s", "rg": "r", "registry": registry_name, "key": QUALYS_KEY}
    status, body = call("list_sub_assessments", route=route, params={"$top": "1000"})
    assert status == 200, body
    rows: list[dict[str, Any]] = body["value"]
    return rows


def validate(schema: str, instance: Any) -> None:
    """The response against the schema the OpenAPI document gives it."""
    doc = document()
    registry: Registry = Registry().with_resource(
        "urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    Draft202012Validator({"$ref": f"urn:doc#/components/schemas/{schema}"}, registry=registry).validate(instance)


Call = Callable[..., Response]
