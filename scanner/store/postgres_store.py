"""The scale-out store: PostgreSQL through psycopg 3, shared by every function instance.

Statements are the shared SQL with `?` placeholders rewritten for psycopg; the SQL never holds a literal
`%` or `?` otherwise. Migrations, and writes that read before they write, serialise on transaction-scoped
advisory locks.

The connection is in autocommit mode and every round trip counts (a rescan makes several per image): a
statement that stands alone runs without BEGIN and COMMIT, a read-only transaction opens with one
`BEGIN READ ONLY`, and a statement over many rows (`sql.Rows`) goes out once, one binary array a column.

With Entra authentication (Azure Database for PostgreSQL), the password is an access token that expires
within the hour: `password` is then a function asked again for every new connection (a reconnect after a
drop included); a connection open when its token expires stays signed in, as PostgreSQL checks the
password only when connecting.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg

from scanner.model.errors import one_line
from scanner.store.errors import StoreError
from scanner.store.sql import Dialect, Params, Row, Rows, Tx
from scanner.store.sql_store import SqlStore

# Arbitrary but fixed: every acrguard instance contends on the same advisory lock while migrating.
MIGRATION_LOCK_ID = 0x616372_6775_6172  # "acrguar"
CONNECT_TIMEOUT_S = 10
# The audience of Entra tokens for Azure Database for PostgreSQL (and MySQL), the same in every cloud.
ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
_TLS_MODES = {"require", "verify-ca", "verify-full"}

PasswordProvider = Callable[[], str]
_log = logging.getLogger(__name__)


def identity_credential() -> Any:
    """DefaultAzureCredential: the managed identity in Azure (a user-assigned one named by `AZURE_CLIENT_ID`),
    the developer's sign-in locally."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class EntraPassword:
    """A password provider handing out Entra access tokens for PostgreSQL from `credential` (default:
    DefaultAzureCredential, the managed identity in Azure; building it reaches no network). The credential
    caches a token and renews it before it expires, so asking per connection reaches Entra only when due."""

    def __init__(self, credential: Any = None) -> None:
        self.credential = credential if credential is not None else identity_credential()

    def __call__(self) -> str:
        return str(self.credential.get_token(ENTRA_SCOPE).token)


def _md5_text(document: str) -> str:
    return hashlib.md5(document.encode(), usedforsecurity=False).hexdigest()  # what md5(text) gives


_ADVISORY_LOCKS = Rows(
    "SELECT pg_advisory_xact_lock(hashtext(?), hashtext(?))",
    "SELECT count(pg_advisory_xact_lock(hashtext(s), hashtext(n))) FROM unnest(CAST(? AS text[]),"
    " CAST(? AS text[])) AS k (s, n)",
)


def _sql(statement: str) -> str:
    return statement.replace("?", "%s")


class _PostgresTx:
    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        self._cur.execute(_sql(sql), tuple(params))
        return [tuple(r) for r in self._cur.fetchall()]

    def run(self, sql: str, params: Params = ()) -> int:
        self._cur.execute(_sql(sql), tuple(params))
        return self._cur.rowcount

    def write(self, statement: Rows, rows: Sequence[Params]) -> None:
        # One array parameter a column, sent in binary: the text format escapes every element in Python (a
        # regular expression a string), which cost more than the statement.
        if rows:
            columns = tuple(list(column) for column in zip(*rows, strict=True))
            self._cur.execute(statement.arrays.replace("?", "%b"), columns)


