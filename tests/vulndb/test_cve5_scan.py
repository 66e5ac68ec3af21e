"""End to end: `acrguard scan` of the Alpine 3.10 sample with Alpine's secdb and CVE JSON 5 records imported; the
secdb gives no severity, so the CVE record's CVSS (where it has one) rates the findings and gates the scan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scanner.vulndb.osv_import import import_sources
from tests.vulndb.test_cve5 import MUSL, V31, musl, with_metrics

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = f"docker-archive:{ROOT / 'samples' / 'alpine-3.10-app.tar'}"
SECDB_310 = ROOT / "tests" / "fixtures" / "osv" / "alpine-secdb" / "v3.10"


def musl_findings(acrguard: Any, db: Path) -> list[dict[str, Any]]:
    run = acrguard("scan", SAMPLE, "--db", str(db), "--format", "json")
    assert run.code in (0, 1), run.err
    found: list[dict[str, Any]] = [f for f in json.loads(run.out)["findings"] if f["package"]["name"] == "musl"]
    return found


def test_the_real_musl_record_has_no_cvss_so_the_finding_stays_unknown(acrguard: Any, tmp_path: Path) -> None:
    db = tmp_path / "v.sqlite"
    import_sources(db, [str(SECDB_310), str(MUSL)])
    [finding] = musl_findings(acrguard, db)
    assert (finding["id"], finding["severity"], finding["severity_source"]) == (
        "ALPINE-CVE-2019-14697",
        "Unknown",
        "none",
    )
    assert acrguard("scan", SAMPLE, "--db", str(db), "--fail-on", "critical").code == 0


def test_a_cisa_adp_cvss_makes_musl_critical_and_fails_the_gate(acrguard: Any, tmp_path: Path) -> None:
    # The real record with NVD's vector for this CVE put in a CISA-ADP container: the real one scores nothing, and
    # the sample has no package hit by a CVE whose real record CISA-ADP scores (test_cve5 reads CVE-2024-25062).
    record = tmp_path / "CVE-2019-14697.json"
    record.write_text(json.dumps(with_metrics(musl(), adp=[{"cvssV3_1": {"vectorString": V31}}])))
    db = tmp_path / "v.sqlite"
    import_sources(db, [str(SECDB_310), str(record)])
    [finding] = musl_findings(acrguard, db)
    assert (finding["severity"], finding["severity_source"]) == ("Critical", "cve:cisa-adp:cvss:3.1")
    assert finding["cvss"]["score"] == 9.8
    assert acrguard("scan", SAMPLE, "--db", str(db), "--fail-on", "critical").code == 1
