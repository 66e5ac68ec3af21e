"""`acrguard scan --rules DIR` reports its rules: expired ones, stale ones (matching no finding of the scan) and
ones hiding a finding in CISA's KEV catalog, one warning line each on stderr and in the JSON's `rule_reports`;
none of them changes the exit code."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.snapshot import default_db_path
from tests.policy.kev_image import APACHE_ID, SAMPLE, import_kev_db, rootfs_with_apache

WARNING = "acrguard: warning: "
RULES = """\
rules:
  - name: accept-musl
    justification: reviewed in SEC-1
    match: {packages: [musl]}
  - name: removed-long-ago
    justification: the package was removed
    match: {ids: [CVE-1999-0001]}
  - name: lapsed
    justification: was reviewed
    expires: 2001-01-01
    match: {packages: [libssl1.1]}
"""


def rules_dir(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "a.yaml").write_text(textwrap.dedent(text))
    return directory


def warnings(err: str) -> list[str]:
    return [line.removeprefix(WARNING) for line in err.splitlines() if line.startswith(WARNING)]


@pytest.fixture(scope="module")
def snapshot() -> str:
    return str(default_db_path())


def test_a_stale_and_an_expired_rule_are_warned_about(acrguard: Any, snapshot: str, tmp_path: Path) -> None:
    rules = rules_dir(tmp_path, RULES)
    source = rules / "a.yaml"
    run = acrguard("scan", f"docker-archive:{SAMPLE}", "--db", snapshot, "--rules", str(rules))
    assert run.code == 0, run.err
    assert warnings(run.err) == [
        f"rule 'lapsed' ({source}) expired on 2001-01-01: it disables nothing; renew or delete it",
        f"rule 'removed-long-ago' ({source}) is stale: it matched no finding in this scan; delete it if what it"
        " accepted is gone",
    ]

    run = acrguard("scan", f"docker-archive:{SAMPLE}", "--db", snapshot, "--rules", str(rules), "--format", "json")
    doc = run.json()
    assert [(r["kind"], r["rule"]) for r in doc["rule_reports"]] == [
        ("expired", "lapsed"),
        ("stale", "removed-long-ago"),
    ]
    assert doc["rule_reports"][1]["source"] == str(source)
    assert any(f["disabled_by"] == "accept-musl" for f in doc["findings"])  # that rule matched: not reported


def test_a_gate_failure_still_comes_with_the_warnings(acrguard: Any, snapshot: str, tmp_path: Path) -> None:
    rules = rules_dir(tmp_path, RULES)
    run = acrguard("scan", f"docker-archive:{SAMPLE}", "--db", snapshot, "--rules", str(rules), "--fail-on", "unknown")
    assert run.code == 1 and len(warnings(run.err)) == 2


def test_no_rules_no_reports(acrguard: Any, snapshot: str, tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    run = acrguard("scan", f"docker-archive:{SAMPLE}", "--db", snapshot, "--rules", str(empty), "--format", "json")
    assert run.json()["rule_reports"] == [] and warnings(run.err) == []


def test_a_rule_hiding_a_kev_listed_finding_warns(acrguard: Any, tmp_path: Path) -> None:
    # The sample's own CVEs are not in KEV: its Alpine 3.10 root file system with apache2 2.4.38-r0 added is
    # (CVE-2019-0211, fixed in 2.4.39-r0 by Alpine's v3.10 secdb, in the KEV slice since 2021-11-03).
    db = import_kev_db(tmp_path / "alpine.sqlite")
    root = rootfs_with_apache(tmp_path / "root")
    rules = rules_dir(
        tmp_path,
        """\
        rules:
          - name: accept-apache-cve
            justification: mpm_prefork is not loaded
            match: {ids: [CVE-2019-0211]}
        """,
    )
    args = ("scan", f"dir:{root}", "--db", str(db), "--rules", str(rules))
    run = acrguard(*args)
    assert run.code == 0, run.err  # a warning, not an error
    assert warnings(run.err) == [
        f"rule 'accept-apache-cve' ({rules / 'a.yaml'}) hides {APACHE_ID} in apache2 2.4.38-r0, which is in CISA KEV"
        " (added 2021-11-03): known to be exploited"
    ]
    doc = acrguard(*args, "--format", "json").json()
    [report] = doc["rule_reports"]
    assert {k: report[k] for k in ("kind", "rule", "finding", "package", "version", "kev_date_added")} == {
        "kind": "hides_kev",
        "rule": "accept-apache-cve",
        "finding": APACHE_ID,
        "package": "apache2",
        "version": "2.4.38-r0",
        "kev_date_added": "2021-11-03",
    }
    apache = next(f for f in doc["findings"] if f["id"] == APACHE_ID)
    assert apache["disabled"] and apache["kev"]["date_added"] == "2021-11-03"
