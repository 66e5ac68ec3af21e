"""The resource-log timer: every `ACRGUARD_LOG_SCHEDULE` (default every 15 minutes) ACR's
`ContainerRegistryRepositoryEvents` of the last `ACRGUARD_LOG_LOOKBACK_MINUTES` (60) are read from the
Log Analytics workspace `ACRGUARD_LOG_WORKSPACE_ID` and fed to the pipeline (pulls, imports, pushes, deletes).
The lookback overlaps earlier runs so that rows ingested late are still read; the records are idempotent."""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime, timedelta

import azure.functions as func

from scanner import __version__
from scanner.azure.log_analytics import LogAnalytics, LogQueryError
from scanner.service.config import clients
from scanner.service.log_ingest import import_window

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)
WORKSPACE_ENV = "ACRGUARD_LOG_WORKSPACE_ID"
LOOKBACK_ENV = "ACRGUARD_LOG_LOOKBACK_MINUTES"
DEFAULT_SCHEDULE = "0 */15 * * * *"  # six-field NCRONTAB: every 15 minutes
DEFAULT_LOOKBACK_MINUTES = 60  # four runs: a row ingested up to 45 minutes late is still read

_lock = threading.Lock()
_sources: dict[tuple[str, str], LogAnalytics] = {}  # one client per (workspace, endpoint), reused across runs


def lookback() -> timedelta:
    text = os.environ.get(LOOKBACK_ENV, "").strip()
    try:
        minutes = int(text) if text else DEFAULT_LOOKBACK_MINUTES
    except ValueError:
        log.warning("%s=%r is not a number; using %d", LOOKBACK_ENV, text, DEFAULT_LOOKBACK_MINUTES)
        minutes = DEFAULT_LOOKBACK_MINUTES
    return timedelta(minutes=max(minutes, 1))


def log_source(workspace_id: str) -> LogAnalytics:
    source = LogAnalytics(workspace_id)
    with _lock:
        return _sources.setdefault((source.workspace_id, source.endpoint), source)


@bp.timer_trigger(schedule=os.environ.get("ACRGUARD_LOG_SCHEDULE", DEFAULT_SCHEDULE), arg_name="timer")
def resource_log(timer: func.TimerRequest) -> None:
    workspace = os.environ.get(WORKSPACE_ENV, "").strip()
    if not workspace:
        log.info("resource log: %s is not set; no pull or import records are read from Log Analytics", WORKSPACE_ENV)
        return
    try:
        counts = import_window(
            log_source(workspace),
            clients.store(),
            clients.queue(),
            __version__,
            datetime.now(UTC),
            lookback(),
            dead_letters=clients.dead_letters(),
        )
    except LogQueryError as err:
        # Nothing was read, so nothing is lost: the next run's window covers this one's.
        log.error("resource log: %s", err)
        return
    log.info(
        "resource log: %d rows: %d pulls, %d imports/pushes (%d scans queued), %d deletes, %d without digest,"
        " %d ignored, %d malformed%s",
        counts.rows,
        counts.pulls,
        counts.pushes,
        counts.queued,
        counts.deletes,
        counts.skipped,
        counts.ignored,
        counts.malformed,
        " (partial result)" if counts.partial else "",
    )
