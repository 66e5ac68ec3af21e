"""The Log Analytics adapter with the real `LogsQueryClient` against a local HTTPS server that answers like
the query API: the request it sends (path, token, KQL, timespan), rows, a partial result and errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scanner.azure.log_analytics import DEFAULT_ENDPOINT, LogAnalytics, LogQueryError
from scanner.model.settings import Settings
from scanner.service.resource_log import QUERY
from tests.azure.la_server import TOKEN, LogServer, StaticToken, column_names, load_table, log_server

WORKSPACE = "3f1c2a55-0d4e-4b1a-9c1e-5b7d2e8f9a10"
START = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
END = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LogServer]:
    with log_server(tmp_path) as running:
        running.table = load_table()
        yield running


def adapter(server: LogServer, credential: StaticToken | None = None) -> LogAnalytics:
    # No retries: an error case should fail on its first answer.
    return LogAnalytics(
        WORKSPACE, credential or StaticToken(), endpoint=server.url, connection_verify=str(server.ca), retry_total=0
    )


def test_rows_of_the_window_with_the_request_as_sent(server: LogServer) -> None:
    credential = StaticToken()
    source = adapter(server, credential)
    result = source.query(QUERY, START, END)
    source.close()

    assert result.partial_error is None
    # The server answers only the rows inside the timespan it received: 08:00 to 08:10 of the fixture.
    assert [r["OperationName"] for r in result.rows] == [
        "Pull",
        "Pull",
        "Pull",
        "importImage",
        "Push",
        "Untag",
        "Delete",
        "Push",
        "Pull",
    ]
    first = result.rows[0]
    assert list(first) == column_names(server.table)
    assert first["TimeGenerated"] == datetime(2026, 11, 20, 8, 0, 1, 123456, tzinfo=UTC)  # typed by the client
    assert first["LoginServer"] == "MyReg.azurecr.io"

    (request,) = server.requests
    assert request.path == f"/v1/workspaces/{WORKSPACE}/query"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.body["query"] == QUERY
    assert request.body["timespan"] == "2026-11-20T07:30:00.000Z/2026-11-20T08:30:00.000Z"
    assert "wait=120" in request.headers["Prefer"]
    # The token's audience is the endpoint, as for the public cloud's https://api.loganalytics.io/.default.
    assert credential.scopes == [(f"{server.url}/.default",)]


def test_partial_result_keeps_rows_and_names_the_workspace(server: LogServer) -> None:
    server.error = {
        "code": "PartialError",
        "message": "There were some errors when processing your query.",
        "details": [{"code": "EngineError", "message": "Query exceeded the result size limit"}],
        "innererror": {"code": "E_QUERY_RESULT_SET_TOO_LARGE", "message": "Result set exceeded 64 MB"},
    }
    result = adapter(server).query(QUERY, START, END)
    assert len(result.rows) == 9
    assert result.partial_error == (
        f"log analytics workspace {WORKSPACE}: partial result (PartialError: Result set exceeded 64 MB)"
    )


def test_query_error_is_one_line_naming_the_workspace(server: LogServer) -> None:
    server.status = 400
    server.error = {
        "code": "BadArgumentError",
        "message": "The request had some invalid properties",
        "innererror": {
            "code": "SemanticError",
            "message": "A semantic error occurred.",
            "innererror": {"code": "SEM0100", "message": "'ContainerRegistryRepositoryEvents' could not be\nresolved"},
        },
    }
    with pytest.raises(LogQueryError) as caught:
        adapter(server).query(QUERY, START, END)
    text = str(caught.value)
    assert text.startswith(f"log analytics workspace {WORKSPACE}: query failed: HTTP 400: BadArgumentError: ")
    assert "'ContainerRegistryRepositoryEvents' could not be resolved" in text
    assert "\n" not in text


def test_rejected_token_is_one_line(server: LogServer) -> None:
    with pytest.raises(LogQueryError) as caught:
        adapter(server, StaticToken("wrong")).query(QUERY, START, END)
    assert str(caught.value).startswith(f"log analytics workspace {WORKSPACE}: query failed: HTTP 401:")
    assert "AuthorizationRequiredError" in str(caught.value)


def test_untrusted_certificate_and_unreachable_endpoint_fail_in_one_line(server: LogServer) -> None:
    untrusted = LogAnalytics(WORKSPACE, StaticToken(), endpoint=server.url, retry_total=0)
    with pytest.raises(LogQueryError) as caught:
        untrusted.query(QUERY, START, END)
    assert str(caught.value).startswith(f"log analytics workspace {WORKSPACE}: query failed:")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value) and "\n" not in str(caught.value)
    assert server.requests == []  # nothing reached the server, and no token went out

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    unreachable = LogAnalytics(
        WORKSPACE,
        StaticToken(),
        endpoint=f"https://127.0.0.1:{closed}",
        connection_verify=str(server.ca),
        retry_total=0,
    )
    with pytest.raises(LogQueryError) as caught:
        unreachable.query(QUERY, START, END - timedelta(minutes=1))
    assert str(caught.value).startswith(f"log analytics workspace {WORKSPACE}: query failed:")
    assert "\n" not in str(caught.value)


def test_endpoint_and_workspace_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACRGUARD_LOG_ENDPOINT", raising=False)
    assert Settings.from_environ().log_endpoint == DEFAULT_ENDPOINT == "https://api.loganalytics.io"
    assert LogAnalytics("ws").endpoint == DEFAULT_ENDPOINT
    monkeypatch.setenv("ACRGUARD_LOG_ENDPOINT", "https://api.loganalytics.azure.cn/")
    endpoint = Settings.from_environ().log_endpoint
    assert LogAnalytics(" ws ", endpoint=endpoint).endpoint == "https://api.loganalytics.azure.cn"
    assert LogAnalytics("ws").workspace_id == "ws"
    with pytest.raises(LogQueryError, match="workspace id is empty"):
        LogAnalytics("  ")
