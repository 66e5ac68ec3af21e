"""Entra authentication of the PostgreSQL store: the password is an access token asked for per connection.

Entra itself cannot be reached here. The token provider runs for real against a PostgreSQL of its own that
asks every connection for its password (SCRAM), the credential handing out that password as its "token": so
the per-connection password hook, the scope asked for and the reconnect are exercised on a real server. That
DefaultAzureCredential is what Azure would use is checked by construction only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import psycopg
import pytest
from azure.core.credentials import AccessToken
from azure.identity import DefaultAzureCredential

import scanner.store.postgres_store as postgres_store
from scanner.model.settings import Settings
from scanner.service.config import Clients
from scanner.store import StoreError, open_store
from scanner.store.postgres_store import ENTRA_SCOPE, EntraPassword, PostgresStore
from tests.store.pg_server import PgServer, running_postgres

PASSWORD = "s3cret-Entra-stand-in"
REG, REPO, MT = "myacr.azurecr.io", "team/app", "application/vnd.oci.image.manifest.v1+json"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class TokenSource:
    """A TokenCredential (azure-core's protocol) handing out `token`, recording the scopes asked for."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def pw_server() -> Iterator[PgServer]:
    with running_postgres(password=PASSWORD) as server:
        yield server


def _url(server: PgServer, name: str, sslmode: str | None = "disable") -> str:
    # The test server has no TLS: each test says so, except the one checking that TLS is the default.
    url = f"{server.fresh_url()}&application_name={quote(name)}"
    return f"{url}&sslmode={sslmode}" if sslmode else url


def _backends(server: PgServer, name: str) -> list[int]:
    with psycopg.connect(server.url, autocommit=True, password=server.password) as admin:
        rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchall()
    return [int(row[0]) for row in rows]


def _terminate(server: PgServer, name: str) -> None:
    (pid,) = _backends(server, name)
    with psycopg.connect(server.url, autocommit=True, password=server.password) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 60  # a bound against a hang, no speed requirement
    while _backends(server, name):
        assert time.monotonic() < deadline, f"backend {pid} still there after pg_terminate_backend"
        time.sleep(0.02)


def test_the_server_really_asks_for_the_password(pw_server: PgServer) -> None:
    with pytest.raises(StoreError, match="password"):
        open_store(_url(pw_server, "acrguard-no-password"))


def test_a_token_is_asked_for_every_new_connection(pw_server: PgServer) -> None:
    name = "acrguard-entra-reconnect"
    source = TokenSource(PASSWORD)
    with open_store(_url(pw_server, name), auth="entra", credential=source) as store:
        assert source.scopes == [(ENTRA_SCOPE,)]  # one connection so far, migrations included
        store.record_push(REG, REPO, D1, "1.0", MT, T0)
        assert len(source.scopes) == 1  # an open connection is not signed in again
        _terminate(pw_server, name)
        with pytest.raises(StoreError):
            store.get_image(REG, D1)
        detail = store.get_image(REG, D1)  # a new connection, with a new token
        assert detail is not None
        store.record_push(REG, REPO, D2, "2.0", MT, T0)
        assert source.scopes == [(ENTRA_SCOPE,)] * 2


def test_a_wrong_token_is_a_store_error_that_does_not_show_it(pw_server: PgServer) -> None:
    with pytest.raises(StoreError, match=r"^cannot connect to findings store postgresql://127\.0\.0\.1") as raised:
        open_store(_url(pw_server, "acrguard-wrong"), auth="entra", credential=TokenSource("not-the-token"))
    assert "not-the-token" not in str(raised.value)


def test_no_token_is_a_store_error_naming_the_store(pw_server: PgServer) -> None:
    class Unreachable:
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            raise OSError("no managed identity endpoint")

    with pytest.raises(StoreError, match="no access token: no managed identity endpoint"):
        open_store(_url(pw_server, "acrguard-no-token"), auth="entra", credential=Unreachable())


def test_tls_is_required_unless_the_url_says_otherwise(pw_server: PgServer) -> None:
    # The test server speaks no TLS, so a connection that requires it fails: the token was never sent in clear.
    with pytest.raises(StoreError, match="SSL"):
        open_store(_url(pw_server, "acrguard-tls", sslmode=None), auth="entra", credential=TokenSource(PASSWORD))


def test_urls_that_cannot_take_a_token() -> None:
    with pytest.raises(StoreError, match="the URL holds a password"):
        PostgresStore("postgresql://me:pw@db.postgres.database.azure.com/acrguard", EntraPassword(TokenSource("t")))
    with pytest.raises(StoreError, match="needs a postgresql://"):
        open_store("/tmp/store.sqlite", auth="entra")
    with pytest.raises(StoreError, match="unknown authentication"):
        open_store("/tmp/store.sqlite", auth="kerberos")


def test_the_managed_identity_is_the_default_credential() -> None:
    # Construction only: asking it for a token would reach for Azure's identity endpoints.
    assert isinstance(EntraPassword().credential, DefaultAzureCredential)


def test_the_service_signs_in_with_entra_when_the_setting_says_so(
    pw_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ACRGUARD_STORE_AUTH=entra through the function app's clients: the managed identity (here a stand-in
    handing out the server's password) signs the store in."""
    source = TokenSource(PASSWORD)
    monkeypatch.setattr(postgres_store, "identity_credential", lambda: source)
    url = _url(pw_server, "acrguard-entra-clients")
    service = Clients(Settings.from_environ({"ACRGUARD_STORE": url, "ACRGUARD_STORE_AUTH": "entra"}))
    try:
        service.store().record_push(REG, REPO, D1, "1.0", MT, T0)
        assert source.scopes == [(ENTRA_SCOPE,)]
    finally:
        service.close()
    password_only = Clients(Settings.from_environ({"ACRGUARD_STORE": url}))
    try:
        with pytest.raises(StoreError, match="password"):
            password_only.store()
    finally:
        password_only.close()
