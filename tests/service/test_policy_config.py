"""The service's policy comes from its configuration: rules, templates, gates and the event destination."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_support import CountingFetch
from test_pipeline import VERSION, push_event

from scanner.model.settings import Settings
from scanner.policy.gates import GateError
from scanner.queue import ScanQueue
from scanner.service.pipeline import drain_queue, handle_push
from scanner.service.policy import policy_from_settings
from scanner.store import FindingsStore
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.policy.httprecorder import recording_server


def test_rules_remediation_gates_and_webhook_from_the_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: FindingsStore,
    queue: ScanQueue,
    db: SqliteVulnDatabase,
    fetch: CountingFetch,
) -> None:
    rules, gates = tmp_path / "rules", tmp_path / "gates"
    rules.mkdir()
    gates.mkdir()
    (rules / "accept.yaml").write_text(
        "rules:\n  - name: accept-openssl\n    justification: tested\n    match:\n      packages: [openssl]\n"
    )
    (gates / "notify.yaml").write_text(
        "gates:\n  - name: any\n    description: d\n    when:\n      any_severity_at_least: Unknown\n"
        "    actions: [notify]\n"
    )
    with recording_server() as webhook:
        monkeypatch.setenv("ACRGUARD_RULES", str(rules))
        monkeypatch.setenv("ACRGUARD_GATES", str(gates))
        monkeypatch.setenv("ACRGUARD_HEALTH_WEBHOOK", f"{webhook.url}/events")
        policy = policy_from_settings(Settings.from_environ())
        event = push_event()
        handle_push(event, store, queue, VERSION)
        assert drain_queue(queue, store, db, fetch, VERSION, policy=policy).processed == 1
        findings = store.list_findings(event.registry, event.digest, include_disabled=True)
        disabled = [f for f in findings if f.finding.disabled]
        assert len(findings) == 8 and len(disabled) == 6  # libssl1.1 and libcrypto1.1 come from openssl
        assert all("apk add --upgrade" in f.finding.remediation for f in findings)
        assert webhook.requests and webhook.requests[0].path == "/events"
        assert webhook.requests[0].json()["data"]["health"] == "Unhealthy"


def test_a_malformed_gate_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.yaml").write_text("gates:\n  - name: x\n    when: {nope: 1}\n    actions: [notify]\n")
    monkeypatch.setenv("ACRGUARD_GATES", str(tmp_path))
    with pytest.raises(GateError, match=r"bad\.yaml"):
        policy_from_settings(Settings.from_environ())
