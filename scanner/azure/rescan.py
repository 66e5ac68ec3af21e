"""The nightly rescan: digests pulled in the last `ACRGUARD_RESCAN_DAYS` (30) days are re-matched against
the current database from their stored inventories, without pulling. Always all of them: the safety net of
the rescans after database updates, which re-match only what an update changed (`scanner.azure.dbupdate`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import azure.functions as func

from scanner import __version__
from scanner.model.settings import timer_schedule
from scanner.service.config import clients
from scanner.service.delta_rescan import full_rescan

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


# The schedule is the decorator's, so it is read when the app is indexed (default 03:00 every day).
@bp.timer_trigger(schedule=timer_schedule("rescan_schedule"), arg_name="timer")
def rescan(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.info("rescan timer is past due; running now")
    since = datetime.now(UTC) - timedelta(days=clients.settings().rescan_days)
    counts = full_rescan(
        clients.store(), clients.db(), since, __version__, queue=clients.queue(), policy=clients.policy()
    )
    log.info("rescan: %d re-matched, %d requeued, %d failed", counts.rematched, counts.requeued, counts.failed)
