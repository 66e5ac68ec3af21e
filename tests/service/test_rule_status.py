"""Rule status in the service: a scan through the pipeline logs a warning for a rule hiding a KEV-listed finding,
and the rule listing (over a real SQLite store) tells active, expired and stale rules from the stored findings and
repeats the KEV warning. Real data: Alpine's v3.10 secdb and CISA's KEV slice, the Alpine sample with apache2
2.4.38-r0 (CVE-2019-0211, in KEV since 2021-11-03)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from scanner.policy.remediation import make_environment
from scanner.queue import ScanRequest
from scanner.service import rule_admin
from scanner.service.pipeline import process_scan
from scanner.service.policy import build_policy, file_rules
from scanner.store import FindingsStore
from scanner.vulndb.sqlite_db import SqliteVulnDatabase
from tests.policy.kev_image import APACHE_ID, import_kev_db, sample_with_apache

REG, REPO, DIGEST = "contoso.azurecr.io", "app/web", "sha256:" + "d" * 64
RULES = """\
rules:
  - name: accept-apache
    justification: mpm_prefork is not loaded
    match: {ids: [CVE-2019-0211]}
  - name: removed-long-ago
    justification: the package was removed
    match: {ids: [CVE-1999-0001]}
  - name: lapsed
    justification: was reviewed
    expires: 2001-01-01
    match: {packages: [musl]}
  - name: only-on-debian
    justification: an OS criterion the store cannot judge
    match: {packages: [musl], os: {id: debian}}
"""


def test_pipeline_warns_and_the_listing_gives_each_rule_its_status(
    tmp_path: Path, store: FindingsStore, caplog: pytest.LogCaptureFixture
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "a.yaml").write_text(RULES)
    policy = build_policy(file_rules(str(rules_dir)), make_environment(None))
    store.record_push(
        REG, REPO, DIGEST, "1.0", "application/vnd.docker.distribution.manifest.v2+json", datetime.now(UTC)
    )
    request = ScanRequest.create(REG, REPO, DIGEST, tag="1.0", reason="push")
    with SqliteVulnDatabase.open(import_kev_db(tmp_path / "alpine.sqlite")) as db, caplog.at_level(logging.WARNING):
        process_scan(request, store, db, lambda _: sample_with_apache(), "test", policy=policy)
    kev_line = (
        f"rule 'accept-apache' hides {APACHE_ID} in apache2 2.4.38-r0 on {REG}/{REPO}@{DIGEST}, which is in CISA KEV"
        " (added 2021-11-03): known to be exploited"
    )
    assert kev_line in [r.getMessage() for r in caplog.records if r.name == "scanner.service.pipeline"]

    views = rule_admin.list_rules(store, str(rules_dir))
    usage = rule_admin.rule_usage([v.rule for v in views], store)
    assert usage.images == 1 and usage.matched is not None
    listing = rule_admin.rule_list_document(views, usage)
    assert (listing["imagesRead"], listing["staleChecked"]) == (1, True)
    by_name = {r["name"]: r for r in listing["value"]}
    assert {name: r["status"] for name, r in by_name.items()} == {
        "accept-apache": "active",
        "removed-long-ago": "stale",
        "lapsed": "expired",
        "only-on-debian": "active",  # the store does not know the image's OS: not called stale
    }
    source = str(rules_dir / "a.yaml")
    assert by_name["accept-apache"]["warnings"] == [kev_line.replace("'accept-apache'", f"'accept-apache' ({source})")]
    assert by_name["removed-long-ago"]["warnings"] == []

    # Past the bound of images a listing reads, no rule is called stale.
    capped = rule_admin.rule_usage([v.rule for v in views], store, max_images=0)
    assert capped.matched is None
    listed = rule_admin.rule_list_document(views, capped)
    assert listed["staleChecked"] is False
    assert {r["name"]: r["status"] for r in listed["value"]}["removed-long-ago"] == "active"
    # A rule's own document: its status judged on the same day.
    one = rule_admin.get_rule(store, "Removed-Long-Ago", str(rules_dir))
    assert rule_admin.rule_view_document(one, rule_admin.rule_usage([one.rule], store), date.today())["status"] == (
        "stale"
    )
