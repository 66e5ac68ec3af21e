"""The risk score: severity bands placed by CVSS, EPSS raising, KEV above its class, fix availability."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from scanner.assess.risk import by_risk, risk_score, with_risk
from scanner.model.types import SEVERITY_ORDER, Cvss, Epss, Finding, FixStatus, Kev, Package, Severity

KEV = Kev("2021-12-10", "2021-12-24", False)
RANSOMWARE = Kev("2021-12-10", "2021-12-24", True)


def finding(severity: Severity = "High", fix_status: FixStatus = "not_fixed", **changes: Any) -> Finding:
    pkg = Package(
        "openssl", "1.1.1g-r0", "Alpine:v3.10", "pkg:apk/alpine/openssl", "", "", "", (), "apk", "apk@1", None
    )
    f = Finding(
        id="CVE-2021-0001",
        aliases=(),
        package=pkg,
        installed_version="1.1.1g-r0",
        fixed_version="1.1.1k-r0" if fix_status == "fixed" else "",
        fix_status=fix_status,
        severity=severity,
        severity_source="nvd",
        cvss=None,
        category="os",
    )
    return dataclasses.replace(f, **changes)


def cvss(score: float) -> Cvss:
    return Cvss("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", score)


def test_scores_are_in_range_with_two_decimals() -> None:
    assert risk_score(finding("Critical", "fixed", cvss=cvss(10.0), kev=RANSOMWARE)) == 100.0
    assert risk_score(finding("Low", cvss=cvss(0.1))) == 0.0
    assert risk_score(finding("High", epss=Epss(0.123456, 0.9, "2024-01-01"))) == 23.7  # 20 + 3.70368


def test_a_kev_finding_ranks_above_every_non_kev_finding_of_its_class_or_below() -> None:
    fixes: tuple[FixStatus, ...] = ("fixed", "not_fixed", "wont_fix")
    for kev_class, other_class in itertools.product(SEVERITY_ORDER, SEVERITY_ORDER):
        if SEVERITY_ORDER.index(other_class) < SEVERITY_ORDER.index(kev_class):
            continue  # a more severe class competes on the sum (Unknown is the least severe)
        # The weakest KEV finding of its class against the strongest non-KEV finding of the other.
        weakest = finding(kev_class, "wont_fix", cvss=cvss(0.1), kev=KEV)
        for fix in fixes:
            strongest = finding(other_class, fix, cvss=cvss(10.0), epss=Epss(1.0, 1.0, "2024-01-01"))
            assert risk_score(weakest) > risk_score(strongest), (kev_class, other_class, fix)


def test_ransomware_use_raises_a_kev_finding() -> None:
    assert risk_score(finding(kev=RANSOMWARE)) > risk_score(finding(kev=KEV))


def test_epss_raises_the_score_monotonically() -> None:
    scores = [risk_score(finding(epss=Epss(p, p, "2024-01-01"))) for p in (0.0, 0.001, 0.1, 0.5, 0.97)]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert risk_score(finding(epss=None)) == risk_score(finding(epss=Epss(0.0, 0.0, "2024-01-01")))


def test_a_fixed_finding_ranks_above_the_same_finding_without_a_fix() -> None:
    assert risk_score(finding(fix_status="fixed")) > risk_score(finding(fix_status="not_fixed"))
    assert risk_score(finding(fix_status="not_fixed")) == risk_score(finding(fix_status="wont_fix"))


def test_cvss_places_a_finding_within_its_class_never_out_of_it() -> None:
    assert risk_score(finding("High", cvss=cvss(8.9))) > risk_score(finding("High", cvss=cvss(7.0)))
    # A distribution's Low with a CVSS of 9.8 stays under any Medium.
    assert risk_score(finding("Low", cvss=cvss(9.8))) <= risk_score(finding("Medium", cvss=cvss(4.0)))
    # Without a score (or with a broken one): the middle of the class.
    assert risk_score(finding("High")) == risk_score(finding("High", cvss=cvss(0.0))) == 20.0


def test_unknown_severity_still_gets_a_score_in_the_middle() -> None:
    unknown = risk_score(finding("Unknown"))
    assert unknown == 12.0
    assert risk_score(finding("Low")) < unknown < risk_score(finding("High"))
    assert risk_score(finding("Unknown", epss=Epss(0.5, 0.9, "2024-01-01"))) > unknown
    assert risk_score(finding("Unknown", kev=KEV)) > risk_score(finding("Medium", "fixed", epss=Epss(1, 1, "x")))


def test_ties_break_by_severity_then_id_then_package() -> None:
    a = finding("Medium", id="CVE-2]")
    b = finding("Unknown", id="CVE-1")
    c = finding("Medium", id="CVE-1", package=dataclasses.replace(a.package, name="zlib"))
    d = finding("Medium", id="CVE-1")
    ordered = by_risk(with_risk([b, a, c, d]))
    assert {f.risk for f in ordered} == {12.0}
    assert [(f.severity, f.id, f.package.name) for f in ordered] == [
        ("Medium", "CVE-1", "openssl"),
        ("Medium", "CVE-1", "zlib"),
        ("Medium", "CVE-2]", "openssl"),
        ("Unknown", "CVE-1", "openssl"),
    ]
