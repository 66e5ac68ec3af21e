"""azure.yaml (Azure Developer CLI), the Function App package (.funcignore), the job image's build context
(.dockerignore) and local.settings.json.example, checked against the templates and the code."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import yaml

from scanner.model.settings import SETTINGS, Settings
from tests.infra import bicep

ROOT = bicep.ROOT
# What azd's service hosts deploy to: the resource tagged `azd-service-name: <service>` of this type.
HOST_TYPES = {"function": "Microsoft.Web/sites", "containerapp": "Microsoft.App/jobs"}
# The Function App: the Python v2 entry point, the host's configuration, its dependencies, the code and the
# policies (disable rules, gates) it loads from its working directory.
FUNCTION_FILES = ("function_app.py", "host.json", "requirements.txt", "scanner/__init__.py", "policies/gates")


def project() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "azure.yaml").read_text())
    return document


def tagged_services() -> dict[str, str]:
    """azd-service-name tag -> the tagged resource's type, over every template."""
    found: dict[str, str] = {}
    for resource in bicep.all_resources():
        tags = resource.body.get("tags")
        if isinstance(tags, dict) and tags.get("function", {}).get("type") == "union":
            for part in tags["function"]["parameters"].values():
                if isinstance(part, dict) and "'azd-service-name'" in part:
                    assert part["'azd-service-name'"] not in found, "one resource per service"
                    found[part["'azd-service-name'"]] = resource.type
    return found


def test_azure_yaml_points_at_the_bicep() -> None:
    document = project()
    assert document["name"] == "acrguard"
    infra = document["infra"]
    assert infra["provider"] == "bicep"
    assert (ROOT / infra["path"] / f"{infra['module']}.bicep").is_file()
    assert (ROOT / infra["path"] / f"{infra['module']}.parameters.json").is_file()
    assert bicep.template(f"{infra['module']}.bicep")["globals"]["scope"]["value"] == "subscription"


def test_every_service_has_its_tagged_resource() -> None:
    services = project()["services"]
    assert set(services) == {"api", "worker"}
    tagged = tagged_services()
    assert set(tagged) == set(services)
    for name, service in services.items():
        assert tagged[name] == HOST_TYPES[service["host"]], name
        assert (ROOT / service["project"]).is_dir()


def test_function_service_is_the_repository_root_app() -> None:
    api = project()["services"]["api"]
    assert api["host"] == "function" and api["language"] == "python"
    for relative in FUNCTION_FILES:
        assert (ROOT / api["project"] / relative).exists(), relative


def test_worker_image_is_the_dockerfile_and_the_registry_is_an_output() -> None:
    worker = project()["services"]["worker"]
    assert worker["host"] == "containerapp"
    dockerfile = ROOT / worker["project"] / worker["docker"]["path"]
    assert dockerfile.is_file()
    text = dockerfile.read_text()
    assert "COPY policies ./policies" in text and "COPY scanner ./scanner" in text
    # azd pushes to the registry main.bicep names here, and feeds the image back as SERVICE_WORKER_IMAGE_NAME.
    assert "AZURE_CONTAINER_REGISTRY_ENDPOINT" in bicep.outputs("main.bicep")
    parameters = json.loads((bicep.INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["jobImage"]["value"] == "${SERVICE_WORKER_IMAGE_NAME=}"


def test_postdeploy_hook_turns_the_event_subscriptions_on() -> None:
    hooks = project()["hooks"]["postdeploy"]
    parameters = json.loads((bicep.INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["deployEventSubscriptions"]["value"] == "${ACRGUARD_EVENT_SUBSCRIPTIONS=false}"
    for shell in ("posix", "windows"):
        run = hooks[shell]["run"]
        assert "azd env set ACRGUARD_EVENT_SUBSCRIPTIONS true" in run and "azd provision" in run


def _ignored(patterns: list[str], relative: str) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        bare = pattern.rstrip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, bare) or fnmatch.fnmatch(p.rsplit("/", 1)[-1], bare) for p in prefixes):
            return True
    return False


def ignore_patterns(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_funcignore_keeps_the_app_and_drops_the_rest() -> None:
    patterns = ignore_patterns(".funcignore")
    for relative in FUNCTION_FILES:
        assert not _ignored(patterns, relative), relative
    for relative in ("tests/conftest.py", ".venv/bin/python", ".cache/x", "samples", "benchmarks", "infra/main.bicep"):
        assert _ignored(patterns, relative), relative


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    patterns = ignore_patterns(".dockerignore")
    assert patterns[0] == "*"
    kept = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied |= set(line.split()[1:-1])
    assert copied <= kept


def test_local_settings_example_is_usable_settings() -> None:
    document = json.loads((ROOT / "local.settings.json.example").read_text())
    values: dict[str, str] = document["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    declared = {s.env for s in SETTINGS.values()}
    ours = {k: v for k, v in values.items() if k.startswith("ACRGUARD_")}
    assert set(ours) <= declared
    settings = Settings.from_environ(ours)
    assert settings.store and settings.queue and settings.api_key
    # Locally the Functions host does not check function keys: trusting it would open every route.
    assert not settings.trust_functions_host


def test_readme_deployment_guide_lists_every_role() -> None:
    from scanner.azure.deployment import NEEDED_ROLES

    text = (ROOT / "README.md").read_text()
    guide = text[text.index("## Deploy to Azure") :]
    guide = guide[: guide.index("\n## ", 1)]
    for role in {r.role for r in NEEDED_ROLES}:
        assert f"| {role} " in guide, role
    for section in ("Cost drivers", "Adding a registry", "Rotating keys", "Upgrading", "Not verified"):
        assert f"**{section}" in guide, section


def test_every_checkov_skip_is_one_check_with_its_reason() -> None:
    # No blanket skips: no checkov configuration file, and each inline skip names one check and says why.
    assert not list(ROOT.glob(".checkov.y*ml")) and not list((ROOT / "infra").glob(".checkov.y*ml"))
    skips = 0
    for path in (ROOT / "infra").rglob("*.bicep"):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                match = re.fullmatch(r"\s*//checkov:skip=(CKV2?_AZURE_\d+):(.{30,})", line)
                assert match, f"{path.name}: {line.strip()}"
                skips += 1
    assert skips
