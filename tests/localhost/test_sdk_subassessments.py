"""Microsoft's own client reads acrguard: `azure-mgmt-security`'s SubAssessments operations (API 2019-01-01-preview)
pointed at `acrguard serve`, with findings from real scans of the sample image (samples/alpine-3.10-app.tar, pushed
with skopeo to a real registry that notifies serve) and a healthy image beside it.

List, Get, ListAll at the registry's and the subscription's scope, paging by `$top` and `nextLink`, both shapes,
`$filter`; and `GET /api/scans/{id}` for the scan an image document names. The SDK authenticates with a token
credential handing out the API token (ACRGUARD_API_TOKEN, `Authorization: Bearer`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.security import SecurityCenter
from azure.mgmt.security.v2019_01_01_preview.models import (
    AdditionalData,
    ContainerRegistryVulnerabilityProperties,
    SecuritySubAssessment,
)

from scanner.report.subassessments import MDVM_KEY, QUALYS_KEY
from scanner.vulndb.osv_import import import_sources

from .stack import (
    FUNCTION_KEY,
    Serve,
    alpine_layout,
    realparts,
    start_notifying_registry,
    start_serve,
    wait_for,
    with_serve_port,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "alpine-3.10-app.tar"
API_TOKEN = "sdk-api-token"
SUB = "00000000-0000-0000-0000-0000000000aa"
RG = "rg-scans"
ACR_NAME = "localacr"
# A clean apk database: zlib at a version no Alpine 3.10 advisory affects.
CLEAN_APK_DB = b"P:zlib\nV:1.2.11-r1\nA:x86_64\no:zlib\n\n"


class ApiToken:
    """A TokenCredential (azure.core) that hands out the configured API token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        del scopes, kwargs
        return AccessToken(API_TOKEN, int(time.time()) + 3600)


class Stack:
    def __init__(self, serve: Serve, registry: realparts.Registry, app: str, clean: str) -> None:
        self.serve, self.registry, self.app, self.clean = serve, registry, app, clean
        self.scope = f"subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries/" + (
            registry.host
        )
        # Plain HTTP to the local serve: the SDK's bearer policy asks for `enforce_https=False` on each call. The
        # function key goes on every request, as the Functions host wants it in Azure (`headers`: HeadersPolicy).
        self.client = SecurityCenter(
            ApiToken(),  # type: ignore[arg-type]
            SUB,
            base_url=serve.url("/api"),
            headers={"x-functions-key": FUNCTION_KEY},
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("sdk")
    db = tmp / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])

    def start(port: int) -> tuple[Serve, realparts.Registry]:
        registry = start_notifying_registry(tmp / "registry", port)
        resource = (
            f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries/{ACR_NAME}"
        )
        try:
            serve = start_serve(
                tmp / "serve",
                port=port,
                db=db,
                insecure_registries=(registry.host,),
                env={"ACRGUARD_API_TOKEN": API_TOKEN, "ACRGUARD_REGISTRY_RESOURCES": f"{registry.host}={resource}"},
            )
        except BaseException:
            registry.stop()
            raise
        return serve, registry

    serve, registry = with_serve_port(start)
    try:
        app = realparts.push(registry, f"docker-archive:{SAMPLE}", "samples/alpine-app", "3.10").manifest.digest
        layout = alpine_layout(tmp / "clean", CLEAN_APK_DB)
        clean = realparts.push(registry, f"oci:{layout}:latest", "samples/clean", "1").manifest.digest
        for digest in (app, clean):
            wait_for(f"the scan of {digest}", lambda d=digest: _scanned(serve, registry.host, d), timeout=180)
        yield Stack(serve, registry, app, clean)
    finally:
        serve.stop()
        registry.stop()


def _scanned(serve: Serve, registry: str, digest: str) -> Any:
    status, body = serve.image(registry, digest)
    return status == 200 and body["health"] is not None and body["lastScan"]["status"] != "running"


def _rows(paged: Any) -> list[SecuritySubAssessment]:
    return list(paged)


def test_list_and_get_in_the_qualys_shape(stack: Stack) -> None:
    ops = stack.client.sub_assessments
    rows = _rows(ops.list(stack.scope, QUALYS_KEY, enforce_https=False))
    _, image = stack.serve.image(stack.registry.host, stack.app)
    findings = image["findings"]
    assert len(findings) >= 2  # the sample's musl and openssl predate Alpine's fixes
    unhealthy = [r for r in rows if r.status.code == "Unhealthy"]
    healthy = [r for r in rows if r.status.code == "Healthy"]
    assert len(unhealthy) == len(findings) and len(healthy) == 1 and len(rows) == len(findings) + 1
    for row in unhealthy:
        assert isinstance(row.additional_data, ContainerRegistryVulnerabilityProperties)
        assert row.id_properties_id.startswith("CVE-") and row.display_name == row.id_properties_id
        assert row.status.severity in ("Low", "Medium", "High")
        assert row.time_generated is not None and row.time_generated.tzinfo is not None
        assert row.additional_data.repository_name == "samples/alpine-app"
        assert row.additional_data.image_digest == stack.app
        extra = row.additional_data.additional_properties
        assert extra["registryHost"] == stack.registry.host
        # The Alpine secdb rates nothing: Unknown, shown as Medium, never Low.
        if extra["acrguard"]["severity"] == "Unknown":
            assert row.status.severity == "Medium"
        assert extra["acrguard"]["advisoryId"].startswith("ALPINE-")
    clean = healthy[0]
    assert clean.id_properties_id is None and clean.status.cause is None and clean.remediation is None
    assert clean.resource_details.id.endswith(f"/images/{stack.clean}")
    one = ops.get(stack.scope, QUALYS_KEY, unhealthy[0].name, enforce_https=False)
    assert one.as_dict() == unhealthy[0].as_dict()
    with pytest.raises(ResourceNotFoundError):
        ops.get(stack.scope, QUALYS_KEY, "00000000-0000-0000-0000-000000000000", enforce_https=False)


