"""Terminal table: exact plain layout at a fixed width, ordering, truncation, colour, hostile text."""

from __future__ import annotations

import dataclasses
from typing import Any

from scanner.assess.risk import risk_score
from scanner.model.types import Finding, FixStatus, Kev, Package, Severity
from scanner.report.table import TOP_ACTIONS, render_actions, render_table, shorten, top_actions


def finding(
    vuln_id: str, severity: Severity, name: str = "libssl3", fix_status: FixStatus = "fixed", **changes: Any
) -> Finding:
    pkg = Package(name, "3.0.9-1", "Debian:12", f"pkg:deb/debian/{name}", "", "", "", (), "deb", "d@1", None)
    f = Finding(
        id=vuln_id,
        aliases=(),
        package=pkg,
        installed_version="3.0.9-1",
        fixed_version="3.0.11-1~deb12u2" if fix_status == "fixed" else "",
        fix_status=fix_status,
        severity=severity,
        severity_source="debian",
        cvss=None,
        category="os",
    )
    f = dataclasses.replace(f, **changes)
    return dataclasses.replace(f, risk=risk_score(f))


FINDINGS = [
    finding("CVE-2023-0002", "Low", "zlib1g", "wont_fix"),
    finding("CVE-2023-0001", "Critical"),
    finding("GHSA-abcd-efgh-ijkl", "High", "requests", installed_version="2.28.0", fixed_version="2.31.0"),
    finding("CVE-2023-0003", "Unknown", "curl", "not_fixed"),
    finding("CVE-2023-0000", "Critical", "libc6", disabled=True, disabled_by="accept-glibc"),
    finding("CVE-2023-0004", "Medium", "tar", "not_fixed"),
]


def test_plain_table_exactly() -> None:
    assert render_table(FINDINGS, width=100).splitlines() == [
        "RISK   SEVERITY  ID                   PACKAGE   INSTALLED  FIXED             STATUS",
        "─" * 99,
        "33.00  Critical  CVE-2023-0000        libc6     3.0.9-1    3.0.11-1~deb12u2  disabled: accept-glibc",
        "33.00  Critical  CVE-2023-0001        libssl3   3.0.9-1    3.0.11-1~deb12u2  fixable",
        "25.00  High      GHSA-abcd-efgh-ijkl  requests  2.28.0     2.31.0            fixable",
        "12.00  Medium    CVE-2023-0004        tar       3.0.9-1    -                 no fix",
        "12.00  Unknown   CVE-2023-0003        curl      3.0.9-1    -                 no fix",
        "4.00   Low       CVE-2023-0002        zlib1g    3.0.9-1    -                 won't fix",
        "5 active findings (1 Critical, 1 High, 1 Medium, 1 Low, 1 Unknown), 1 disabled; 2 fixable.",
        "Top actions:",
        "1. upgrade libssl3 3.0.9-1 -> 3.0.11-1~deb12u2: risk 33.00, 1 finding (CVE-2023-0001)",
        "2. upgrade requests 2.28.0 -> 2.31.0: risk 25.00, 1 finding (GHSA-abcd-efgh-ijkl)",
    ]


def test_no_colour_when_asked_for_plain_text() -> None:
    assert "\x1b" not in render_table(FINDINGS, width=100)


def test_colour_for_terminals() -> None:
    out = render_table(FINDINGS, width=100, color=True)
    assert "\x1b[" in out
    assert "\x1b[1;31mCritical" in out  # bold red for an active Critical


def test_sorted_by_risk_then_severity_then_id() -> None:
    lines = render_table(FINDINGS, width=120, totals=False, actions=False).splitlines()[2:]
    # Medium and Unknown tie on risk (no CVSS, no fix): the more severe class first.
    assert [line.split()[2] for line in lines] == [
        "CVE-2023-0000",
        "CVE-2023-0001",
        "GHSA-abcd-efgh-ijkl",
        "CVE-2023-0004",
        "CVE-2023-0003",
        "CVE-2023-0002",
    ]


