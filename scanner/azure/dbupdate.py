"""The database refresh timer: every `ACRGUARD_DB_UPDATE_SCHEDULE` (default every 6 hours) the feeds are brought
up to date exactly as `acrguard db update` does (`scanner.vulndb.update`: the database at `ACRGUARD_DB`, the
servers at `ACRGUARD_OSV_BASE_URL`, `ACRGUARD_KEV_URL`, `ACRGUARD_EPSS_URL`), optionally only the osv.dev
ecosystems in `ACRGUARD_DB_ECOSYSTEMS` (comma-separated); KEV and EPSS are always fetched (when unchanged, a 304
each), so exploitation follows CISA and FIRST daily. The update is all or nothing: on failure the old database
stays in use; on success `clients.db()` reopens the replaced file for the next scan or rescan.

With `ACRGUARD_DB_BLOB_URL` the run starts from the published database (downloaded and verified, when this
instance has no current copy) and ends by publishing the result there with its digest, for every other reader
(`scanner.service.vulndb_blob`); a failed upload is logged and retried by the next run.

Then, with `ACRGUARD_RESCAN_AFTER_UPDATE` (default on), the digests pulled within `ACRGUARD_RESCAN_DAYS` whose
findings the update can change are re-matched (`scanner.service.delta_rescan`): only those, when the
database's change record says what changed since the last rescan; all of them otherwise."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import azure.functions as func

from scanner import __version__
from scanner.model.errors import AcrguardError, one_line
from scanner.model.settings import timer_schedule
from scanner.service.config import clients
from scanner.service.delta_rescan import rescan_after_update
from scanner.vulndb.location import writable_db_path
from scanner.vulndb.update import DEFAULT_SIGNAL_FEEDS, SignalUrls, update

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


# The schedule is the decorator's, so it is read when the app is indexed (default 00:00, 06:00, 12:00, 18:00).
@bp.timer_trigger(schedule=timer_schedule("db_update_schedule"), arg_name="timer")
def db_update(timer: func.TimerRequest) -> None:
    blob = clients.db_blob()
    if blob is None:
        if _update():
            _rescan()
        return
    try:
        blob.refresh(force=True)  # start from the published database, not from an instance's stale copy
    except AcrguardError as err:
        log.warning("database update starts without the published database: %s", one_line(err))
    with blob.writing():
        if not _update():
            return
        try:
            blob.publish()
        except AcrguardError as err:
            log.error("database update: not published, readers keep the previous database: %s", one_line(err))
    _rescan()


def _rescan() -> None:
    """The recently pulled digests the update can change, re-matched; a failure waits for the next run (the
    mark it starts from stays where it was) or the rescan timer."""
    settings = clients.settings()
    if settings.rescan_after_update != "true":
        return
    since = datetime.now(UTC) - timedelta(days=settings.rescan_days)
    try:
        result = rescan_after_update(
            clients.store(), clients.db(), since, __version__, queue=clients.queue(), policy=clients.policy()
        )
    except Exception as err:  # the update itself succeeded; the timer must not fail for its rescan
        log.error("rescan after the database update failed: %s", one_line(err))
        return
    counts = result.counts
    log.info(
        "rescan after the database update (%s%s): %d re-matched, %d requeued, %d failed, %d changed",
        result.mode,
        f": {result.reason}" if result.reason else f", {result.affected} affected",
        counts.rematched,
        counts.requeued,
        counts.failed,
        result.changed,
    )


def _update() -> bool:
    """One update of the local database; whether it succeeded (a failure is logged, the old file intact)."""
    settings = clients.settings()
    path = writable_db_path(settings.db)
    try:
        # No ecosystems configured: None, `db update`'s defaults (KEV and EPSS among them); some: those, with KEV
        # and EPSS still.
        ecosystems = list(settings.db_ecosystems) or None
        report = update(
            path,
            ecosystems,
            base=settings.osv_base_url,
            signals=DEFAULT_SIGNAL_FEEDS if ecosystems else None,
            signal_urls=SignalUrls(settings.kev_url, settings.epss_url, settings.cve_release_url),
        )
    except Exception as err:  # a feed outage must not fail the host's timer; the old database is intact
        log.error("database update of %s failed, the current database stays in use: %s", path, one_line(err))
        return False
    changed = [o.ecosystem for o in report.outcomes if o.result is not None]
    log.info(
        "database update of %s: %s",
        path,
        f"replaced ({', '.join(changed)} changed)" if report.replaced else "every feed unchanged",
    )
    return True
