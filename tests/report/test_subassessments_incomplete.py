"""The sub-assessments of an Incomplete image: never Healthy or NotApplicable. Azure knows three status codes;
the image row says Unhealthy with cause Incomplete and the reason, and the findings that were found follow."""

from __future__ import annotations

from datetime import UTC, datetime

from scanner.model.types import Finding, Package
from scanner.report.subassessments import QUALYS_KEY, Scope, assessment_row, image_sub_assessments
from scanner.store.records import AssessmentRow, ImageKey, ImageSummary, StoredFinding

AT = datetime(2026, 1, 2, tzinfo=UTC)
SCOPE = Scope("sub", "rg", "contoso", QUALYS_KEY)
PKG = Package("musl", "1.1.22-r2", "Alpine:v3.10", "pkg:apk/alpine/musl@1.1.22-r2", "musl", "1.1.22-r2", "x86_64",
              ("/lib/apk/db/installed",), "apk", "apk@1", None)  # fmt: skip
REASON = "inventory incomplete: /lib/apk/db/installed: 114294784 bytes, over the limit of 67108864"


def image(health: str) -> ImageSummary:
    key = ImageKey("contoso.azurecr.io", "app", "sha256:ab")
    return ImageSummary(key, "mt", AT, AT, None, False, ("v1",), health, REASON, {}, AT)  # type: ignore[arg-type]


def stored(vuln: str, disabled: bool = False) -> StoredFinding:
    finding = Finding(vuln, (), PKG, "1.1.22-r2", "1.1.22-r3", "fixed", "High", "none", None, "os", disabled=disabled)
    return StoredFinding(vuln, finding, AT, AT, None, 0)


def test_an_incomplete_image_row_is_unhealthy_with_its_reason_then_its_findings() -> None:
    rows = image_sub_assessments(
        SCOPE, image("Incomplete"), [stored("CVE-1"), stored("CVE-2", disabled=True)], "qualys"
    )
    assert [r["properties"].get("id") for r in rows] == [None, "CVE-1"]  # an image row has no vulnerability id
    status = rows[0]["properties"]["status"]
    assert status == {"code": "Unhealthy", "cause": "Incomplete", "description": REASON, "severity": "High"}
    assert rows[1]["properties"]["status"]["code"] == "Unhealthy"


def test_an_incomplete_image_with_nothing_found_still_has_its_unhealthy_row() -> None:
    (row,) = image_sub_assessments(SCOPE, image("Incomplete"), [], "mdvm")
    assert row["properties"]["status"]["code"] == "Unhealthy"
    assert row["properties"]["status"]["cause"] == "Incomplete"


def test_the_store_rows_render_the_same() -> None:
    summary = image("Incomplete")
    direct = image_sub_assessments(SCOPE, summary, [stored("CVE-1")], "qualys")
    via_rows = [assessment_row(SCOPE, AssessmentRow(summary, f), "qualys") for f in (None, stored("CVE-1"))]
    assert via_rows == direct
