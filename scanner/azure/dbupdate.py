"""The database refresh timer: every `ACRGUARD_DB_UPDATE_SCHEDULE` (default every 6 hours) the osv.dev feeds
are brought up to date exactly as `acrguard db update` does (`scanner.vulndb.update`: the database at
`ACRGUARD_DB`, the server at `ACRGUARD_OSV_BASE_URL`), optionally only the ecosystems in
`ACRGUARD_DB_ECOSYSTEMS` (comma-separated). The update is all or nothing: on failure the old database stays in
use; on success `clients.db()` reopens the replaced file for the next scan or rescan."""

from __future__ import annotations

import logging
import os

import azure.functions as func

from scanner.model.errors import one_line
from scanner.vulndb.location import writable_db_path
from scanner.vulndb.update import update

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)
DEFAULT_SCHEDULE = "0 0 */6 * * *"  # six-field NCRONTAB: 00:00, 06:00, 12:00, 18:00
ECOSYSTEMS_ENV = "ACRGUARD_DB_ECOSYSTEMS"


def ecosystems() -> list[str] | None:
    """The configured ecosystems, or None for `db update`'s defaults."""
    names = [name.strip() for name in os.environ.get(ECOSYSTEMS_ENV, "").split(",") if name.strip()]
    return names or None


@bp.timer_trigger(schedule=os.environ.get("ACRGUARD_DB_UPDATE_SCHEDULE", DEFAULT_SCHEDULE), arg_name="timer")
def db_update(timer: func.TimerRequest) -> None:
    path = writable_db_path()
    try:
        report = update(path, ecosystems())
    except Exception as err:  # a feed outage must not fail the host's timer; the old database is intact
        log.error("database update of %s failed, the current database stays in use: %s", path, one_line(err))
        return
    changed = [o.ecosystem for o in report.outcomes if o.result is not None]
    log.info(
        "database update of %s: %s",
        path,
        f"replaced ({', '.join(changed)} changed)" if report.replaced else "every feed unchanged",
    )
