"""The Logs Ingestion adapter: records sent to a Log Analytics table through a data collection rule
(`azure.monitor.ingestion.LogsIngestionClient`, Entra ID authentication: the managed identity in Azure).

The client batches, gzips and retries; a batch it could not send becomes one `ExportError` naming the endpoint,
the rule and how many records were lost, so the caller can log it (the findings themselves are stored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scanner.model.errors import AcrguardError, counted, one_line

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.monitor.ingestion import LogsIngestionClient, LogsUploadError


class ExportError(AcrguardError):
    """Records that did not reach the data collection rule."""


class LogsIngestionSink:
    """Sends records to one data collection rule's stream. `credential` and client options (e.g.
    `connection_verify`) are injectable; by default `DefaultAzureCredential`."""

    def __init__(
        self, endpoint: str, rule_id: str, stream: str, credential: TokenCredential | None = None, **options: Any
    ) -> None:
        if urlsplit(endpoint).scheme != "https":
            raise ExportError(f"export endpoint {endpoint!r}: not an https URL")
        self.endpoint, self.rule_id, self.stream = endpoint, rule_id, stream
        self._credential = credential
        self._options = options
        self._client: LogsIngestionClient | None = None

    def _connect(self) -> LogsIngestionClient:
        # Imported on first use: the SDK and azure-identity cost start-up time other functions should not pay.
        from azure.monitor.ingestion import LogsIngestionClient

        if self._client is None:
            credential = self._credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._client = LogsIngestionClient(self.endpoint, credential, **self._options)
        return self._client

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        if not records:
            return
        failed: list[LogsUploadError] = []
        where = f"export to {self.endpoint} rule {self.rule_id} stream {self.stream}"
        try:
            self._connect().upload(self.rule_id, self.stream, [dict(r) for r in records], on_error=failed.append)
        except Exception as err:  # the SDK raises azure-core's errors, and others from its transport
            raise ExportError(f"{where}: {counted(len(records), 'record')} not sent: {one_line(err)}") from err
        if failed:
            lost = sum(len(f.failed_logs) for f in failed)
            raise ExportError(f"{where}: {lost} of {len(records)} records not sent: {one_line(failed[0].error)}")
