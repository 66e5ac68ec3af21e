"""A NotAssessed image over HTTP: its health, reason and coverage in the image documents, `?status=NotAssessed`
as a filter, and its one sub-assessment row (code NotApplicable, cause NotAssessed). A store of its own, filled
through the store's write API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scanner.model.types import HEALTHS, Coverage
from scanner.report.subassessments import QUALYS_KEY
from scanner.store import open_store
from tests.azure.conftest import MT, REG, Call

NOT_ASSESSED = "sha256:" + "5" * 64
HEALTHY = "sha256:" + "6" * 64
REASON = "the database holds no Debian:12 advisories: run `acrguard db update`"
COVERAGE = (Coverage("Debian:12", "os", 0), Coverage("PyPI", "language", 47, "2024-06-01T12:00:00Z", True))
AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("store") / "findings.sqlite")
    with open_store(path) as store:
        store.record_push(REG, "app/debian", NOT_ASSESSED, "12", MT, AT)
        store.save_assessment(REG, NOT_ASSESSED, [], "NotAssessed", REASON, {"active": 0}, AT, COVERAGE)
        store.record_push(REG, "app/healthy", HEALTHY, "1", MT, AT)
        store.save_assessment(REG, HEALTHY, [], "Healthy", "", {"active": 0}, AT)
    return path


def test_the_image_document_holds_the_health_reason_and_coverage(call: Call) -> None:
    status, body = call("get_image", {"registry": REG, "digest": NOT_ASSESSED})
    assert status == 200
    assert (body["health"], body["reason"]) == ("NotAssessed", REASON)
    assert body["coverage"] == [
        {
            "ecosystem": "Debian:12",
            "kind": "os",
            "advisories": 0,
            "feed_date": "",
            "selection": False,
            "assessed": False,
        },
        {
            "ecosystem": "PyPI",
            "kind": "language",
            "advisories": 47,
            "feed_date": "2024-06-01T12:00:00Z",
            "selection": True,
            "assessed": False,
        },
    ]
    assert body["repositories"][0]["coverage"] == body["coverage"]


def test_images_filter_by_not_assessed(call: Call) -> None:
    status, body = call("list_images", params={"registry": REG, "status": "NotAssessed"})
    assert status == 200
    assert [(i["digest"], i["health"]) for i in body["value"]] == [(NOT_ASSESSED, "NotAssessed")]


def test_the_openapi_document_lists_every_health(call: Call) -> None:
    doc = call("openapi_document", headers={})[1]
    parameters = doc["paths"]["/images"]["get"]["parameters"]
    (status,) = [p for p in parameters if p["name"] == "status"]
    assert status["schema"]["enum"] == list(HEALTHS) and "NotAssessed" in HEALTHS


def test_its_sub_assessment_is_one_not_applicable_row(call: Call) -> None:
    route = {"sub": "0000", "rg": "rg1", "registry": "contoso", "key": QUALYS_KEY}
    status, body = call("list_sub_assessments", route)
    assert status == 200
    by_repository = {r["properties"]["additionalData"]["repositoryName"]: r for r in body["value"]}
    row = by_repository["app/debian"]
    assert row["properties"]["status"] == {
        "code": "NotApplicable",
        "cause": "NotAssessed",
        "description": REASON,
        "severity": "Medium",
    }
    assert by_repository["app/healthy"]["properties"]["status"]["code"] == "Healthy"
