"""The database refresh timer: every `ACRGUARD_DB_UPDATE_SCHEDULE` (default every 6 hours) the feeds are brought
up to date exactly as `acrguard db update` does (`scanner.vulndb.update`: the database at `ACRGUARD_DB`, the
servers at `ACRGUARD_OSV_BASE_URL`, `ACRGUARD_KEV_URL`, `ACRGUARD_EPSS_URL`), optionally only the osv.dev
ecosystems in `ACRGUARD_DB_ECOSYSTEMS` (comma-separated); KEV and EPSS are always fetched (when unchanged, a 304
each), so exploitation follows CISA and FIRST daily. The update is all or nothing: on failure the old database
stays in use; on success `clients.db()` reopens the replaced file for the next scan or rescan.

With `ACRGUARD_DB_BLOB_URL` the run starts from the published database (downloaded and verified, when this
instance has no current copy) and ends by publishing the result there with its digest, for every other reader
(`scanner.service.vulndb_blob`); a failed upload is logged and retried by the next run."""

from __future__ import annotations

import logging

import azure.functions as func

from scanner.model.errors import AcrguardError, one_line
from scanner.model.settings import timer_schedule
from scanner.service.config import clients
from scanner.vulndb.location import writable_db_path
from scanner.vulndb.update import DEFAULT_SIGNAL_FEEDS, SignalUrls, update

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


# The schedule is the decorator's, so it is read when the app is indexed (default 00:00, 06:00, 12:00, 18:00).
@bp.timer_trigger(schedule=timer_schedule("db_update_schedule"), arg_name="timer")
def db_update(timer: func.TimerRequest) -> None:
    blob = clients.db_blob()
    if blob is None:
        _update()
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
