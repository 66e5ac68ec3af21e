"""ACR resource-log rows (ContainerRegistryRepositoryEvents) → registry events: pure parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from scanner.service.events import RegistryEvent
from scanner.service.resource_log import QUERY, SOURCE, RowError, parse_row, parse_rows

DATA = Path(__file__).resolve().parents[1] / "azure" / "data" / "repository-events.json"
D1 = "sha256:57a94f7ed5f5e2c9c0b2b5e3b9d4f0a3e4b8f2b1c8a9d3e6f7a0b1c2d3e4f5a6"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def fixture_rows() -> list[dict[str, Any]]:
    table = json.loads(DATA.read_text())
    names = [c["name"] for c in table["columns"]]
    return [dict(zip(names, row, strict=True)) for row in table["rows"]]


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "TimeGenerated": datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        "OperationName": "Pull",
        "LoginServer": "myreg.azurecr.io",
        "Repository": "samples/nginx",
        "Tag": "1.25",
        "Digest": D1,
        "MediaType": MANIFEST,
        "ResultType": "200",
        "CorrelationId": "c-1",
    }
    return {**base, **overrides}


def test_the_fixture_batch() -> None:
    parsed = parse_rows(fixture_rows())
    assert [(e.kind, e.registry, e.repository, e.tag, e.at.isoformat()) for e in parsed.events] == [
        ("pull", "myreg.azurecr.io", "samples/nginx", None, "2026-11-20T08:00:01.123456+00:00"),
        ("import", "myreg.azurecr.io", "library/alpine", "3.19", "2026-11-20T08:05:00+00:00"),
        ("push", "myreg.azurecr.io", "app/api", "v2", "2026-11-20T08:06:00+00:00"),
        ("delete", "myreg.azurecr.io", "app/old", None, "2026-11-20T08:08:00+00:00"),
        ("pull", "myreg.azurecr.io", "samples/nginx", None, "2026-11-20T09:00:00.500000+00:00"),
    ]
    assert parsed.events[0].digest == parsed.events[4].digest == D1
    assert parsed.events[1].media_type == "application/vnd.oci.image.index.v1+json"
    # Row 2 (pull without digest) cannot be keyed; rows 1 and 11 failed, 5 is an Untag, 7 a Helm chart.
    assert (parsed.skipped, parsed.ignored) == (1, 4)
    assert [(bad.index, bad.error) for bad in parsed.errors] == [
        (8, "ContainerRegistryRepositoryEvents row 8: column 'Digest' is not a digest: 'sha256:not a digest'"),
        (10, "ContainerRegistryRepositoryEvents row 10: column 'LoginServer' is missing"),
    ]


def test_event_ids_are_stable_and_distinct() -> None:
    first, again = parse_rows(fixture_rows()), parse_rows(fixture_rows())
    ids = [e.event_id for e in first.events]
    assert ids == [e.event_id for e in again.events]  # a replayed window names the same records
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{SOURCE}:") for i in ids)
    # The same pull at another time is another record.
    later = parse_row(row(TimeGenerated=datetime(2026, 11, 20, 8, 0, 1, tzinfo=UTC)))
    assert isinstance(later, RegistryEvent) and later.event_id != _event(row()).event_id


def _event(value: dict[str, Any]) -> RegistryEvent:
    parsed = parse_row(value)
    assert isinstance(parsed, RegistryEvent)
    return parsed


@pytest.mark.parametrize(
    ("result_type", "kept"),
    [
        ("200", True),
        ("0", True),
        ("", True),
        (None, True),
        ("Succeeded", True),
        (200, True),
        ("401", False),
        ("404", False),
        ("500", False),
        ("Failed", False),
    ],
)
def test_result_type(result_type: Any, kept: bool) -> None:
    outcome = parse_row(row(ResultType=result_type))
    assert isinstance(outcome, RegistryEvent) is kept
    if not kept:
        assert outcome == "ignored"


def test_operation_names_and_media_types() -> None:
    assert _event(row(OperationName="pull")).kind == "pull"  # Kusto's `in~` matches any case: so does the parser
    assert _event(row(OperationName="IMPORTIMAGE")).kind == "import"
    assert parse_row(row(OperationName="Untag")) == "ignored"
    assert parse_row(row(OperationName="SomethingNew")) == "ignored"
    assert parse_row(row(MediaType="application/vnd.cncf.helm.config.v1+json")) == "ignored"
    assert parse_row(row(MediaType="application/vnd.oci.image.layer.v1.tar+gzip")) == "ignored"
    assert _event(row(MediaType="")).kind == "pull"
    assert parse_row(row(OperationName="Delete", Digest="")) == "skipped"  # a repository delete
    assert parse_row(row(OperationName="Push", Digest=None)) == "skipped"


def test_times() -> None:
    assert _event(row(TimeGenerated="2026-11-20T08:00:00Z")).at == datetime(2026, 11, 20, 8, tzinfo=UTC)
    naive = _event(row(TimeGenerated=datetime(2026, 11, 20, 8)))  # Log Analytics times are UTC
    assert naive.at == datetime(2026, 11, 20, 8, tzinfo=UTC)
    offset = _event(row(TimeGenerated=datetime(2026, 11, 20, 10, tzinfo=timezone(timedelta(hours=2)))))
    assert offset.at == datetime(2026, 11, 20, 8, tzinfo=UTC) and offset.at.tzinfo is UTC


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"TimeGenerated": None}, "row 3: column 'TimeGenerated' is missing"),
        ({"TimeGenerated": "yesterday"}, "row 3: column 'TimeGenerated' is not an ISO 8601 time: 'yesterday'"),
        ({"OperationName": ""}, "row 3: column 'OperationName' is missing"),
        ({"Repository": None}, "row 3: column 'Repository' is missing"),
        ({"Digest": 42}, "row 3: column 'Digest' is not text: 42"),
        ({"ResultType": "Maybe"}, "row 3: column 'ResultType' has an unknown value 'Maybe'"),
    ],
)
def test_malformed_rows_name_row_and_column(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RowError) as caught:
        parse_row(row(**overrides), 3)
    assert str(caught.value) == f"ContainerRegistryRepositoryEvents {message}"
    assert "\n" not in str(caught.value)


def test_a_bad_row_does_not_abort_the_batch() -> None:
    parsed = parse_rows([row(), "not a row", row(Digest="md5"), row(OperationName="Push", Tag="v1")])  # type: ignore[list-item]
    assert [e.kind for e in parsed.events] == ["pull", "push"]
    assert [b.index for b in parsed.errors] == [1, 2]
    assert parsed.errors[0].error == "ContainerRegistryRepositoryEvents row 1: not a row of named columns (str)"


def test_query_reads_the_table_and_the_columns_parsed() -> None:
    assert QUERY.startswith("ContainerRegistryRepositoryEvents\n")
    for column in ("TimeGenerated", "OperationName", "LoginServer", "Repository", "Tag", "Digest", "MediaType"):
        assert column in QUERY
    assert '"importImage"' in QUERY and "order by TimeGenerated asc" in QUERY
