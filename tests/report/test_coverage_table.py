"""The coverage table: one row per ecosystem, OS ones first as given, and a warning line per ecosystem the
database could not assess; names from the image are shown without control characters and shortened."""

from __future__ import annotations

from scanner.model.types import Coverage
from scanner.report.table import render_coverage


def test_rows_and_warnings() -> None:
    text = render_coverage(
        (
            Coverage("Debian:12", "os", 3000, "2025-01-01T00:00:00Z"),
            Coverage("PyPI", "language", 47, "2024-06-01T12:00:00Z", selection=True),
            Coverage("npm", "language", 0),
        ),
        width=120,
    )
    lines = text.splitlines()
    assert lines[0].split() == ["ECOSYSTEM", "KIND", "ADVISORIES", "FEED", "DATE", "SELECTION", "ASSESSED"]
    assert [line.split() for line in lines[2:5]] == [
        ["Debian:12", "os", "3000", "2025-01-01T00:00:00Z", "no", "yes"],
        ["PyPI", "language", "47", "2024-06-01T12:00:00Z", "yes", "NO"],
        ["npm", "language", "0", "-", "no", "NO"],
    ]
    assert lines[5:] == [
        "warning: the database holds only a selection of PyPI advisories (47, the bundled snapshot):"
        " run `acrguard db update`",
        "warning: the database holds no npm advisories: run `acrguard db update`",
    ]


def test_nothing_to_show_is_empty() -> None:
    assert render_coverage(()) == ""


def test_a_hostile_ecosystem_name_is_cleaned_and_shortened() -> None:
    text = render_coverage((Coverage("evil\x1b[2J" + "x" * 500, "os", 0),), width=200)
    assert "\x1b" not in text
    assert max(len(line) for line in text.splitlines()) < 300
