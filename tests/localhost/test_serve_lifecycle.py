"""The whole lifecycle through `acrguard serve` (a real process, the bubblewrap sandbox) and a real, notifying
registry that skopeo pushes to:

push → registry notification → scan → findings over HTTP in the sub-assessment shape → re-push of the same
digest under a new tag (no second pull of the layers, one charge) → a pull (manifest GET by digest →
registry pull notification → ledger) → a database update (written aside, renamed over the live file) →
the rescan timer flips the image to Unhealthy → a health-changed event reaches a local webhook receiver.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scanner.report.subassessments import MDVM_KEY, QUALYS_KEY, sub_assessment_name
from scanner.store import open_store
from scanner.vulndb.osv_import import import_sources
from tests.policy.httprecorder import Recorder, recording_server

from .stack import (
    VULN,
    Serve,
    alpine_layout,
    realparts,
    scan_rows,
    serve_notification_url,
    start_registry_notifying,
    start_serve,
    wait_for,
    with_serve_port,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "osv" / "alpine-secdb"

REPO = "serve/alpine"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def sub_assessments(serve: Serve, registry: str, key: str) -> list[dict[str, Any]]:
    path = (
        f"/api/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.ContainerRegistry/registries/{registry}"
        f"/providers/Microsoft.Security/assessments/{key}/subAssessments?api-version=2019-01-01-preview"
    )
    status, body = serve.get(path)
    assert status == 200, body
    rows: list[dict[str, Any]] = body["value"]
    return rows


def notifications(recorder: Recorder) -> list[dict[str, Any]]:
    """Every event the registry sent to the recorder, in the order it sent them."""
    return [event for request in list(recorder.requests) for event in request.json().get("events", [])]


def blob_gets(recorder: Recorder, digest: str) -> list[dict[str, Any]]:
    """Layer downloads: the registry's `pull` events for a blob fetched with GET (HEADs fire them too)."""
    return [
        e
        for e in notifications(recorder)
        if e.get("action") == "pull" and e["target"].get("digest") == digest and e["request"]["method"] == "GET"
    ]


@pytest.fixture
def recorders() -> Iterator[tuple[Recorder, Recorder]]:
    with recording_server() as webhook, recording_server() as registry_events:
        yield webhook, registry_events


