"""One log line per scan event: queued, started, finished (health, what changed, duration) or failed (why)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from service_support import CountingFetch
from test_pipeline import VERSION, push_event

from scanner.cli.logs import JsonFormatter, configure_logging
from scanner.queue import ScanQueue
from scanner.service.pipeline import drain_queue, handle_push
from scanner.store import FindingsStore
from scanner.vulndb.sqlite_db import SqliteVulnDatabase


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "scanner.service.pipeline"]


def test_a_scan_is_three_lines(
    store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, fetch: CountingFetch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="scanner.service.pipeline")
    event = push_event()
    handle_push(event, store, queue, VERSION)
    assert drain_queue(queue, store, db, fetch, VERSION).processed == 1
    label = f"{event.registry}/{event.repository}@{event.digest}"
    queued, started, finished = _lines(caplog)
    assert queued == f"scan queued: {label} (push)"
    assert started == f"scan started: {label} (push, attempt 1)"
    assert finished.startswith(f"scan finished: {label} Unhealthy (8 new, 0 resolved findings), ")
    assert all("\n" not in line for line in _lines(caplog))


def test_a_failed_scan_says_why(
    store: FindingsStore, queue: ScanQueue, db: SqliteVulnDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scanner.service.pipeline")

    def broken(_request: Any) -> Any:
        raise OSError("registry unreachable")

    handle_push(push_event(), store, queue, VERSION)
    drain_queue(queue, store, db, broken, VERSION)
    failed = [line for line in _lines(caplog) if line.startswith("scan failed: ")]
    assert failed and failed[0].endswith(": registry unreachable")


def test_sdk_request_logs_stay_quiet_unless_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    class Args:
        verbose = False
        log_format = "json"

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(Args())  # type: ignore[arg-type]
        assert (
            logging.getLogger("azure.core.pipeline.policies.http_logging_policy").getEffectiveLevel() == logging.WARNING
        )
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        logging.getLogger("scanner.service.pipeline").info("scan queued: x")
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert (line["level"], line["logger"], line["message"]) == (
            "INFO",
            "scanner.service.pipeline",
            "scan queued: x",
        )
        Args.verbose = True
        configure_logging(Args())  # type: ignore[arg-type]
        assert logging.getLogger("azure").level == logging.INFO
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        logging.getLogger("azure").setLevel(logging.NOTSET)
        logging.getLogger("urllib3").setLevel(logging.NOTSET)
