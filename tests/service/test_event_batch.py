"""Events held until a batch of images is re-assessed, then published (`scanner.service.event_batch`), through a
publisher that takes one event at a time (the `Publisher` protocol, as gate actions use it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from scanner.service.event_batch import EventBatch


class OneAtATime:
    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.got: list[Mapping[str, Any]] = []

    def publish(self, event: Mapping[str, Any]) -> None:
        if event["subject"] == self.refuse:
            raise RuntimeError("receiver said no\nsecond line")
        self.got.append(event)


def test_events_wait_for_the_flush_and_a_refused_one_is_logged_with_its_image(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = OneAtATime(refuse="team/b@sha256:b")
    batch = EventBatch(inner)
    for name in "abc":
        batch.publish({"subject": f"team/{name}@sha256:{name}"})
    assert inner.got == []
    assert batch.flush() == 1
    assert [e["subject"] for e in inner.got] == ["team/a@sha256:a", "team/c@sha256:c"]
    [message] = [r.getMessage() for r in caplog.records]
    assert message == "health-changed event for team/b@sha256:b not published: receiver said no second line"
    assert batch.flush() == 0 and len(inner.got) == 2  # nothing held twice
