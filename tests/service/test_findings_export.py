"""Continuous export: every change of an image's findings or health goes through Microsoft's Logs Ingestion client
(azure-monitor-ingestion) to a local HTTPS endpoint that records what it receives, as records with the columns
of Defender's `SecurityNestedRecommendation` table; an unchanged rescan sends nothing; a dead endpoint does not
fail the scan."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from service_support import CountingFetch, allowing
from test_pipeline import VERSION, push_event

from scanner.model.errors import AcrguardError
from scanner.policy.log_export import ExportError, LogsIngestionSink
from scanner.queue import ScanQueue
from scanner.report.defender_export import EXPORT_COLUMNS
from scanner.report.subassessments import MDVM_KEY
from scanner.service.findings_export import FindingsExporter, registry_scopes
from scanner.service.pipeline import Policy, drain_queue, handle_event, handle_push
from scanner.service.rescan import rescan_recent
from scanner.store import FindingsStore
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.httpserving import serving
from tests.tlspki import make_pki

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RULE, STREAM = "dcr-00000000000000000000000000000000", "Custom-AcrguardFindings_CL"
REGISTRY_ID = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.ContainerRegistry/registries/myacr"


class StaticToken:
    """A TokenCredential handing out one token, as a managed identity would (the SDK asks for Azure Monitor's
    scope)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("export-token", int((datetime.now(UTC) + timedelta(hours=1)).timestamp()))


@dataclass
class Ingestion:
    url: str = ""
    ca: Path = Path()
    status: int = 204
    batches: list[tuple[str, dict[str, str], list[dict[str, Any]]]] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r for _, _, batch in self.batches for r in batch]


@contextmanager
def ingestion_endpoint(tmp_path: Path) -> Iterator[Ingestion]:
    (tmp_path / "pki").mkdir(exist_ok=True)
    ca, cert, key = make_pki(tmp_path / "pki")
    state = Ingestion(ca=ca)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            with lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                state.batches.append((self.path, headers, json.loads(body)))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler, tls=(cert, key)) as url:
        state.url = url
        yield state


def _exporter(endpoint: Ingestion, credential: StaticToken) -> FindingsExporter:
    sink = LogsIngestionSink(endpoint.url, RULE, STREAM, credential, connection_verify=str(endpoint.ca))
    return FindingsExporter(sink, registry_scopes([REGISTRY_ID]))


def test_changes_are_exported_with_defenders_columns(
    tmp_path: Path, store: FindingsStore, queue: ScanQueue, fetch: CountingFetch
) -> None:
    db_path = tmp_path / "vulndb.sqlite"
    import_sources(db_path, [str(FIXTURES / "osv/alpine-secdb/v3.11")])  # another release: nothing to find yet
    event = push_event()
    credential = StaticToken()
    with ingestion_endpoint(tmp_path) as endpoint:
        exporter = _exporter(endpoint, credential)
        exporter.scopes[event.registry] = registry_scopes([REGISTRY_ID])["myacr.azurecr.io"]
        policy = Policy(export=exporter)
        handle_push(event, store, queue, VERSION)
        with SqliteVulnDatabase.open(db_path) as db:
            assert drain_queue(queue, store, db, fetch, VERSION, policy=policy).processed == 1
        # First assessment: NotAssessed, one image row.
        ((path, headers, first),) = endpoint.batches
        assert path == f"/dataCollectionRules/{RULE}/streams/{STREAM}?api-version=2023-01-01"
        assert headers["authorization"] == "Bearer export-token"
        assert credential.scopes and credential.scopes[0] == ("https://monitor.azure.com/.default",)
        (row,) = first
        assert list(row) == [name for name, _ in EXPORT_COLUMNS]
        assert (row["RecommendationState"], row["ParentRecommendationId"]) == ("NotApplicable", MDVM_KEY)
        assert (row["RecommendationSubscriptionId"], row["ResourceGroup"]) == ("sub-1", "rg-1")
        assert row["AssessedResourceId"] == f"{REGISTRY_ID}/repositories/samples/nginx/images/{event.digest}"
        assert row["IsSnapshot"] is False and row["AdditionalData"]["assessedResourceType"]

        pull = replace_pull(event)
        handle_event(pull, store, queue, VERSION, registries=allowing(pull.registry))
        since = datetime.now(UTC) - timedelta(days=1)
        with SqliteVulnDatabase.open(db_path) as db:
            assert rescan_recent(store, db, since, VERSION, policy=policy).rematched == 1
        assert len(endpoint.batches) == 1  # nothing changed: nothing exported

        import_sources(db_path, [str(FIXTURES / "osv/alpine-secdb/v3.10")])  # the database update
        with SqliteVulnDatabase.open(db_path) as db:
            assert rescan_recent(store, db, since, VERSION, policy=policy).rematched == 1
        second = endpoint.batches[-1][2]
        assert len(second) == 8 and {r["RecommendationState"] for r in second} == {"Unhealthy"}
        musl = next(r for r in second if r["AdditionalData"]["softwareDetails"]["packageName"] == "musl")
        assert "CVE-2019-14697" in (musl["Id"], musl["AdditionalData"]["vulnerabilityDetails"]["cveId"])
        assert musl["RecommendationSeverity"] in ("High", "Medium", "Low")
        assert len({r["NestedRecommendationId"] for r in second}) == 8


def replace_pull(event: Any) -> Any:
    from dataclasses import replace

    return replace(event, kind="pull", tag=None, event_id="p1", at=datetime.now(UTC))


def test_a_failing_endpoint_is_logged_and_the_scan_stands(
    tmp_path: Path, store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    with ingestion_endpoint(tmp_path) as endpoint:
        endpoint.status = 403  # e.g. the identity lacks Monitoring Metrics Publisher on the rule
        policy = Policy(export=_exporter(endpoint, StaticToken()))
        handle_push(push_event(), store, queue, VERSION)
        assert drain_queue(queue, store, db, fetch, VERSION, policy=policy).processed == 1
    assert endpoint.batches  # it was tried
    assert any("not exported" in r.message and "records not sent" in r.message for r in caplog.records)


def test_the_sink_refuses_plain_http_and_says_what_was_lost(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not an https URL"):
        LogsIngestionSink("http://127.0.0.1:1", RULE, STREAM, StaticToken())
    sink = LogsIngestionSink("https://127.0.0.1:1", RULE, STREAM, StaticToken(), retry_total=0)
    with pytest.raises(ExportError, match=r"1 records not sent|1 of 1 records not sent"):
        sink.send([{"TimeGenerated": "2026-12-04T00:00:00Z"}])


@pytest.mark.parametrize(
    "bad",
    [
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/x",
        "/subscriptions/s/providers/Microsoft.ContainerRegistry/registries/x",
        "myacr.azurecr.io",
    ],
)
def test_registry_ids_are_checked(bad: str) -> None:
    with pytest.raises(AcrguardError, match="registry resource id"):
        registry_scopes([bad])
