"""`acrguard serve` wakes its queue workers when a request it handled may have queued a scan, instead of
leaving the message to their next poll (which stays, for messages other processes queue)."""

from __future__ import annotations

import threading
from typing import Any

from scanner.localhost.serve import Dispatcher, FunctionIndex, WorkSignal, run_worker

HOUR = 3600.0  # an idle poll no test waits for: only a wake-up (or the stop) ends a wait


def test_a_wake_up_runs_the_worker_again_without_waiting_for_its_poll() -> None:
    stop = threading.Event()
    wake = WorkSignal()
    calls: list[int] = []
    second = threading.Event()

    def drain_once() -> int:
        calls.append(1)
        if len(calls) == 2:
            second.set()
        return 0  # the queue is empty: the worker waits

    worker = threading.Thread(target=run_worker, args=(drain_once, stop, HOUR, wake), daemon=True)
    worker.start()
    wake.notify()  # before or during the first drain: the event stays set, so the next wait returns at once
    assert second.wait(60), "the worker did not drain again after the wake-up"
    stop.set()
    wake.notify()
    worker.join(60)
    assert not worker.is_alive()
    assert len(calls) in (2, 3)  # the stop's wake-up may or may not come before the worker's check of stop


def test_successful_writes_notify_reads_and_failures_do_not() -> None:
    woken: list[int] = []
    seen: list[Any] = []

    def failing(event: Any) -> None:
        raise RuntimeError("store down")

    index = FunctionIndex(event_grid={"acr_events": seen.append, "broken": failing})
    dispatcher = Dispatcher(index, on_write=lambda: woken.append(1), function_key="k")
    notification = {"aeg-event-type": "Notification", "Content-Type": "application/json", "x-functions-key": "k"}
    target = "/runtime/webhooks/eventgrid?functionName="
    assert dispatcher.dispatch("POST", target + "acr_events", notification, b"[{}]", "h").status == 200
    assert (len(seen), len(woken)) == (1, 1)
    assert dispatcher.dispatch("OPTIONS", target + "acr_events&code=k", {}, b"", "h").status == 200
    assert dispatcher.dispatch("POST", target + "broken", notification, b"[{}]", "h").status == 500
    assert dispatcher.dispatch("GET", "/api/nothing-here", {}, b"", "h").status == 404
    assert len(woken) == 1
