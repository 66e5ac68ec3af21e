"""The dashboard's charts as inline SVG, drawn on the server: no script, no library, nothing fetched.

Each chart is an `<svg role="img">` with a title and a description saying what it shows in words; the
pages put the same figures in a table beside it for screen readers and for copying. Colours are the
severity palette of `dashboard.css`, each at least 3:1 against the white background (WCAG 1.4.11).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date

from markupsafe import Markup, escape

SEVERITY_COLOURS = {
    "Critical": "#8b1a1a",
    "High": "#b3470b",
    "Medium": "#8a6100",
    "Low": "#1f5fa8",
    "Unknown": "#555f6d",
}
_WIDTH, _HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 110, 16, 36


def _nice_step(top: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50… that divides 0..top into at most five steps."""
    magnitude = 1
    while True:
        for step in (magnitude, 2 * magnitude, 5 * magnitude):
            if math.ceil(top / step) <= 5:
                return step
        magnitude *= 10


def trend_chart(dates: Sequence[date], series: Mapping[str, Sequence[int]], chart_id: str = "trend") -> Markup:
    """Open findings per day as one line per severity, with the y axis from 0 to a round maximum."""
    peak = max((max(values, default=0) for values in series.values()), default=0)
    top = _round_up(peak)
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    steps = max(len(dates) - 1, 1)

    def x(n: int) -> float:
        return _LEFT + plot_w * n / steps

    def y(value: int) -> float:
        return _TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img"'
        f' aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">Open findings per day by severity</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(_describe(dates, series))}</desc>',
    ]
    step = _nice_step(top)  # whole numbers, evenly spaced: top 5 is 0-5 by 1, 50 is 0-50 by 10
    for value in sorted({*range(0, top + 1, step), top}):
        parts.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>'
            f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" class="axis">{value}</text>'
        )
    for n in sorted({0, len(dates) // 2, len(dates) - 1}):
        if 0 <= n < len(dates):
            anchor = "start" if n == 0 else "end" if n == len(dates) - 1 else "middle"
            parts.append(
                f'<text x="{x(n):.1f}" y="{_HEIGHT - 12}" text-anchor="{anchor}" class="axis">'
                f"{dates[n].isoformat()}</text>"
            )
    legend_y = _TOP + 6
    for severity, values in series.items():
        colour = SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS["Unknown"])
        points = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in enumerate(values))
        if len(values) == 1:
            points += f" {x(1):.1f},{y(values[0]):.1f}"
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        last = values[-1] if values else 0
        parts.append(
            f'<rect x="{_WIDTH - _RIGHT + 12}" y="{legend_y - 9}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{_WIDTH - _RIGHT + 30}" y="{legend_y + 1}" class="legend">{escape(severity)} {last}</text>'
        )
        legend_y += 20
    parts.append("</svg>")
    return Markup("".join(parts))


def severity_bars(counts: Mapping[str, int], chart_id: str = "severity-bars") -> Markup:
    """Active findings by severity as horizontal bars, each labelled with its count."""
    width, row = 420, 26
    height = row * len(counts) + 8
    label_w, bar_w = 80, 260
    peak = max(counts.values(), default=0) or 1
    summary = ", ".join(f"{name} {value}" for name, value in counts.items())
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart bars" viewBox="0 0 {width} {height}" role="img"'
        f' aria-labelledby="{escape(chart_id)}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">Active findings by severity: {escape(summary)}</title>',
    ]
    for n, (name, value) in enumerate(counts.items()):
        top = 4 + n * row
        colour = SEVERITY_COLOURS.get(name, SEVERITY_COLOURS["Unknown"])
        length = bar_w * value / peak
        parts.append(
            f'<text x="0" y="{top + 16}" class="axis">{escape(name)}</text>'
            f'<rect x="{label_w}" y="{top + 3}" width="{length:.1f}" height="16" fill="{colour}"/>'
            f'<text x="{label_w + length + 6:.1f}" y="{top + 16}" class="axis">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _round_up(value: int) -> int:
    """The smallest of 1, 2 or 5 times a power of ten (at least 4) not below `value`: the y axis's top."""
    top = 4
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= max(value, top):
                return step * scale
        scale *= 10


def _describe(dates: Sequence[date], series: Mapping[str, Sequence[int]]) -> str:
    if not dates:
        return "No days to show."
    ends = ", ".join(f"{name} {values[0]} to {values[-1]}" for name, values in series.items() if values)
    return f"From {dates[0].isoformat()} to {dates[-1].isoformat()}: {ends}."
