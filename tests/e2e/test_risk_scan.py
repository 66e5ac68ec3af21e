"""Risk order on a real scan: the Alpine 3.10 sample with the bundled snapshot database, then the same
image's packages against Alpine's real secdb with the real KEV slice and EPSS file imported."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from scanner.assess.findings import find_vulnerabilities
from scanner.assess.risk import risk_order
from scanner.inventory.build import inventory
from scanner.model.types import SEVERITY_ORDER, Package
from scanner.report.table import render_table, top_actions
from scanner.vulndb.osv_import import import_sources
from scanner.vulndb.snapshot import default_db_path
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.e2e.conftest import FIXTURES

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "alpine-3.10-app.tar"
SECDB = FIXTURES / "osv" / "alpine-secdb"
KEV_FILE = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"
EPSS_FILE = FIXTURES / "epss" / "epss_scores-2025-08-25.csv"


@pytest.fixture(scope="module")
def snapshot() -> str:
    return str(default_db_path())


def test_scan_json_lists_findings_by_risk(acrguard: Any, snapshot: str) -> None:
    run = acrguard("scan", f"docker-archive:{SAMPLE}", "--db", snapshot, "--format", "json")
    assert run.code == 0, run.err
    findings = run.json()["findings"]
    assert findings
    assert all(0 <= f["risk"] <= 100 and round(f["risk"], 2) == f["risk"] for f in findings)
    keys = [(-f["risk"], SEVERITY_ORDER.index(f["severity"]), f["id"], f["package"]["name"]) for f in findings]
    assert keys == sorted(keys)


def test_the_table_and_its_top_actions_on_a_real_scan(acrguard: Any, snapshot: str) -> None:
    run = acrguard("scan", f"docker-archive:{SAMPLE}", "--db", snapshot, "--format", "table")
    assert run.code == 0, run.err
    # One "Top actions" block: the remediation summary's (with commands), in the order of the risk removed.
    assert run.out.count("Top actions:") == 1
    summary = run.out.split("Top actions:\n")[1]
    upgrades = [line.split()[2] for line in summary.splitlines() if re.match(r"\d+\. ", line)]
    assert upgrades == ["libcrypto1.1", "libssl1.1", "musl", "musl-utils"]
    rows = [
        line.split() for line in run.out.splitlines() if line.split()[2:3] and line.split()[2].startswith("ALPINE-")
    ]
    risks = [float(row[0]) for row in rows]
    assert risks and risks == sorted(risks, reverse=True)

    # The table's own block, as `render_table` gives it without a remediation summary.
    with SqliteVulnDatabase.open(Path(snapshot)) as db:
        [inv] = inventory(f"docker-archive:{SAMPLE}")
        findings = find_vulnerabilities(inv.packages, db)
    actions = top_actions(findings)
    assert [(a.package, a.fixed_version, len(a.findings)) for a in actions] == [
        ("libcrypto1.1", "1.1.1d-r0", 3),
        ("libssl1.1", "1.1.1d-r0", 3),
        ("musl", "1.1.22-r3", 1),
        ("musl-utils", "1.1.22-r3", 1),
    ]
    assert actions[0].risk == round(sum(f.risk for f in actions[0].findings), 2) > actions[2].risk
    block = render_table(findings, width=200).split("Top actions:\n")[1].splitlines()
    assert block[0].startswith("1. upgrade libcrypto1.1 1.1.1c-r0 -> 1.1.1d-r0: risk ")
    assert len(block) == 4


def test_a_kev_listed_finding_ranks_first(tmp_path: Path) -> None:
    db_path = tmp_path / "alpine.sqlite"
    import_sources(db_path, [str(SECDB / "v3.10"), str(KEV_FILE), str(EPSS_FILE)])
    # v3.10/main.yaml: apache2 2.4.39-r0 fixes CVE-2019-0211, which CISA added to KEV on 2021-11-03.
    apache = Package("apache2", "2.4.38-r0", "Alpine:v3.10", "pkg:apk/alpine/apache2@2.4.38-r0", "apache2",
                     "2.4.38-r0", "x86_64", ("/lib/apk/db/installed",), "apk", "test@1", None)  # fmt: skip
    with SqliteVulnDatabase.open(db_path) as db:
        [inv] = inventory(f"docker-archive:{SAMPLE}")
        findings = sorted(find_vulnerabilities([*inv.packages, apache], db), key=risk_order)
    assert findings[0].id == "ALPINE-CVE-2019-0211" and findings[0].kev is not None
    assert all(f.kev is None and f.risk < findings[0].risk for f in findings[1:])
    assert top_actions(findings)[0].package == "apache2"