def test_push_scan_repush_pull_update_rescan_and_health_event(
    tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    webhook, registry_events = recorders
    db = tmp_path / "vulndb.sqlite"
    import_sources(db, [str(FIXTURES / "v3.11")])  # another Alpine release: musl 1.1.22-r2 is clean here

    def start(port: int) -> tuple[Serve, realparts.Registry]:
        registry = start_registry_notifying(
            tmp_path / "registry", [serve_notification_url(port), f"{registry_events.url}/registry-events"]
        )
        try:
            serve = start_serve(
                tmp_path / "serve",
                port=port,
                db=db,
                runner="bubblewrap",
                insecure_registries=[registry.host],
                extra_args=["--rescan-schedule", "*/2 * * * * *"],
                env={"ACRGUARD_HEALTH_WEBHOOK": f"{webhook.url}/health"},
            )
        except BaseException:
            registry.stop()
            raise
        return serve, registry

    serve, registry = with_serve_port(start)
    try:
        _lifecycle(serve, registry, registry_events, webhook, tmp_path, db)
    finally:
        serve.stop()
        registry.stop()


def _lifecycle(
    serve: Serve, registry: realparts.Registry, registry_events: Recorder, webhook: Recorder, tmp: Path, db: Path
) -> None:
    def context() -> str:
        return f"serve:\n{serve.log_tail()}\nregistry:\n{registry.log_tail()}"

    layout = alpine_layout(tmp / "layout")
    pushed = realparts.push(registry, f"oci:{layout}:latest", REPO, "3.10")
    digest = pushed.digest
    (layer,) = pushed.layers()

    # push → notification → scan: the image is assessed, NotAssessed against this database (it holds no
    # advisory for Alpine 3.10: finding nothing proves nothing).
    def assessed() -> Any:
        status, body = serve.image(registry.host, digest)
        # The assessment is stored before the scan record is closed: wait for both.
        done = status == 200 and body["lastScan"] is not None and body["lastScan"]["status"] != "running"
        return body if done and body["health"] is not None else None

    first = wait_for("the pushed image assessed", assessed, timeout=60, context=context)
    assert (first["health"], first["lastScan"]["status"], first["lastScan"]["trigger"]) == (
        "NotAssessed",
        "succeeded",
        "push",
    )
    assert first["findings"] == []
    assert first["reason"] == "the database holds no Alpine:v3.10 advisories: run `acrguard db update`"
    assert [(c["ecosystem"], c["advisories"], c["assessed"]) for c in first["coverage"]] == [("Alpine:v3.10", 0, False)]

    # Findings over HTTP in the sub-assessment shape: one NotApplicable row (cause NotAssessed) per image, in both.
    (row,) = sub_assessments(serve, registry.host, QUALYS_KEY)
    assert row["name"] == sub_assessment_name(REPO, digest)
    assert row["type"] == "Microsoft.Security/assessments/subAssessments"
    assert row["id"].startswith(
        f"/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.ContainerRegistry/registries/{registry.host}"
        f"/providers/Microsoft.Security/assessments/{QUALYS_KEY}/subAssessments/"
    )
    assert (row["properties"]["status"]["code"], row["properties"]["status"]["cause"]) == (
        "NotApplicable",
        "NotAssessed",
    )
    (mdvm_row,) = sub_assessments(serve, registry.host, MDVM_KEY)
    assert mdvm_row["properties"]["status"]["code"] == "NotApplicable"

    # The first assessment is a health change (unknown → NotAssessed): published without any gate configured.
    wait_for("the first health-changed event", lambda: webhook.requests, context=context)
    opened = webhook.requests[0].json()
    assert (opened["data"]["previousHealth"], opened["data"]["health"]) == (None, "NotAssessed")

    # Re-push of the same digest under a new tag: the tag is attached, nothing is pulled or charged again.
    again = realparts.push(registry, f"oci:{layout}:latest", REPO, "3.10-again")
    assert again.digest == digest

    def tagged() -> Any:
        status, body = serve.image(registry.host, digest)
        return body if status == 200 and f"{REPO}:3.10-again" in body["tags"] else None

    retagged = wait_for("the new tag recorded", tagged, context=context)
    assert retagged["lastScan"]["scanId"] == first["lastScan"]["scanId"]

    # The registry notifies each endpoint in order: once the re-push's manifest event has reached the
    # recorder, every blob download before it has too. The scan downloaded the layer exactly once.
    def repush_seen() -> bool:
        return any(
            e.get("action") == "push" and e["target"].get("tag") == "3.10-again" for e in notifications(registry_events)
        )

    wait_for("the re-push notification at the recorder", repush_seen, context=context)
    assert len(blob_gets(registry_events, layer["digest"])) == 1
    store_path = tmp / "serve" / "store.sqlite"
    assert len(scan_rows(store_path, digest)) == 1
    with open_store(store_path) as store:
        assert store.usage(registry.host, EPOCH).billable == 1

    # A pull: a manifest GET by digest → the registry's pull notification → the pull ledger.
    registry.manifest(REPO, digest)

    def pulled() -> Any:
        status, body = serve.image(registry.host, digest)
        return status == 200 and any(r["lastPull"] for r in body["repositories"])

    wait_for("the pull recorded", pulled, context=context)

    # The database update adds the advisory: written aside, then renamed over the live file (as `db update`).
    updated = tmp / "vulndb.sqlite.new"
    import_sources(updated, [str(FIXTURES / "v3.11"), str(FIXTURES / "v3.10")])
    os.replace(updated, db)

    # The rescan timer (every 2 s) re-matches the stored inventory: Unhealthy, without pulling again.
    def unhealthy() -> Any:
        status, body = serve.image(registry.host, digest)
        return body if status == 200 and body["health"] == "Unhealthy" else None

    flipped = wait_for("the rescan timer flipping the image to Unhealthy", unhealthy, timeout=60, context=context)
    assert VULN in {f["id"] for f in flipped["findings"]}
    assert flipped["lastScan"]["scanId"] == first["lastScan"]["scanId"]  # a rescan, not a new scan

    rows = sub_assessments(serve, registry.host, QUALYS_KEY)
    active = [f for f in flipped["findings"] if f["active"]]
    assert len(rows) == len(active) >= 1
    assert {r["properties"]["status"]["code"] for r in rows} == {"Unhealthy"}
    assert any(VULN in str(r["properties"]) for r in rows)

    # The health-changed event reaches the webhook receiver.
    def flip_event() -> Any:
        events = [r.json() for r in list(webhook.requests)]
        return next((e for e in events if e["data"]["health"] == "Unhealthy"), None)

    event = wait_for("the health-changed event at the webhook", flip_event, context=context)
    assert event["eventType"] == "Acrguard.ImageHealthChanged" and event["subject"] == f"{REPO}@{digest}"
    assert event["data"]["previousHealth"] == "NotAssessed" and event["data"]["registry"] == registry.host
    vuln_keys = {f["key"] for f in flipped["findings"] if f["id"] == VULN}
    assert vuln_keys and vuln_keys <= set(event["data"]["addedFindings"])

    # Still one download of the layer and one charge after the rescan.
    assert len(blob_gets(registry_events, layer["digest"])) == 1
    assert len(scan_rows(store_path, digest)) == 1
    with open_store(store_path) as store:
        assert store.usage(registry.host, EPOCH).billable == 1
