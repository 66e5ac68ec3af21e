"""The dashboard's inline SVG charts: well-formed, labelled, escaped, scaled."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from xml.etree import ElementTree

from scanner.service.dashboard_charts import severity_bars, trend_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_trend_chart_is_labelled_svg_with_a_line_per_severity() -> None:
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(30)]
    series = {"Critical": [n for n in range(30)], "Low": [3] * 30}
    root = ElementTree.fromstring(str(trend_chart(days, series)))
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Open findings per day by severity"  # type: ignore[union-attr]
    assert "Critical 0 to 29" in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]
    assert len(root.findall(f"{SVG}polyline")) == 2
    labels = [t.text for t in root.findall(f"{SVG}text")]
    assert "50" in labels and "2026-01-01" in labels and "2026-01-30" in labels  # y axis up to a round 50


def test_one_day_and_no_findings_still_draw() -> None:
    root = ElementTree.fromstring(str(trend_chart([date(2026, 1, 1)], {"High": [0]})))
    assert len(root.findall(f"{SVG}polyline")) == 1


def test_bars_escape_names() -> None:
    markup = str(severity_bars({"<b>": 2, "High": 0}))
    assert "<b>" not in markup and "&lt;b&gt;" in markup
    ElementTree.fromstring(markup)


def test_the_y_axis_has_evenly_spaced_whole_numbers() -> None:
    def ticks(peak: int) -> list[int]:
        svg = str(trend_chart([date(2026, 12, 1), date(2026, 12, 2)], {"High": [1, peak]}))
        return [int(v) for v in re.findall(r'class="axis">(\d+)</text>', svg)]

    assert ticks(5) == [0, 1, 2, 3, 4, 5]
    assert ticks(37) == [0, 10, 20, 30, 40, 50]
    for peak in (0, 3, 120, 999):
        values = ticks(peak)
        assert len({b - a for a, b in itertools.pairwise(values)}) == 1 and values[-1] >= peak
