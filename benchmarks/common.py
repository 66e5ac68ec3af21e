"""What the benchmark scripts share: units and the table of figures they end with."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

MB = 1_000_000


def median_seconds(values: Iterable[float]) -> str:
    """`1.23 s median`."""
    return f"{statistics.median(values):.2f} s median"


def spread(values: Sequence[float]) -> str:
    """`(min 1.00, max 2.00)`: the extremes of some seconds, for after their median or percentiles."""
    return f"(min {min(values):.2f}, max {max(values):.2f})"


def print_rows(rows: Sequence[tuple[str, str]]) -> None:
    """The closing table: one figure per line, names padded to the longest, between blank lines."""
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print()
