"""The nightly rescan: digests pulled in the last `ACRGUARD_RESCAN_DAYS` (30) days are re-matched against
the current database from their stored inventories, without pulling."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

import azure.functions as func

from scanner import __version__
from scanner.service.config import clients
from scanner.service.pipeline import rescan_recent

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)
DEFAULT_SCHEDULE = "0 0 3 * * *"  # six-field NCRONTAB: 03:00 every day
DEFAULT_DAYS = 30


def rescan_window() -> timedelta:
    text = os.environ.get("ACRGUARD_RESCAN_DAYS", "").strip()
    try:
        days = int(text) if text else DEFAULT_DAYS
    except ValueError:
        log.warning("ACRGUARD_RESCAN_DAYS=%r is not a number; using %d", text, DEFAULT_DAYS)
        days = DEFAULT_DAYS
    return timedelta(days=max(days, 1))


@bp.timer_trigger(schedule=os.environ.get("ACRGUARD_RESCAN_SCHEDULE", DEFAULT_SCHEDULE), arg_name="timer")
def rescan(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.info("rescan timer is past due; running now")
    since = datetime.now(UTC) - rescan_window()
    counts = rescan_recent(
        clients.store(), clients.db(), since, __version__, queue=clients.queue(), policy=clients.policy()
    )
    log.info("rescan: %d re-matched, %d requeued, %d failed", counts.rematched, counts.requeued, counts.failed)
