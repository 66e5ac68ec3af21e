"""Every output that lists packages says how each is known: the CycloneDX SBOM (`acrguard:evidence`), the
scan JSON's findings (`package.evidence`) and the findings table (`name [lockfile]`)."""

from __future__ import annotations

import json

from scanner.model.types import Evidence, Finding, ImageInfo, Inventory, Package
from scanner.report.cyclonedx_sbom import to_cyclonedx
from scanner.report.scan_json import finding_dict
from scanner.report.table import render_table


def pkg(name: str, location: str, evidence: Evidence) -> Package:
    return Package(name, "1.0.3", "PyPI", f"pkg:pypi/{name}@1.0.3", name, "1.0.3", "", (location,), "pypi",
                   "python@2", None, evidence=evidence)  # fmt: skip


FLASK = pkg("flask", "/app/poetry.lock", "lockfile")
SIX = pkg("six", "/usr/lib/python3/dist-packages/six-1.0.3.egg-info", "installed")


def finding(package: Package) -> Finding:
    return Finding(id="PYSEC-2023-62", aliases=(), package=package, installed_version="1.0.3",
                   fixed_version="2.2.5", fix_status="fixed", severity="High", severity_source="osv", cvss=None,
                   category="language")  # fmt: skip


def test_cyclonedx_components_carry_their_evidence() -> None:
    image = ImageInfo("example:1", "sha256:" + "0" * 64, "sha256:" + "1" * 64, "linux/amd64", None)
    bom = json.loads(to_cyclonedx(Inventory(image, "Complete", "", (FLASK, SIX))))
    evidence = {
        c["name"]: [p["value"] for p in c["properties"] if p["name"] == "acrguard:evidence"] for c in bom["components"]
    }
    assert evidence == {"flask": ["lockfile"], "six": ["installed"]}


def test_scan_json_findings_say_how_the_package_is_known() -> None:
    assert finding_dict(finding(FLASK))["package"]["evidence"] == "lockfile"
    assert finding_dict(finding(SIX))["package"]["evidence"] == "installed"


def test_table_marks_packages_known_only_from_a_lockfile() -> None:
    text = render_table([finding(FLASK), finding(SIX)], width=160)
    assert "flask [lockfile]" in text
    assert "six " in text and "six [" not in text
