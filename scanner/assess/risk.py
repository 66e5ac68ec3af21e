"""One risk score per finding (0-100, two decimals), and the order every output lists findings in.

The score adds three parts, so that it still orders findings that carry no exploitation data:

- severity, 0-32: the finding's class gives a band of 8 (Low 0-8, Medium 8-16, High 16-24, Critical 24-32;
  Unknown shares Medium's band, in its middle, as grype puts it mid-list, so that a finding nobody rated is
  not lost at the bottom); its CVSS base score places it within the band (the class's CVSS range, e.g.
  7.0-8.9 for High, mapped onto the band; without a valid CVSS score, the middle of the band). The class,
  which may come from the distribution, picks the band; the CVSS score never moves a finding out of it.
- threat, 0-30 or 60-63: FIRST's EPSS probability x 30; a finding in CISA's KEV catalog gets 60 instead
  (63 when used in ransomware campaigns), because exploitation seen in the wild outweighs any prediction.
- fix, 0 or 5: 5 when a fixed version exists: the same exposure ranks higher when it can be removed today.

The KEV threat (60) exceeds the largest non-KEV threat (30) by more than two severity bands plus the fix part
(16 + 5), so a KEV finding ranks above every non-KEV finding of its severity class or a lower one (Unknown,
last in SEVERITY_ORDER, is scored one band above Low: hence two bands), whatever their CVSS, EPSS or fix;
against a more severe class it competes on the sum.

Grype's `risk` (anchore/grype, grype/vulnerability/metadata.go, `riskScore`, at commit
4562c55cebba5fe50a0c5afc7cec50a3b2392a87) multiplies instead: threat (1 for KEV, else the EPSS score, else 0)
x severity (the mean of the class's midpoint and the mean CVSS base score, over 10) x 1.05 for KEV (1.1 for
ransomware), capped at 1 and scaled to 100. A product is 0 for every finding without EPSS data, so grype's
score cannot order those (most findings of distribution advisories without a CVE, every Unknown without
EPSS); and within a class a non-KEV finding with a high EPSS and a higher CVSS can rank above a KEV one
(High, CVSS 8.9, EPSS 0.97: 79.5; High, CVSS 7.0, in KEV: 76.1).
The sum here keeps severity as the order of last resort, makes KEV dominate within and below its class, and
counts fix availability, which grype's score leaves out.
"""

from __future__ import annotations

from dataclasses import replace

from scanner.model.types import SEVERITY_ORDER, Finding, Severity

BAND = 8.0  # points per severity class
EPSS_WEIGHT = 30.0
KEV_THREAT = 60.0
RANSOMWARE_THREAT = 63.0
FIX_POINTS = 5.0

# The band each class starts at, and the CVSS base scores that class spans (CVSS v3's qualitative scale).
_BANDS: dict[Severity, float] = {"Low": 0.0, "Medium": 1.0, "Unknown": 1.0, "High": 2.0, "Critical": 3.0}
_CVSS_RANGE: dict[Severity, tuple[float, float]] = {
    "Low": (0.1, 3.9),
    "Medium": (4.0, 6.9),
    "High": (7.0, 8.9),
    "Critical": (9.0, 10.0),
    "Unknown": (0.0, 10.0),
}


def risk_score(finding: Finding) -> float:
    """The finding's risk, 0-100, rounded to two decimals (see the module's docstring)."""
    return round(min(100.0, _severity(finding) + _threat(finding) + _fix(finding)), 2)


def with_risk(findings: list[Finding]) -> list[Finding]:
    """Each finding with its `risk` set."""
    return [replace(f, risk=risk_score(f)) for f in findings]


def risk_order(finding: Finding) -> tuple[float, int, str, str, str]:
    """The sort key of every finding list: highest risk first, then most severe, then id and package."""
    return (
        -finding.risk,
        SEVERITY_ORDER.index(finding.severity),
        finding.id,
        finding.package.name,
        finding.package.version,
    )


def by_risk(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=risk_order)


def _severity(finding: Finding) -> float:
    band = _BANDS.get(finding.severity, 1.0)
    low, high = _CVSS_RANGE.get(finding.severity, (0.0, 10.0))
    if finding.cvss is None or not 0.0 < finding.cvss.score <= 10.0:
        within = 0.5  # no (or no valid) base score: the middle of the class
    else:
        within = min(1.0, max(0.0, (finding.cvss.score - low) / (high - low)))
    return BAND * (band + within)


def _threat(finding: Finding) -> float:
    if finding.kev is not None:
        return RANSOMWARE_THREAT if finding.kev.ransomware else KEV_THREAT
    if finding.epss is None:
        return 0.0
    return EPSS_WEIGHT * min(1.0, max(0.0, finding.epss.score))


def _fix(finding: Finding) -> float:
    return FIX_POINTS if finding.fix_status == "fixed" else 0.0
