"""Terminal tables (rich, rendered to a string): the findings (highest risk first, then the top actions: the
upgrades that remove the most risk), and the database's coverage of the image."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from scanner.assess.image_health import assessed, not_assessed
from scanner.assess.risk import by_risk
from scanner.model.types import SEVERITY_ORDER, Coverage, Finding, Severity

# Widest an id or package cell may be before it is shortened in the middle: ids differ at both ends
# (UBUNTU-CVE-…-1234, GHSA-xxxx-…), package paths at the end (github.com/org/…/module).
MAX_ID = 24
MAX_PACKAGE = 40
MAX_VERSION = 28

_STYLES: dict[Severity, str] = {
    "Critical": "bold red",
    "High": "red",
    "Medium": "yellow",
    "Low": "cyan",
    "Unknown": "dim",
}
_STATUS = {"fixed": "fixable", "not_fixed": "no fix", "wont_fix": "won't fix"}
# Everything a terminal might act on: C0/C1 controls (ESC sequences), DEL. Package names are hostile.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


_COVERAGE_HEADERS = ("ECOSYSTEM", "KIND", "ADVISORIES", "FEED DATE", "SELECTION", "ASSESSED")


def render_coverage(coverage: Sequence[Coverage], width: int | None = None) -> str:
    """What the database held for each ecosystem of the image, one row each, then a `warning:` line per
    ecosystem it could not assess (plain text: it goes with the findings table to files and CI logs)."""
    if not coverage:
        return ""
    out = io.StringIO()
    console = Console(
        file=out,
        width=width or shutil.get_terminal_size((120, 24)).columns,
        no_color=True,
        color_system=None,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False, header_style="")
    for header in _COVERAGE_HEADERS:
        table.add_column(header, overflow="fold")
    for c in coverage:
        row = (
            shorten(clean(c.ecosystem), MAX_PACKAGE),
            c.kind,
            str(c.advisories),
            clean(c.feed_date) or "-",
            "yes" if c.selection else "no",
        )
        table.add_row(*(Text(cell) for cell in row), Text("yes" if assessed(c) else "NO"))
    console.print(table)
    text = "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())
    return text + "".join(f"warning: {clean(gap)}\n" for gap in not_assessed(coverage))


def render_table(
    findings: Iterable[Finding],
    width: int | None = None,
    color: bool = False,
    totals: bool = True,
    actions: bool = True,
) -> str:
    """Findings by risk (highest first; then severity, id, package); disabled ones marked `disabled (rule)`.
    `totals` adds the count line, `actions` the "Top actions" block (`top_actions`).

    `color=False` gives plain text (for pipes and files); `width` defaults to the terminal's.
    """
    rows = by_risk(list(findings))
    if width is None:
        width = shutil.get_terminal_size((120, 24)).columns
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    if not rows:
        console.print(Text("No vulnerabilities found."))
        return out.getvalue()
    cells = [_cells(f) for f in rows]
    table = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        show_edge=False,
        header_style="bold" if color else "",
    )
    natural = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(_HEADERS)]
    widths = _fit(natural, width, max(len(word) for c in cells for word in c[_STATUS_COLUMN].split()))
    for header, column_width in zip(_HEADERS, widths, strict=True):
        # Ids and versions are cut with an ellipsis (a wrapped id reads as two ids); names and statuses fold.
        folds = header in ("PACKAGE", "STATUS")
        table.add_column(header, width=column_width, no_wrap=not folds, overflow="fold" if folds else "ellipsis")
    for f, row in zip(rows, cells, strict=True):
        severity_style = _STYLES[f.severity] if color and not f.disabled else ""
        texts = [Text(row[0]), Text(row[1], style=severity_style), *(Text(c) for c in row[2:])]
        table.add_row(*texts, style="dim" if color and f.disabled else "")
    console.print(table)
    if totals:
        console.print(Text(_totals(rows)))
    if actions and (lines := render_actions(top_actions(rows))):
        console.print(Text(lines.rstrip("\n")))
    text = out.getvalue()
    # Plain output goes to files and CI logs: no padding spaces at line ends.
    return text if color else "".join(line.rstrip() + "\n" for line in text.splitlines())


_HEADERS = ("RISK", "SEVERITY", "ID", "PACKAGE", "INSTALLED", "FIXED", "STATUS")
_STATUS_COLUMN = 6
_GAP = 2  # between columns: right padding and the box's blank divider
# (column, floor) in the order columns give way on a narrow terminal: the package name (which folds) first,
# then the status; versions and the id (which are cut) last. 13 fits CVE-2023-1234.
# A status floor of 0 means "its longest word": "disabled: rule-name" wraps at the space without cutting.
_SHRINK = ((3, 24), (6, 0), (3, 12), (6, 9), (3, 10), (5, 10), (4, 10), (2, 13), (5, 6), (4, 6))


def _fit(natural: list[int], width: int, status_words: int) -> list[int]:
    """Column widths within `width`: natural widths, shrinking package, status, versions, then id."""
    widths = list(natural)
    excess = sum(widths) + _GAP * (len(widths) - 1) - width
    for column, stage_floor in _SHRINK:
        floor = stage_floor or max(9, status_words)
        if excess <= 0:
            break
        cut = min(excess, max(0, widths[column] - floor))
        widths[column] -= cut
        excess -= cut
    return widths


def _cells(f: Finding) -> tuple[str, str, str, str, str, str, str]:
    status = f"disabled: {clean(f.disabled_by)}" if f.disabled else _STATUS[f.fix_status]
    status += _exploitation(f)
    return (
        f"{f.risk:.2f}",
        f.severity,
        shorten(clean(f.id), MAX_ID),
        shorten(_package_cell(f), MAX_PACKAGE),
        shorten(clean(f.installed_version), MAX_VERSION),
        shorten(clean(f.fixed_version), MAX_VERSION) or "-",
        status,
    )


def _exploitation(f: Finding) -> str:
    """` KEV` (in CISA's catalog; `KEV+ransomware` when used in ransomware) and ` EPSS 12.3%`, for the STATUS
    cell: what says a finding is being exploited, next to whether it can be fixed."""
    marks = ""
    if f.kev is not None:
        marks += " KEV+ransomware" if f.kev.ransomware else " KEV"
    if f.epss is not None:
        marks += f" EPSS {f.epss.score * 100:.1f}%"
    return marks


def _package_cell(f: Finding) -> str:
    """The package name, and how it is known when that is not the package manager's record of an installed
    package (`requests [lockfile]`): a finding on a lockfile entry may not be in the image at all; `[base]` when
    the package came from the base image's layers (a rebuild on a newer base, not the image's own build, fixes
    it)."""
    marks = [
        m for m in (f.package.evidence if f.package.evidence != "installed" else "", f.origin == "base" and "base") if m
    ]
    name = clean(f.package.name)
    return f"{name} [{', '.join(marks)}]" if marks else name


def _totals(rows: list[Finding]) -> str:
    active = [f for f in rows if not f.disabled]
    parts = [f"{n} {s}" for s in SEVERITY_ORDER if (n := sum(1 for f in active if f.severity == s))]
    text = f"{len(active)} active finding{'' if len(active) == 1 else 's'}"
    if parts:
        text += " (" + ", ".join(parts) + ")"
    disabled = len(rows) - len(active)
    if disabled:
        text += f", {disabled} disabled"
    fixable = sum(1 for f in active if f.patchable)
    text += f"; {fixable} fixable"
    base = sum(1 for f in active if f.origin == "base")
    return text + (f"; {base} from the base image." if base else ".")


TOP_ACTIONS = 5


@dataclass(frozen=True)
class Action:
    """One upgrade: a package to its fixed version, and the active findings (and their total risk) it removes."""

    package: str
    installed_version: str
    fixed_version: str
    findings: tuple[Finding, ...]
    risk: float


def top_actions(findings: Iterable[Finding], limit: int = TOP_ACTIONS) -> list[Action]:
    """The upgrades that remove the most risk: active fixed findings grouped by package (name, ecosystem and
    installed version) and fixed version, ordered by the sum of their risks (then the package's name and the
    version, for a stable order), the first `limit`."""
    groups: dict[tuple[str, str, str, str], list[Finding]] = {}
    for f in findings:
        if f.disabled or f.fix_status != "fixed" or not f.fixed_version:
            continue
        key = (f.package.name, f.package.ecosystem, f.installed_version, f.fixed_version)
        groups.setdefault(key, []).append(f)
    actions = [
        Action(name, installed, fixed, tuple(by_risk(group)), round(sum(f.risk for f in group), 2))
        for (name, _, installed, fixed), group in groups.items()
    ]
    actions.sort(key=lambda a: (-a.risk, a.package, a.installed_version, a.fixed_version))
    return actions[:limit]


def render_actions(actions: Sequence[Action]) -> str:
    """`Top actions:` then one line per upgrade: `1. upgrade openssl 1.1.1g-r0 -> 1.1.1k-r0: risk 143.20, 3
    findings (CVE-…, CVE-…, +1)`; "" without any."""
    if not actions:
        return ""
    lines = ["Top actions:"]
    for i, a in enumerate(actions, 1):
        ids = [shorten(clean(f.id), MAX_ID) for f in a.findings[:2]]
        if len(a.findings) > 2:
            ids.append(f"+{len(a.findings) - 2}")
        count = f"{len(a.findings)} finding{'' if len(a.findings) == 1 else 's'}"
        lines.append(
            f"{i}. upgrade {shorten(clean(a.package), MAX_PACKAGE)} {shorten(clean(a.installed_version), MAX_VERSION)}"
            f" -> {shorten(clean(a.fixed_version), MAX_VERSION)}: risk {a.risk:.2f}, {count} ({', '.join(ids)})"
        )
    return "\n".join(lines) + "\n"


def clean(text: str) -> str:
    """Control characters shown as `?`: a package name must not move the cursor or recolour the screen."""
    return _CONTROL.sub("?", text)


def shorten(text: str, limit: int) -> str:
    """Middle ellipsis: `UBUNTU-CVE-2023-12345678` → `UBUNTU-CVE-…-12345678` keeps both distinctive ends."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    tail = limit - 1 - head
    return text[:head] + "…" + text[len(text) - tail :]
