"""The sub-assessment of a NotAssessed image: one row, code NotApplicable (Azure's schema allows Healthy, Unhealthy
and NotApplicable only), cause NotAssessed, severity Medium and the reason as description."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from scanner.model.types import Coverage
from scanner.report.subassessments import MDVM_KEY, QUALYS_KEY, Scope, assessment_row, image_sub_assessments
from scanner.store.records import AssessmentRow, ImageKey, ImageSummary

AT = datetime(2026, 1, 2, tzinfo=UTC)
REASON = "the database holds no Debian:12 advisories: run `acrguard db update`"


def image() -> ImageSummary:
    key = ImageKey("contoso.azurecr.io", "app", "sha256:ab")
    coverage = (Coverage("Debian:12", "os", 0),)
    return ImageSummary(key, "mt", AT, AT, None, False, ("v1",), "NotAssessed", REASON, {}, AT, coverage)


def test_a_not_assessed_image_gives_one_not_applicable_row_with_its_reason() -> None:
    for key, shape in ((QUALYS_KEY, "qualys"), (MDVM_KEY, "mdvm")):
        scope = Scope("sub", "rg", "contoso", key)
        (row,) = image_sub_assessments(scope, image(), [], shape)  # type: ignore[arg-type]
        status = row["properties"]["status"]
        assert status == {"code": "NotApplicable", "cause": "NotAssessed", "description": REASON, "severity": "Medium"}
        assert row["properties"]["description"] == REASON
        assert row == assessment_row(scope, AssessmentRow(image(), None), shape)  # type: ignore[arg-type]
        json.dumps(row)


def test_the_status_is_one_azure_allows() -> None:
    # SubAssessmentStatus in subAssessments.json (2019-01-01-preview): these enums, transcribed.
    (row,) = image_sub_assessments(Scope("sub", "rg", "contoso", QUALYS_KEY), image(), [], "qualys")
    status = row["properties"]["status"]
    assert status["code"] in ("Healthy", "Unhealthy", "NotApplicable")
    assert status["severity"] in ("Low", "Medium", "High")
