"""A progress bar on stderr when stderr is a terminal; nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from scanner.inventory.build import ProgressHook


@contextmanager
def progress_hook(enabled: bool | None = None) -> Iterator[ProgressHook]:
    if not (sys.stderr.isatty() if enabled is None else enabled):
        yield lambda _event, _amount: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("layers"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    # On stderr: stdout carries the SBOM or the findings, maybe into a pipe.
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("layers", total=None)

        def hook(event: str, amount: int) -> None:
            if event == "bytes-total":
                bar.reset(task, total=amount)
            elif event == "bytes":
                bar.advance(task, amount)

        yield hook


class FeedProgress:
    """What `db update` and `db import` are doing, on a terminal: the source being imported, and a bar for each
    download (bytes, speed). Silent when stderr is not a terminal."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar
        self._status = bar.add_task("", total=None, visible=False) if bar is not None else None
        self._downloads: dict[str, Any] = {}

    def status(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._status, description=text, visible=True)
            self._bar.refresh()  # drawn now: a source imported within the refresh interval would never show

    def download(self, url: str, done: int, total: int | None) -> None:
        if self._bar is None:
            return
        task = self._downloads.get(url)
        if task is None:
            name = url.rsplit("/", 1)[-1][:40] or url[:40]
            task = self._downloads[url] = self._bar.add_task(f"download {name}", total=total)
        self._bar.update(task, completed=done, total=total)


@contextmanager
def feed_progress(enabled: bool | None = None) -> Iterator[FeedProgress]:
    if not (sys.stderr.isatty() if enabled is None else enabled):
        yield FeedProgress(None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from scanner.vulndb.download import DOWNLOAD_PROGRESS

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        progress = FeedProgress(bar)
        token = DOWNLOAD_PROGRESS.set(progress.download)
        try:
            yield progress
        finally:
            DOWNLOAD_PROGRESS.reset(token)