def test_a_kev_finding_tops_the_table_and_its_upgrade_the_actions() -> None:
    kev = finding("CVE-2021-44228", "High", "log4j", kev=Kev("2021-12-10", "2021-12-24", True))
    two = [
        finding("CVE-2023-0001", "Critical", "openssl", fixed_version="3.0.13"),
        finding("CVE-2023-0002", "Critical", "openssl", fixed_version="3.0.13"),
    ]
    out = render_table([*FINDINGS, *two, kev], width=160)
    rows = out.splitlines()[2:]
    assert rows[0].split()[:3] == ["88.00", "High", "CVE-2021-44228"]
    actions = out.split("Top actions:\n")[1].splitlines()
    # One KEV finding (88: High 20, ransomware 63, fix 5) outweighs two Critical ones in one upgrade (2 x 33).
    assert actions[0].startswith("1. upgrade log4j 3.0.9-1 -> 3.0.11-1~deb12u2: risk 88.00, 1 finding")
    assert actions[1] == "2. upgrade openssl 3.0.9-1 -> 3.0.13: risk 66.00, 2 findings (CVE-2023-0001, CVE-2023-0002)"
    assert len(actions) == 4  # libssl3 and requests too; disabled and unfixed findings are no action


def test_top_actions_keep_the_five_largest() -> None:
    many = [finding(f"CVE-2023-{i:04d}", "High", f"pkg{i}") for i in range(8)]
    assert len(top_actions(many)) == TOP_ACTIONS == 5
    assert render_actions([]) == ""


def test_long_ids_and_names_are_shortened_in_the_middle() -> None:
    long_id = "UBUNTU-CVE-2023-1234567890123"
    maven = "com.fasterxml.jackson.core:jackson-databind-extra-long-artifact-name"
    out = render_table([finding(long_id, "High", maven)], width=160)
    row = out.splitlines()[2]
    assert shorten(long_id, 24) in row and shorten(long_id, 24) == "UBUNTU-CVE-…234567890123"
    assert shorten(maven, 40) in row and shorten(maven, 40).endswith("long-artifact-name")
    assert shorten("CVE-2023-1", 24) == "CVE-2023-1"


def test_narrow_terminal_keeps_every_column_and_whole_ids() -> None:
    findings = [*FINDINGS, finding("CVE-2023-0005", "High", "a-rather-long-package-name-for-a-narrow-screen")]
    out = render_table(findings, width=80)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == ["RISK", "SEVERITY", "ID", "PACKAGE", "INSTALLED", "FIXED", "STATUS"]
    assert "GHSA-abcd-efgh-ijkl" in out  # ids stay whole; versions and names give way first
    assert "3.0.11-1~…" in out  # a cut version says so
    assert " a-rather-l " in out and " row-screen\n" in out  # a long name folds onto more lines, not dropped


def test_hostile_text_cannot_reach_the_terminal() -> None:
    evil = finding("CVE-2023-0001", "High", "\x1b]0;pwned\x07[bold]x[/bold]\nnext")
    out = render_table([evil], width=120)
    assert "\x1b" not in out and "\x07" not in out
    assert "?]0;pwned?[bold]x[/bold]?next" in out  # shown, not interpreted as rich markup
    coloured = render_table([evil], width=120, color=True)
    assert "\x1b]0;" not in coloured and "[bold]x[/bold]" in coloured


def test_no_findings() -> None:
    assert render_table([], width=80) == "No vulnerabilities found.\n"


def test_totals_singular_and_all_disabled() -> None:
    out = render_table([finding("CVE-1", "Low", disabled=True, disabled_by="r")], width=100)
    assert out.splitlines()[-1] == "0 active findings, 1 disabled; 0 fixable."
    out = render_table([finding("CVE-1", "Low")], width=100, actions=False)
    assert out.splitlines()[-1] == "1 active finding (1 Low); 1 fixable."
