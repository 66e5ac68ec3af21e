"""scanner.report.subassessments on hand-made records: no store, no HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

from scanner.model.types import Cvss, Finding, Package, Severity
from scanner.report.subassessments import (
    MDVM_KEY,
    QUALYS_KEY,
    Scope,
    image_sub_assessments,
    registry_host,
    shape_for_key,
    sub_assessment_name,
)
from scanner.store.records import ImageKey, ImageSummary, StoredFinding

AT = datetime(2026, 1, 2, tzinfo=UTC)
SCOPE = Scope("sub", "rg", "contoso", QUALYS_KEY)
PKG = Package(
    "openssl",
    "1.1.1c-r0",
    "Alpine:v3.10",
    "pkg:apk/alpine/openssl@1.1.1c-r0",
    "openssl",
    "",
    "x86_64",
    ("/lib/apk/db/installed",),
    "apk",
    "apk@1",
    None,
)


def image(health: str | None) -> ImageSummary:
    return ImageSummary(
        ImageKey("contoso.azurecr.io", "app", "sha256:ab"),
        "mt",
        AT,
        AT,
        None,
        False,
        ("v1",),
        health,
        "",
        {},
        AT if health else None,
    )  # type: ignore[arg-type]


def stored(
    severity: Severity, vuln: str = "CVE-2019-1549", disabled: bool = False, resolved: bool = False
) -> StoredFinding:
    finding = Finding(
        vuln,
        ("ALPINE-1",),
        PKG,
        "1.1.1c-r0",
        "1.1.1d-r0",
        "fixed",
        severity,
        "cvss:3.1",
        Cvss("3.1", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 9.1),
        "os",
        summary="s",
        references=("https://example.org/a",),
        published="2019-09-10",
        disabled=disabled,
    )
    return StoredFinding(vuln, finding, AT, AT, AT if resolved else None, 0)


def test_not_scanned_gives_no_rows() -> None:
    assert image_sub_assessments(SCOPE, image(None), [stored("High")], "qualys") == []


def test_healthy_gives_exactly_one_healthy_row() -> None:
    rows = image_sub_assessments(SCOPE, image("Healthy"), [], "mdvm")
    assert len(rows) == 1 and rows[0]["properties"]["status"]["code"] == "Healthy"
    assert rows[0]["name"] == sub_assessment_name("app", "sha256:ab")


def test_unsupported_is_not_applicable() -> None:
    rows = image_sub_assessments(SCOPE, image("Unsupported"), [], "qualys")
    assert [r["properties"]["status"]["code"] for r in rows] == ["NotApplicable"]


def test_only_active_findings_and_critical_maps_to_high() -> None:
    rows = image_sub_assessments(
        SCOPE,
        image("Unhealthy"),
        [stored("Critical"), stored("Low", "CVE-1", disabled=True), stored("Low", "CVE-2", resolved=True)],
        "qualys",
    )
    assert len(rows) == 1
    props = rows[0]["properties"]
    assert props["status"]["severity"] == "High" and props["additionalData"]["acrguard"]["severity"] == "Critical"
    assert props["additionalData"]["cvss"] == {"3.0": {"base": 9.1}}
    assert props["additionalData"]["cve"] == [
        {"title": "CVE-2019-1549", "link": "https://nvd.nist.gov/vuln/detail/CVE-2019-1549"}
    ]
    assert props["additionalData"]["registryHost"] == "contoso.azurecr.io" and props["additionalData"]["patchable"]
    assert rows[0]["id"].startswith(
        "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerRegistry/"
        f"registries/contoso/providers/Microsoft.Security/assessments/{QUALYS_KEY}/"
    )


def test_mdvm_shape() -> None:
    data = image_sub_assessments(SCOPE, image("Unhealthy"), [stored("Unknown")], "mdvm")[0]["properties"]
    assert data["status"]["severity"] == "Medium"  # Unknown is never reported as Low
    extra = data["additionalData"]
    assert extra["assessedResourceType"] == "AzureContainerRegistryVulnerability"
    assert extra["vulnerabilityDetails"]["cvss"]["3.0"]["cvssVectorString"].startswith("CVSS:3.1/")
    assert extra["softwareDetails"]["fixStatus"] == "FixAvailable"
    assert extra["softwareDetails"]["osDetails"] == {"osPlatform": "linux", "osVersion": "alpine_linux_3.10"}
    assert extra["artifactDetails"]["tags"] == ["v1"] and extra["cvssV30Score"] == 9.1


def test_names_are_stable_and_distinct() -> None:
    a = sub_assessment_name("app", "sha256:ab", "CVE-1", "openssl@1")
    assert a == sub_assessment_name("app", "sha256:ab", "CVE-1", "openssl@1")
    assert a != sub_assessment_name("app", "sha256:ab", "CVE-1", "libssl@1")
    assert a != sub_assessment_name("other", "sha256:ab", "CVE-1", "openssl@1")


def test_keys_and_hosts() -> None:
    assert shape_for_key(QUALYS_KEY) == "qualys" and shape_for_key(MDVM_KEY.upper()) == "mdvm"
    assert shape_for_key("x") is None
    assert registry_host("contoso") == "contoso.azurecr.io" and registry_host("localhost:5000") == "localhost:5000"