def _redacted(url: str) -> str:
    """The connection string without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://…"
    return f"postgresql://{info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"


class PostgresStore(SqlStore):
    dialect = Dialect(
        name="postgresql", lock_suffix=" FOR UPDATE", stored_document="md5(f.finding)", fingerprint=_md5_text
    )

    def __init__(self, url: str, password: PasswordProvider | None = None) -> None:
        """`password`: asked for the password of every new connection (Entra tokens); None: the URL's, or
        libpq's own sources (PGPASSWORD, a password file)."""
        self._url = url
        self._where = _redacted(url)
        self._password = password
        self._extra: dict[str, str] = {}
        if password is not None:
            try:
                info = psycopg.conninfo.conninfo_to_dict(url)
            except psycopg.Error as err:
                raise StoreError(f"findings store {self._where}: bad URL: {err}") from err
            if info.get("password"):
                raise StoreError(
                    f"findings store {self._where}: the URL holds a password, but the password is an Entra token"
                )
            if "sslmode" not in info:
                self._extra["sslmode"] = "require"  # a token is a credential: never over plain TCP by default
            elif info["sslmode"] not in _TLS_MODES:
                _log.warning("findings store %s: Entra token sent with sslmode=%s", self._where, info["sslmode"])
        self._mutex = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._mutex:
            self._connection()

    def _connection(self) -> psycopg.Connection[Any]:
        # Reconnect after a dropped connection (database restart, idle timeout) instead of failing forever.
        if self._conn is None or self._conn.closed or self._conn.broken:
            extra = dict(self._extra)
            if self._password is not None:
                try:
                    extra["password"] = self._password()
                except Exception as err:  # the credential's own errors (no identity, Entra unreachable)
                    raise StoreError(
                        f"cannot connect to findings store {self._where}: no access token: {one_line(err)}"
                    ) from err
            try:
                conninfo = psycopg.conninfo.make_conninfo(self._url, **extra)  # the URL's own values overridden
                self._conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
            except psycopg.Error as err:
                raise StoreError(f"cannot connect to findings store {self._where}: {err}") from err
        return self._conn

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._mutex:
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    yield cur
            except psycopg.Error as err:
                raise StoreError(f"findings store {self._where}: {err}") from err

    @contextmanager
    def _begin(self, advisory_lock: bool, write: bool) -> Iterator[_PostgresTx]:
        with self._mutex:
            conn = self._connection()
            try:
                if write:
                    with conn.transaction(), conn.cursor() as cur:
                        if advisory_lock:
                            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
                        yield _PostgresTx(cur)
                else:
                    with conn.cursor() as cur:
                        # One statement where conn.transaction() plus SET TRANSACTION READ ONLY took two.
                        cur.execute("BEGIN READ ONLY")
                        try:
                            yield _PostgresTx(cur)
                        except BaseException:
                            conn.rollback()
                            raise
                        cur.execute("COMMIT")
            except psycopg.Error as err:
                raise StoreError(f"findings store {self._where}: {err}") from err

    def _read_alone(self, sql: str, params: Params = ()) -> list[Row]:
        with self._cursor() as cur:  # autocommit: the statement is its own transaction
            cur.execute(_sql(sql), tuple(params))
            return [tuple(r) for r in cur.fetchall()]

    def _run_alone(self, sql: str, params: Params = ()) -> int:
        with self._cursor() as cur:
            cur.execute(_sql(sql), tuple(params))
            return cur.rowcount

    def _lock(self, tx: Tx, scope: str, name: str) -> None:
        # A transaction-scoped advisory lock: one statement where a row lock on store_locks took an INSERT and
        # a SELECT … FOR UPDATE, and released at COMMIT or ROLLBACK the same way. The two-key form keeps these
        # apart from the migration lock's one-key space; a hash collision only serialises two unrelated writes.
        tx.run("SELECT pg_advisory_xact_lock(hashtext(?), hashtext(?))", (scope, name))

    def _lock_many(self, tx: Tx, scope: str, names: Sequence[str]) -> None:
        # One statement for a batch's locks, taken in the order given (a function scan of unnest yields the
        # array in order); the pipelined form still cost the driver a prepared execution per lock.
        tx.write(_ADVISORY_LOCKS, [(scope, name) for name in names])

    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]:
        return self._begin(advisory_lock=False, write=write)

    def _migration_tx(self) -> AbstractContextManager[Tx]:
        return self._begin(advisory_lock=True, write=True)

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
