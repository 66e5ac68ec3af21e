"""The resource-log timer: every `ACRGUARD_LOG_SCHEDULE` (default every 15 minutes) ACR's
`ContainerRegistryRepositoryEvents` of the last `ACRGUARD_LOG_LOOKBACK_MINUTES` (60) are read from the
Log Analytics workspace `ACRGUARD_LOG_WORKSPACE_ID` and fed to the pipeline (pulls, imports, pushes, deletes).
The lookback overlaps earlier runs so that rows ingested late are still read; the records are idempotent."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import azure.functions as func

from scanner import __version__
from scanner.azure.log_analytics import LogAnalytics, LogQueryError
from scanner.model.settings import env_name, timer_schedule
from scanner.service.config import clients
from scanner.service.log_ingest import import_window

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)

_lock = threading.Lock()
_sources: dict[tuple[str, str], LogAnalytics] = {}  # one client per (workspace, endpoint), reused across runs


def log_source(workspace_id: str, endpoint: str) -> LogAnalytics:
    source = LogAnalytics(workspace_id, endpoint=endpoint)
    with _lock:
        return _sources.setdefault((source.workspace_id, source.endpoint), source)


# The schedule is the decorator's, so it is read when the app is indexed (default every 15 minutes). The
# default lookback of 60 minutes is four runs: a row ingested up to 45 minutes late is still read.
@bp.timer_trigger(schedule=timer_schedule("log_schedule"), arg_name="timer")
def resource_log(timer: func.TimerRequest) -> None:
    settings = clients.settings()
    if not settings.log_workspace_id:
        log.info(
            "resource log: %s is not set; no pull or import records are read from Log Analytics",
            env_name("log_workspace_id"),
        )
        return
    try:
        counts = import_window(
            log_source(settings.log_workspace_id, settings.log_endpoint),
            clients.store(),
            clients.queue(),
            __version__,
            datetime.now(UTC),
            timedelta(minutes=settings.log_lookback_minutes),
            dead_letters=clients.dead_letters(),
            registries=clients.registries(),
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
