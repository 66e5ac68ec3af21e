"""The function app's adapters, configured from the environment and created once, on first use.

`ACRGUARD_STORE` (findings store URL or path), `ACRGUARD_QUEUE` (queue URL, path or Storage connection
string), `ACRGUARD_DB` (vulnerability database path; `scanner.vulndb.location` reads it), the queue's
`ACRGUARD_MAX_ATTEMPTS` and the worker's lease and backoff (`scanner.service.retry`), and where
health-changed events go (`ACRGUARD_HEALTH_WEBHOOK` or an Event Grid topic, `scanner.service.policy`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from scanner.queue import ScanQueue, open_queue
from scanner.service.pipeline import Policy
from scanner.service.retry import RetrySettings
from scanner.store import FindingsStore, StoreError, open_store
from scanner.vulndb.location import open_scan_database
from scanner.vulndb.sqlite_db import SqliteVulnDatabase

STORE_ENV = "ACRGUARD_STORE"
QUEUE_ENV = "ACRGUARD_QUEUE"
# Malformed events go to their own queue: the scan queue would dead-letter them with a generic error.
EVENT_DEAD_LETTER_QUEUE = "acrguard-event-dead-letters"


class Clients:
    """Lazily opened store, queue, event dead-letter queue and database; one set per worker process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: FindingsStore | None = None
        self._queue: ScanQueue | None = None
        self._dead: ScanQueue | None = None
        self._db: SqliteVulnDatabase | None = None
        self._policy: Policy | None = None
        self._db_identity: tuple[int, int, int] | None = None
        self._retry: RetrySettings | None = None
        self._store_url = ""

    def policy(self) -> Policy:
        """Rules, remediation templates and gates (see scanner.service.policy), loaded once, with the
        health-changed publisher whether or not any gate is configured."""
        with self._lock:
            if self._policy is None:
                from scanner.service.policy import policy_from_environment

                configured = bool(os.environ.get(STORE_ENV, "").strip())
                self._policy = policy_from_environment(self.store if configured else None)
            return self._policy

    def store(self) -> FindingsStore:
        """The process's one findings store (the HTTP lookups, events, rules and the worker share it: a
        rule written through it applies to the next assessment at once). A changed `ACRGUARD_STORE` closes
        the old store and opens the new one."""
        url = _required(STORE_ENV, StoreError)
        with self._lock:
            if self._store is not None and self._store_url != url:
                self._store.close()  # only tests repoint a process at another store
                self._store = None
            if self._store is None:
                self._store, self._store_url = open_store(url), url
            return self._store

    def retry_settings(self) -> RetrySettings:
        """The worker's lease, backoff and attempts, read once: a bad value fails the first use, not every poll."""
        with self._lock:
            if self._retry is None:
                self._retry = RetrySettings.from_environment()
            return self._retry

    def queue(self) -> ScanQueue:
        attempts = self.retry_settings().max_attempts
        with self._lock:
            if self._queue is None:
                self._queue = open_queue(_required(QUEUE_ENV), max_attempts=attempts)
            return self._queue

    def dead_letters(self) -> ScanQueue:
        with self._lock:
            if self._dead is None:
                self._dead = open_queue(_required(QUEUE_ENV), EVENT_DEAD_LETTER_QUEUE)
            return self._dead

    def db(self) -> SqliteVulnDatabase:
        """The vulnerability database, reopened when `db update` (or a timer) replaced the file: updates
        swap the file by rename, and an open connection would keep reading the old one for ever."""
        with self._lock:
            if self._db is not None and _file_identity(self._db.path) != self._db_identity:
                # Not closed: a scan in another thread may still be reading it; it is dropped with its last user.
                self._db = None
            if self._db is None:
                self._db = open_scan_database()
                self._db_identity = _file_identity(self._db.path)
            return self._db

    def close(self) -> None:
        """For tests that change the environment between cases."""
        with self._lock:
            for client in (self._store, self._queue, self._dead, self._db):
                if client is not None:
                    client.close()
            self._store = self._queue = self._dead = None
            self._db = None
            self._policy = None
            self._retry = None


def _file_identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def _required(name: str, error: type[Exception] = RuntimeError) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise error(f"configuration: environment variable {name} is not set")
    return value


clients = Clients()
