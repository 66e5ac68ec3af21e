"""A progress bar on stderr when stderr is a terminal; nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from scanner.inventory.build import ProgressHook


@contextmanager
def progress_hook(enabled: bool | None = None) -> Iterator[ProgressHook]:
    if not (sys.stderr.isatty() if enabled is None else enabled):
        yield lambda _event, _amount: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("layers"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True) as bar:
        task = bar.add_task("layers", total=None)

        def hook(event: str, amount: int) -> None:
            if event == "bytes-total":
                bar.reset(task, total=amount)
            elif event == "bytes":
                bar.advance(task, amount)

        yield hook
