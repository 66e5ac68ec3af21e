"""The function app's adapters, configured by the process's settings (`scanner.model.settings`) and created
once, on first use.

`ACRGUARD_STORE` (findings store URL or path), `ACRGUARD_QUEUE` (queue URL, path or Storage connection
string), `ACRGUARD_DB` (vulnerability database path), the queue's `ACRGUARD_MAX_ATTEMPTS` and the worker's
lease and backoff (`scanner.service.retry`), the policy (`scanner.service.policy`) and the registries the
service may reach (`ACRGUARD_REGISTRIES` with their credentials, `scanner.image.registry_options`). In Azure
the settings are read from the environment on first use; `acrguard serve` and `worker` configure them, their
options applied, before anything runs.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from scanner import __version__
from scanner.assess.findings import with_exploitation
from scanner.assess.risk import with_risk
from scanner.image.registry_options import RegistryAccess, RegistryOptions
from scanner.model.errors import AcrguardError
from scanner.model.settings import Settings, env_name
from scanner.model.types import Finding
from scanner.queue import ScanQueue, open_queue
from scanner.service.pipeline import DrainCounts, FetchAndInventory, Policy, drain_queue
from scanner.service.retry import RetrySettings
from scanner.service.vulndb_blob import DbBlob
from scanner.store import FindingsStore, StoreError, open_store
from scanner.vulndb.location import open_scan_database, writable_db_path
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

_log = logging.getLogger(__name__)

# Malformed events go to their own queue: the scan queue would dead-letter them with a generic error.
EVENT_DEAD_LETTER_QUEUE = "acrguard-event-dead-letters"


class Clients:
    """The settings, and the lazily opened store, queue, event dead-letter queue, database and policy they
    configure; one set per worker process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._store: FindingsStore | None = None
        self._queue: ScanQueue | None = None
        self._dead: ScanQueue | None = None
        self._db: SqliteVulnDatabase | None = None
        self._db_blob: DbBlob | None = None
        self._policy: Policy | None = None
        self._db_identity: tuple[int, int, int] | None = None
        self._retry: RetrySettings | None = None
        self._registry: RegistryOptions | None = None

    def settings(self) -> Settings:
        """The configured settings, else the environment's, read on first use (a bad value fails that use)."""
        with self._lock:
            if self._settings is None:
                self._settings = Settings.from_environ()
            return self._settings

    def configure(self, settings: Settings | None) -> None:
        """Use `settings` from now on (None: the environment's, read on next use). Adapters opened under other
        settings are closed: serve and the worker configure before anything opens, tests between cases."""
        with self._lock:
            if settings is not None and settings == self._settings:
                return
            self._close_adapters()
            self._settings = settings

    def policy(self) -> Policy:
        """Rules, remediation templates and gates (see scanner.service.policy), loaded once, with the
        health-changed publisher whether or not any gate is configured."""
        settings = self.settings()
        with self._lock:
            if self._policy is None:
                from scanner.service.policy import policy_from_settings

                self._policy = policy_from_settings(settings, self.store if settings.store else None)
            return self._policy

    def store(self) -> FindingsStore:
        """The process's one findings store (the HTTP lookups, events, rules and the worker share it: a
        rule written through it applies to the next assessment at once)."""
        settings = self.settings()
        url = _required(settings, "store", StoreError)
        with self._lock:
            if self._store is None:
                self._store = open_store(url, auth=settings.store_auth)
            return self._store

    def retry_settings(self) -> RetrySettings:
        """The worker's lease, backoff and attempts, checked once: a bad value fails the first use, not every poll."""
        settings = self.settings()
        with self._lock:
            if self._retry is None:
                self._retry = RetrySettings.from_settings(settings)
            return self._retry

    def registry_options(self) -> RegistryOptions:
        """The registries the service may reach, each with its credential (`RegistryAccess.from_settings`),
        checked once: a bad registry setting fails the first use."""
        settings = self.settings()
        with self._lock:
            if self._registry is None:
                self._registry = RegistryOptions().with_settings(settings)
            return self._registry

    def registries(self) -> RegistryAccess:
        """The allow-list every event, notification, resource-log row and manual scan is checked against."""
        return self.registry_options().registries

    def queue(self) -> ScanQueue:
        attempts = self.retry_settings().max_attempts
        settings = self.settings()
        url = _required(settings, "queue")
        with self._lock:
            if self._queue is None:
                self._queue = open_queue(
                    url,
                    max_attempts=attempts,
                    max_dead_letters=settings.max_dead_letters,
                    max_queued_per_registry=settings.max_queued_per_registry,
                )
            return self._queue

    def dead_letters(self) -> ScanQueue:
        settings = self.settings()
        url = _required(settings, "queue")
        with self._lock:
            if self._dead is None:
                self._dead = open_queue(url, EVENT_DEAD_LETTER_QUEUE, max_dead_letters=settings.max_dead_letters)
            return self._dead

    def db_blob(self) -> DbBlob | None:
        """The published database (`ACRGUARD_DB_BLOB_URL`) and its local copy at `ACRGUARD_DB`; None when no
        blob is configured."""
        settings = self.settings()
        if not settings.db_blob_url:
            return None
        with self._lock:
            if self._db_blob is None:
                self._db_blob = DbBlob(
                    settings.db_blob_url,
                    writable_db_path(settings.db),
                    max_bytes=settings.db_blob_max_mb * 1024 * 1024,
                    check_seconds=settings.db_blob_check_seconds,
                )
            return self._db_blob

    def db(self) -> SqliteVulnDatabase:
        """The vulnerability database, reopened when `db update` (or a timer) replaced the file: updates
        swap the file by rename, and an open connection would keep reading the old one for ever. With a
        database blob, the local copy is first brought up to the published one (see
        `scanner.service.vulndb_blob`): no verified copy is a DbBlobError, never the bundled snapshot."""
        chosen = self.settings().db
        blob = self.db_blob()
        if blob is not None:
            chosen = str(blob.refresh())  # outside the lock: a download takes a while
        with self._lock:
            if self._db is not None and _file_identity(self._db.path) != self._db_identity:
                # Not closed: a scan in another thread may still be reading it; it is dropped with its last user.
                self._db = None
            if self._db is None:
                self._db = open_scan_database(chosen)
                self._db_identity = _file_identity(self._db.path)
            return self._db

    def current_signals(self, findings: list[Finding]) -> list[Finding]:
        """Stored findings with the database's current KEV entries and EPSS scores, and the risk they give (the
        lookups' `refresh`). Without a readable database they are shown as stored, and the reason is logged."""
        try:
            db = self.db()
        except (AcrguardError, OSError, sqlite3.Error) as exc:
            _log.warning("lookups show stored exploitation signals: vulnerability database unreadable: %s", exc)
            return findings
        return with_risk(with_exploitation(findings, db))

    def drain(self, fetch: FetchAndInventory, max_messages: int) -> DrainCounts:
        """One step of a queue worker (`acrguard worker`, serve's worker threads): up to `max_messages` scan
        requests through `fetch` on this process's adapters, policy and retry settings."""
        return drain_queue(
            self.queue(),
            self.store(),
            self.db(),
            fetch,
            __version__,
            max_messages=max_messages,
            policy=self.policy(),
            settings=self.retry_settings(),
        )

    def close(self) -> None:
        """Closes every adapter and forgets the settings: the next use reads the environment again (tests
        change it between cases)."""
        with self._lock:
            self._close_adapters()
            self._settings = None

    def _close_adapters(self) -> None:
        for client in (self._store, self._queue, self._dead, self._db):
            if client is not None:
                client.close()
        self._store = self._queue = self._dead = None
        self._db = None
        if self._db_blob is not None:
            self._db_blob.close()
        self._db_blob = None
        self._policy = None
        self._retry = None
        self._registry = None


def _file_identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def _required(settings: Settings, name: str, error: type[Exception] = RuntimeError) -> str:
    value: str = getattr(settings, name)
    if not value:
        raise error(f"configuration: environment variable {env_name(name)} is not set")
    return value


clients = Clients()
