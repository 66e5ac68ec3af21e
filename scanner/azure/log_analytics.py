"""The Log Analytics query adapter over `azure.monitor.query.LogsQueryClient` (azure-monitor-query 2.x).

Runs one KQL query over a time window and returns its rows as plain dicts: the SDK's table types never reach
callers. Errors become one-line `LogQueryError`s naming the workspace. A partial result (the service answered
with some tables and an error) keeps its rows and says what failed, so the caller can use what arrived and
rely on the next, overlapping window for the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from scanner.model.errors import AcrguardError, one_line
from scanner.model.settings import Settings
from scanner.service.log_ingest import QueryResult

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.monitor.query import LogsQueryClient, LogsTable

# The public cloud's; sovereign clouds set ACRGUARD_LOG_ENDPOINT.
DEFAULT_ENDPOINT = Settings().log_endpoint
SERVER_TIMEOUT = 120  # seconds the service may spend on the query (its default is 3 minutes, its maximum 10)


class LogQueryError(AcrguardError):
    """A query that failed as a whole: unreachable endpoint, authentication, bad query, unknown workspace."""


def default_credential() -> TokenCredential:
    """`DefaultAzureCredential` (managed identity in Azure, the developer's login locally). Imported on
    first use: azure-identity costs start-up time that the other functions should not pay."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class LogAnalytics:
    """Queries one workspace. `credential` and client options (e.g. `connection_verify`) are injectable."""

    def __init__(
        self,
        workspace_id: str,
        credential: TokenCredential | None = None,
        endpoint: str = DEFAULT_ENDPOINT,
        **client_options: Any,
    ) -> None:
        if not workspace_id.strip():
            raise LogQueryError("log analytics: the workspace id is empty")
        self.workspace_id = workspace_id.strip()
        self.endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._options = client_options
        self._client: LogsQueryClient | None = None

    def query(self, kql: str, start: datetime, end: datetime) -> QueryResult:
        """Rows of every table of the result (normally one), each as {column: value}; datetime columns
        arrive as timezone-aware datetimes."""
        from azure.core.exceptions import AzureError
        from azure.monitor.query import LogsQueryPartialResult

        where = f"log analytics workspace {self.workspace_id}"
        try:
            result = self._get_client().query_workspace(
                self.workspace_id, kql, timespan=(start, end), server_timeout=SERVER_TIMEOUT
            )
        except AzureError as err:
            raise LogQueryError(f"{where}: query failed: {_describe(err)}") from err
        except ValueError as err:  # the SDK's own argument checks (e.g. a malformed endpoint)
            raise LogQueryError(f"{where}: query failed: {err}") from err
        if isinstance(result, LogsQueryPartialResult):
            error = result.partial_error
            detail = f"{error.code}: {error.message}" if error is not None else "no error detail"
            return QueryResult(_rows(result.partial_data or []), f"{where}: partial result ({detail})")
        return QueryResult(_rows(result.tables))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _get_client(self) -> LogsQueryClient:
        if self._client is None:
            from azure.monitor.query import LogsQueryClient

            credential = self._credential if self._credential is not None else default_credential()
            self._client = LogsQueryClient(credential, endpoint=self.endpoint, **self._options)
        return self._client


def _rows(tables: list[LogsTable]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for table in tables:
        for row in table.rows:
            out.append(dict(zip(table.columns, row, strict=False)))
    return out


def _describe(err: Exception) -> str:
    # HttpResponseError carries the service's own error (code and innermost message) when it sent one.
    model = getattr(err, "model", None)
    code = getattr(model, "code", None)
    message = getattr(model, "message", None)
    status = getattr(err, "status_code", None)
    prefix = f"HTTP {status}: " if status else ""
    if code or message:
        return f"{prefix}{code or ''}{': ' if code and message else ''}{message or ''}"
    return prefix + one_line(err, 300)
