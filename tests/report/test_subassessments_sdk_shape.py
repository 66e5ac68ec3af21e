"""Sub-assessments as Microsoft's SDK reads them (pure: hand-made records, the real SDK's deserializer): no empty
field, date-times it parses, the CVE id as row id, Unknown as Medium, and the MDVM shape of Microsoft's sample."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.security.v2019_01_01_preview import models
from azure.mgmt.security.v2019_01_01_preview.models import ContainerRegistryVulnerabilityProperties

from scanner.model.types import Coverage, Cvss, Finding, Package
from scanner.report.subassessments import (
    MDVM_KEY,
    QUALYS_KEY,
    Scope,
    date_time,
    image_sub_assessments,
    os_details,
)
from scanner.store.records import ImageKey, ImageSummary, StoredFinding

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ALPINE = Package("musl", "1.1.22-r2", "Alpine:v3.10", "pkg:apk/alpine/musl@1.1.22-r2", "musl", "", "x86_64",
                 ("/lib/apk/db/installed",), "apk", "apk@1", None)  # fmt: skip
WHEEL = Package("py", "1.11.0", "PyPI", "pkg:pypi/py@1.11.0", "", "", "",
                ("/usr/lib/python3/dist-packages/py/METADATA",), "python", "python@1", None)  # fmt: skip
MUSL = Finding("ALPINE-CVE-2019-14697", ("CVE-2019-14697",), ALPINE, "1.1.22-r2", "1.1.22-r3", "fixed", "Unknown",
               "none", None, "os", published="2019-08-06")  # fmt: skip
PY = Finding("GHSA-w596-4wvx-j9j6", ("CVE-2022-42969", "PYSEC-2022-42969"), WHEEL, "1.11.0", "", "not_fixed", "High",
             "cvss:3.1", Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5), "language",
             published="2022-10-16T06:15:00Z", modified="2023-09-12T00:00:00")  # fmt: skip
OLD = Finding("DLA-1-1", (), replace(ALPINE, ecosystem="Debian:10"), "1", "2", "fixed", "Medium", "cvss:2.0",
              Cvss("2.0", "AV:N/AC:L/Au:N/C:P/I:N/A:N", 5.0), "os")  # fmt: skip
SCOPE = Scope("sub", "rg", "contoso", QUALYS_KEY)
SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "azure" / "mdvm_reference_from_ms_docs.json"


def image(health: str, coverage: tuple[Coverage, ...] = ()) -> ImageSummary:
    key = ImageKey("contoso.azurecr.io", "app", "sha256:" + "a" * 64)
    return ImageSummary(key, "", None, None, None, False, (), health, "", {}, AT, coverage)  # type: ignore[arg-type]


def stored(finding: Finding) -> StoredFinding:
    return StoredFinding(finding.id + "@key", finding, AT, AT, None, 0)


def no_empty(value: Any, where: str = "") -> None:
    """No "" in Azure's fields (acrguard's own object aside): a field acrguard does not know is left out."""
    assert value != "", where
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "acrguard":
                no_empty(item, f"{where}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            no_empty(item, f"{where}/{index}")


def deserialize(rows: list[dict[str, Any]]) -> models.SecuritySubAssessmentList:
    from azure.mgmt.security._serialization import Deserializer

    classes = {k: v for k, v in models.__dict__.items() if isinstance(v, type)}
    return Deserializer(classes)("SecuritySubAssessmentList", {"value": rows})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-08-06", "2019-08-06T00:00:00Z"),
        ("2022-10-16T06:15:00Z", "2022-10-16T06:15:00Z"),
        ("2023-09-12T00:00:00", "2023-09-12T00:00:00Z"),
        ("2023-09-12T02:00:00+02:00", "2023-09-12T02:00:00+02:00"),
        ("", None),
        ("yesterday", None),
    ],
)
def test_feed_dates_become_date_times_or_nothing(text: str, expected: str | None) -> None:
    assert date_time(text) == expected


def test_os_versions_as_microsoft_writes_them() -> None:
    assert os_details("Alpine:v3.10") == {"osPlatform": "linux", "osVersion": "alpine_linux_3.10"}
    assert os_details("Ubuntu:20.04") == {"osPlatform": "linux", "osVersion": "ubuntu_linux_20.04"}
    assert os_details("Debian:12") == {"osPlatform": "linux", "osVersion": "debian_linux_12"}
    assert os_details("Red Hat:enterprise_linux:8") == {
        "osPlatform": "linux",
        "osVersion": "red_hat_linux_enterprise_linux",
    }
    assert os_details("") is None


@pytest.mark.parametrize("shape", ["qualys", "mdvm"])
def test_every_row_is_read_by_the_sdk_and_none_is_empty(shape: str) -> None:
    scope = replace(SCOPE, assessment_key=QUALYS_KEY if shape == "qualys" else MDVM_KEY)
    rows = [
        *image_sub_assessments(scope, image("Unhealthy"), [stored(MUSL), stored(PY), stored(OLD)], shape),  # type: ignore[arg-type]
        *image_sub_assessments(scope, image("Healthy"), [], shape),  # type: ignore[arg-type]
        *image_sub_assessments(scope, image("NotAssessed"), [], shape),  # type: ignore[arg-type]
        *image_sub_assessments(scope, image("Incomplete"), [stored(MUSL)], shape),  # type: ignore[arg-type]
    ]
    for row in rows:
        no_empty(row["properties"], row["name"])
    read = deserialize(rows).value
    assert [r.name for r in read] == [r["name"] for r in rows]
    musl, py = read[0], read[1]
    assert (musl.id_properties_id, musl.display_name) == ("CVE-2019-14697", "CVE-2019-14697")
    assert musl.status.severity == "Medium"  # Unknown: never Low
    assert py.id_properties_id == "CVE-2022-42969" and py.status.severity == "High"
    if shape == "qualys":
        assert isinstance(musl.additional_data, ContainerRegistryVulnerabilityProperties)
        assert musl.additional_data.published_time == datetime(2019, 8, 6, tzinfo=UTC)
        assert musl.additional_data.additional_properties["acrguard"]["advisoryId"] == "ALPINE-CVE-2019-14697"
    healthy = read[3]
    assert healthy.id_properties_id is None and healthy.status.cause is None and healthy.category is None


def test_mdvm_additional_data_has_microsofts_sample_fields() -> None:
    sample = json.loads(SAMPLE.read_text())["properties"]["additionalData"]
    scope = replace(SCOPE, assessment_key=MDVM_KEY)
    coverage = (Coverage("Ubuntu:20.04", "os", 10), Coverage("PyPI", "language", 10))
    row = image_sub_assessments(scope, image("Unhealthy", coverage), [stored(PY)], "mdvm", {PY.id: ["CWE-1333"]})[0]
    data = row["properties"]["additionalData"]
    for section in ("vulnerabilityDetails", "softwareDetails"):
        # Every field of Microsoft's sample but `cpe` (no feed acrguard reads names a package's CPE), the
        # fixedVersion a package without a fix does not have, and a language package's vendor (the CPE's, in
        # Microsoft's; acrguard names a distribution's packages' vendor only).
        assert set(sample[section]) - set(data[section]) <= {"cpe", "fixedVersion", "vendor"}, section
    assert set(sample["artifactDetails"]) - set(data["artifactDetails"]) <= {
        "lastPushedToRegistryUTC",
        "mediaType",
        "tags",
    }
    details = data["vulnerabilityDetails"]
    assert details["weaknesses"] == {"cwe": [{"id": "CWE-1333"}]} and details["workarounds"] == []
    assert details["cvss"] == {"2.0": None, "3.0": {"base": 7.5, "cvssVectorString": PY.cvss.vector}}  # type: ignore[union-attr]
    assert details["publishedDate"] == "2022-10-16T06:15:00Z" and details["lastModifiedDate"] == "2023-09-12T00:00:00Z"
    software = data["softwareDetails"]
    assert software["osDetails"] == sample["softwareDetails"]["osDetails"]  # the image's OS, on a language row too
    assert software["language"] == "python" and software["category"] == "Language" and "vendor" not in software
    assert software["evidence"] == [*WHEEL.locations, "installed"]
    assert software["fixStatus"] == "NoFixAvailable" and data["cvssV30Score"] == 7.5
    os_row = image_sub_assessments(scope, image("Unhealthy"), [stored(OLD)], "mdvm")[0]["properties"]
    old = os_row["additionalData"]
    assert old["vulnerabilityDetails"]["cvss"] == {"2.0": {"base": 5.0, "cvssVectorString": OLD.cvss.vector}}  # type: ignore[union-attr]
    assert old["vulnerabilityDetails"]["weaknesses"] == {"cwe": []} and "cvssV30Score" not in old
    assert old["softwareDetails"]["vendor"] == "debian" and "language" not in old["softwareDetails"]
    assert old["softwareDetails"]["osDetails"] == {"osPlatform": "linux", "osVersion": "debian_linux_10"}
