"""`ACRGUARD_SEVERITY_SOURCES` reaches the service's scans: the policy the composition root builds from the settings
carries the order, and the queue's scan of a real image rates its findings by it."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_support import CountingFetch
from test_pipeline import VERSION, push_event

from scanner.model.settings import Settings
from scanner.queue import ScanQueue
from scanner.service.pipeline import drain_queue, handle_push, reassess_stored
from scanner.service.policy import policy_from_settings
from scanner.store import FindingsStore
from scanner.store.records import ImageKey
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NVD_MUSL = FIXTURES / "nvd" / "CVE-2019" / "CVE-2019-146xx" / "CVE-2019-14697.json"


@pytest.fixture
def nvd_db(tmp_path: Path) -> SqliteVulnDatabase:
    path = tmp_path / "nvd.sqlite"
    import_sources(path, [str(FIXTURES / "osv" / "alpine-secdb" / "v3.10"), str(NVD_MUSL)])
    return SqliteVulnDatabase.open(path)


def musl(store: FindingsStore, registry: str, digest: str) -> set[tuple[str, str]]:
    found = store.list_findings(registry, digest, include_disabled=True)
    return {(f.finding.severity, f.finding.severity_source) for f in found if f.finding.package.name == "musl"}


def test_the_setting_orders_the_sources_of_a_queued_scan_and_a_rematch(
    monkeypatch: pytest.MonkeyPatch,
    store: FindingsStore,
    queue: ScanQueue,
    nvd_db: SqliteVulnDatabase,
    fetch: CountingFetch,
) -> None:
    with nvd_db:
        monkeypatch.setenv("ACRGUARD_SEVERITY_SOURCES", "vendor,cvss,cna")  # NVD left out
        policy = policy_from_settings(Settings.from_environ())
        assert policy.severity_order == ("vendor", "cvss", "cna")
        event = push_event()
        handle_push(event, store, queue, VERSION)
        assert drain_queue(queue, store, nvd_db, fetch, VERSION, policy=policy).processed == 1
        assert musl(store, event.registry, event.digest) == {("Unknown", "none")}
        # The default order reads NVD's record: the same stored inventory, re-assessed, is Critical.
        monkeypatch.delenv("ACRGUARD_SEVERITY_SOURCES")
        default = policy_from_settings(Settings.from_environ())
        key = ImageKey(event.registry, event.repository, event.digest)
        assert reassess_stored(key, store, nvd_db, default) is not None
        assert musl(store, event.registry, event.digest) == {("Critical", "cve:nvd:cvss:3.1")}
