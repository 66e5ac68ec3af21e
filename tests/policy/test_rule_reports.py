"""Rule reports: expired rules, stale rules (matching no finding) and rules hiding a KEV-listed finding, on
findings built in code and on a real assessment (Alpine's secdb, CISA's KEV slice)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from scanner.assess.assessment import assess
from scanner.model.types import Kev
from scanner.policy.image_context import ImageContext
from scanner.policy.remediation import make_environment
from scanner.policy.rule_reports import (
    Scanned,
    hides_kev_reports,
    matched_rules,
    rule_status,
    scan_reports,
)
from scanner.policy.rules import apply_rules, load_rules
from scanner.service.policy import build_policy
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.policy.kev_image import APACHE_ID, import_kev_db, sample_with_apache
from tests.policy.test_gate_policy import IMAGE, finding, write

TODAY = date(2026, 1, 15)
RULES = """\
rules:
  - name: accept-openssl
    justification: reviewed
    match: {packages: [openssl]}
  - name: shadowed
    justification: an earlier rule accepts the same findings
    match: {ids: [CVE-2023-1234]}
  - name: gone
    justification: the package was removed long ago
    match: {ids: [CVE-1999-0001]}
  - name: lapsed
    justification: was reviewed
    expires: 2026-01-14
    match: {ids: [CVE-2023-1234]}
  - name: last-day
    justification: still applies today
    expires: 2026-01-15
    match: {ids: [CVE-1999-0002]}
"""


def test_expired_stale_and_active(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, "r.yaml", RULES).parent)
    findings = apply_rules([finding(), finding(id="CVE-2", kev=None)], rules, IMAGE, TODAY)
    reports = scan_reports(rules, [Scanned(findings, IMAGE)], TODAY)
    source = str(tmp_path / "r.yaml")
    assert [(r.kind, r.rule) for r in reports] == [("expired", "lapsed"), ("stale", "gone"), ("stale", "last-day")]
    assert reports[0].message == (
        f"rule 'lapsed' ({source}) expired on 2026-01-14: it disables nothing; renew or delete it"
    )
    assert reports[0].document() == {
        "kind": "expired",
        "rule": "lapsed",
        "source": source,
        "message": reports[0].message,
        "expires": "2026-01-14",
    }
    assert reports[1].message == (
        f"rule 'gone' ({source}) is stale: it matched no finding in this scan; delete it if what it accepted is gone"
    )
    # A rule an earlier rule shadows still matched a finding: it is not stale.
    matched = matched_rules(rules, [Scanned(findings, IMAGE)])
    assert "shadowed" in matched and "gone" not in matched
    assert [rule_status(r, TODAY, matched) for r in rules] == ["active", "active", "stale", "expired", "stale"]
    assert rule_status(rules[2], TODAY, None) == "active"  # nothing known about its findings: not called stale


def test_stale_across_the_platforms_of_one_scan(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, "r.yaml", RULES.replace("CVE-1999-0001", "CVE-ARM")).parent)
    amd64 = Scanned([finding()], IMAGE)
    arm64 = Scanned([finding(id="CVE-ARM")], IMAGE)
    assert "gone" in [r.rule for r in scan_reports(rules, [amd64], TODAY)]
    assert "gone" not in [r.rule for r in scan_reports(rules, [amd64, arm64], TODAY)]


def test_rules_about_other_images_and_scans_that_prove_nothing_are_not_called_stale(tmp_path: Path) -> None:
    text = RULES.replace("match: {ids: [CVE-1999-0001]}", "match: {ids: [CVE-1999-0001], repositories: [other/*]}")
    rules = load_rules(write(tmp_path, "r.yaml", text).parent)
    kinds = [(r.kind, r.rule) for r in scan_reports(rules, [Scanned([finding()], IMAGE)], TODAY)]
    assert ("stale", "gone") not in kinds and ("stale", "last-day") in kinds  # 'gone' is about other repositories
    # The repository matches, the OS does not: still about other images.
    text = RULES.replace("match: {ids: [CVE-1999-0001]}", "match: {ids: [CVE-1999-0001], os: {id: alpine}}")
    rules = load_rules(write(tmp_path, "r.yaml", text).parent)
    assert "gone" not in [r.rule for r in scan_reports(rules, [Scanned([finding()], IMAGE)], TODAY)]
    # An Incomplete or NotAssessed image proves nothing: no rule is stale, the expired one is still reported.
    inconclusive = [Scanned([], IMAGE, conclusive=False)]
    assert [(r.kind, r.rule) for r in scan_reports(rules, inconclusive, TODAY)] == [("expired", "lapsed")]


def test_a_rule_hiding_a_kev_finding_is_a_warning_naming_rule_finding_package_and_date() -> None:
    kev = Kev("2021-12-10", "2021-12-24", True)
    hidden = finding(id="CVE-2021-44228", kev=kev, disabled=True, disabled_by="accept-log4j", pkg_name="log4j-core")
    twice = [hidden, hidden, finding(kev=kev), finding(disabled=True, disabled_by="x")]
    [report] = hides_kev_reports(twice)
    assert report.kind == "hides_kev" and report.rule == "accept-log4j"
    assert report.message == (
        "rule 'accept-log4j' hides CVE-2021-44228 in log4j-core 3.0.9-1, which is in CISA KEV (added 2021-12-10,"
        " used in ransomware): known to be exploited"
    )
    assert report.document() | {"message": ""} == {
        "kind": "hides_kev",
        "rule": "accept-log4j",
        "source": "",
        "message": "",
        "finding": "CVE-2021-44228",
        "package": "log4j-core",
        "version": "3.0.9-1",
        "kev_date_added": "2021-12-10",
    }
    hostile = finding(kev=kev, disabled=True, disabled_by="r", pkg_name="a\x1b[31m\nb")
    [line] = hides_kev_reports([hostile], where="on x")
    assert "\x1b" not in line.message and "\n" not in line.message and " on x, which" in line.message


def test_real_rule_hiding_the_apache_kev_finding(tmp_path: Path) -> None:
    rules_dir = write(
        tmp_path / "rules",
        "a.yaml",
        "rules:\n  - name: accept-apache\n    justification: mpm_prefork is not loaded\n"
        "    match: {packages: [apache2], fix_status: [fixed]}\n",
    ).parent
    rules = load_rules(rules_dir)
    policy = build_policy(rules, make_environment(None), today=TODAY)
    inv = sample_with_apache()
    with SqliteVulnDatabase.open(import_kev_db(tmp_path / "alpine.sqlite")) as db:
        result = assess(inv, db, apply_rules=policy.apply_rules)
    reports = scan_reports(rules, [Scanned(result.findings, ImageContext.from_inventory(inv))], TODAY)
    [kev] = [r for r in reports if r.kind == "hides_kev"]
    assert (kev.rule, kev.finding, kev.package, kev.version, kev.kev_date_added) == (
        "accept-apache",
        APACHE_ID,
        "apache2",
        "2.4.38-r0",
        "2021-11-03",
    )
    assert kev.message == (
        f"rule 'accept-apache' ({rules_dir / 'a.yaml'}) hides {APACHE_ID} in apache2 2.4.38-r0, which is in CISA KEV"
        " (added 2021-11-03): known to be exploited"
    )
    # The rule also hides apache2's other CVEs; only the KEV-listed one is warned about.
    assert sum(1 for f in result.findings if f.disabled_by == "accept-apache") > 1
    assert [r.kind for r in reports] == ["hides_kev"]