def test_list_in_the_mdvm_shape(stack: Stack) -> None:
    rows = _rows(stack.client.sub_assessments.list(stack.scope, MDVM_KEY, enforce_https=False))
    unhealthy = [r for r in rows if r.status.code == "Unhealthy"]
    assert unhealthy
    for row in unhealthy:
        # API 2019-01-01-preview has no model of the MDVM shape: the SDK keeps it as AdditionalData's properties.
        assert isinstance(row.additional_data, AdditionalData)
        data = row.additional_data.additional_properties
        details = data["vulnerabilityDetails"]
        assert details["cveId"] == row.id_properties_id
        assert set(details) >= {"severity", "cvss", "references", "weaknesses", "workarounds"}
        assert details["cvss"]["2.0"] is None and details["workarounds"] == []
        assert details["exploitabilityAssessment"]["exploitStepsPublished"] is False
        software = data["softwareDetails"]
        assert software["osDetails"] == {"osPlatform": "linux", "osVersion": "alpine_linux_3.10"}
        assert software["category"] == "OS" and software["vendor"] == "alpine"
        assert software["evidence"][-1] == "installed"
        artifact = data["artifactDetails"]
        assert artifact["digest"] == stack.app and artifact["lastPushedToRegistryUTC"].endswith("Z")
    assert row.id.split("/assessments/")[1].startswith(MDVM_KEY)


def test_paging_by_top_and_next_link(stack: Stack) -> None:
    ops = stack.client.sub_assessments
    whole = [r.name for r in ops.list(stack.scope, QUALYS_KEY, enforce_https=False)]
    pages = [
        [r.name for r in page]
        for page in ops.list(stack.scope, QUALYS_KEY, params={"$top": "2"}, enforce_https=False).by_page()
    ]
    assert len(pages) == math.ceil(len(whole) / 2) and all(len(p) == 2 for p in pages[:-1])
    assert [name for page in pages for name in page] == whole


def test_list_all_at_the_registry_and_the_subscription_scope(stack: Stack) -> None:
    ops = stack.client.sub_assessments
    listed = {r.name for r in ops.list(stack.scope, MDVM_KEY, enforce_https=False)}
    at_registry = _rows(ops.list_all(stack.scope, params={"$top": "3"}, enforce_https=False))
    assert {r.name for r in at_registry} == listed
    assert all(f"/assessments/{MDVM_KEY}/subAssessments/" in r.id for r in at_registry)
    at_subscription = _rows(ops.list_all(f"subscriptions/{SUB}", params={"$top": "3"}, enforce_https=False))
    assert {r.name for r in at_subscription} == listed
    prefix = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries/{ACR_NAME}/"
    assert all(r.id.startswith(prefix) for r in at_subscription)
    qualys = _rows(ops.list_all(f"subscriptions/{SUB}", params={"shape": "qualys"}, enforce_https=False))
    assert all(
        isinstance(r.additional_data, ContainerRegistryVulnerabilityProperties) for r in qualys if r.id_properties_id
    )
    assert _rows(ops.list_all("subscriptions/another-subscription", enforce_https=False)) == []


def test_filter(stack: Stack) -> None:
    ops = stack.client.sub_assessments
    rows = _rows(ops.list(stack.scope, QUALYS_KEY, enforce_https=False))
    cve = next(r.id_properties_id for r in rows if r.id_properties_id)

    def filtered(text: str, key: str = QUALYS_KEY) -> list[SecuritySubAssessment]:
        return _rows(ops.list(stack.scope, key, params={"$filter": text, "$top": "1"}, enforce_https=False))

    same_cve = [r for r in rows if r.id_properties_id == cve]  # a CVE may affect two packages (libcrypto, libssl)
    assert [r.name for r in filtered(f"properties/id eq '{cve}'")] == [r.name for r in same_cve]
    assert [r.status.code for r in filtered("properties/status/code eq 'Healthy'")] == ["Healthy"]
    assert len(filtered("status/code ne 'Healthy' and additionalData/artifactDetails/repositoryName eq "
                        "'samples/alpine-app'", MDVM_KEY)) == len(rows) - 1  # fmt: skip
    clean = filtered(f"additionalData/imageDigest eq '{stack.clean}' or id in ('{cve}')")
    assert {r.status.code for r in clean} == {"Healthy", "Unhealthy"}
    with pytest.raises(HttpResponseError) as refused:
        filtered("properties/status/severity gt 'Low'")
    assert refused.value.status_code == 400
    assert refused.value.error is not None and "at 28: expected eq, ne or in, found 'gt'" in refused.value.error.message


def test_a_scan_by_the_id_its_image_shows(stack: Stack) -> None:
    _, image = stack.serve.image(stack.registry.host, stack.app)
    scan_id = image["lastScan"]["scanId"]
    status, scan = stack.serve.get(f"/api/scans/{scan_id}")
    assert status == 200
    assert scan["scanId"] == scan_id and scan["digest"] == stack.app and scan["status"] == "succeeded"
    assert scan["registry"] == stack.registry.host and scan["repository"] == "samples/alpine-app"
    status, missing = stack.serve.get("/api/scans/no-such-scan")
    assert status == 404 and missing["error"]["code"] == "NotFound"
