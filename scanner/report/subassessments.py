"""Azure-shaped sub-assessments (pure): a stored image and its findings → the resources
`Microsoft.Security/assessments/{key}/subAssessments` returns, so tools written for Defender read ours.

Microsoft's convention: no rows = not scanned, exactly one Healthy row = healthy, else one row per finding.
Azure knows three status codes (Healthy, Unhealthy, NotApplicable); acrguard's own health goes in `cause`.
Unsupported and NotApplicable images give one NotApplicable row. An Incomplete image (its inventory could not be
read whole: a bound hit, a detector failed) gives one image row with code **Unhealthy**, cause `Incomplete`,
severity High and the reason as description (never Healthy or NotApplicable: what was not read may be
vulnerable), followed by a row per active finding that was found.

A NotAssessed image (it has packages but the vulnerability database holds no advisories, or only a selection, for
its distribution and release; it has no active finding, or it would be Unhealthy) gives one image row with code
**NotApplicable**, cause `NotAssessed`, severity Medium and the reason (what to do: update the database) as
description. Azure's schema (`SubAssessmentStatus` in subAssessments.json, 2019-01-01-preview) allows only the
codes Healthy, Unhealthy and NotApplicable and the severities Low, Medium and High: Healthy would be the
confident wrong answer, and Unhealthy would have Defender-reading tools count a vulnerability nobody found;
NotApplicable ("this assessment says nothing about the resource") is the honest code, and Medium, above the Low
of an image with nothing to assess, says that something is to be done. Two `additionalData` shapes exist: the
Qualys era's `ContainerRegistryVulnerability` and the MDVM era's `AzureContainerRegistryVulnerability`; the
assessment key picks the default, callers may override.

Microsoft's SDK (`azure-mgmt-security`) reads these rows unchanged, so a field acrguard does not know is left out,
never sent empty: one `publishedTime: ""` fails the SDK's whole page (its date-times must parse), and a date the
feed gives without a time is sent as midnight UTC. A finding's row `id` and `displayName` are its CVE id where it
has one (Microsoft's rows carry the CVE id); the advisory acrguard matched (`ALPINE-CVE-…`, `GHSA-…`) stays in the
`acrguard` object. A finding rated **Unknown** is reported as **Medium**, never Low: no source rated it, so Low
would be a confident "minor" nobody said, and High would raise the alarms of a critical one; Medium is the same
"something to look at" a NotAssessed image row says, and `acrguard.severity` keeps `Unknown`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

from scanner.assess.severity import azure_severity
from scanner.ecosystems.catalog import base_ecosystem
from scanner.model.shapes import EPSS, KEV
from scanner.model.types import Finding, Severity
from scanner.store.records import AssessmentRow, ImageSummary, StoredFinding

Shape = Literal["qualys", "mdvm"]
SHAPES: tuple[Shape, ...] = ("qualys", "mdvm")
QUALYS_KEY = "dbd0cb49-b563-45e7-9724-889e799fa648"
MDVM_KEY = "c0b7cfc6-3172-465a-b378-53c7ff2cc0d5"
SHAPE_OF_KEY: dict[str, Shape] = {QUALYS_KEY: "qualys", MDVM_KEY: "mdvm"}
RESOURCE_TYPE = "Microsoft.Security/assessments/subAssessments"
# Where the resources live in Azure's resource tree, as a route template (no leading slash): the HTTP route
# (scanner.azure.api), the OpenAPI path (scanner.azure.openapi) and each resource's id (`Scope.prefix`).
ROUTE = (
    "subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{registry}"
    "/providers/Microsoft.Security/assessments/{key}/subAssessments"
)
# Azure's ListAll: every sub-assessment at a registry's scope, and at a subscription's.
LIST_ALL_REGISTRY_ROUTE = (
    "subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{registry}"
    "/providers/Microsoft.Security/subAssessments"
)
LIST_ALL_SUBSCRIPTION_ROUTE = "subscriptions/{sub}/providers/Microsoft.Security/subAssessments"
# A fixed namespace: names must not change between calls or deployments, or Get-by-name would break.
_NAMESPACE = uuid.UUID("5b0f3c1e-9a77-4d0e-8a51-acf6a0e4d3b1")
KEV_CATALOG = "https://www.cisa.gov/known-exploited-vulnerabilities-catalog"
_MDVM_FIX = {"fixed": "FixAvailable", "not_fixed": "NoFixAvailable", "wont_fix": "WontFix"}
# Language ecosystems (OSV names) as MDVM's `softwareDetails.language` names the language.
_LANGUAGES = {
    "PyPI": "python",
    "npm": "javascript",
    "Go": "go",
    "Maven": "java",
    "RubyGems": "ruby",
    "NuGet": "dotnet",
    "crates.io": "rust",
    "Packagist": "php",
    "Hex": "erlang",
    "Pub": "dart",
    "CRAN": "r",
    "Hackage": "haskell",
}
# The CWE ids of a finding, by its id (`scanner.service.weaknesses`); empty when the feeds give none.
Weaknesses = Mapping[str, Sequence[str]]
NO_WEAKNESSES: Weaknesses = MappingProxyType({})


@dataclass(frozen=True)
class Scope:
    """Where the resources nest: the registry's ARM id and the assessment key."""

    subscription: str
    resource_group: str
    registry: str
    assessment_key: str

    @property
    def prefix(self) -> str:
        return "/" + ROUTE.format(
            sub=self.subscription, rg=self.resource_group, registry=self.registry, key=self.assessment_key
        )


def shape_for_key(key: str) -> Shape | None:
    return SHAPE_OF_KEY.get(key.lower())


@lru_cache(maxsize=65_536)  # a page computes 50 of them, mostly the same ones again: uuid5 is ~10 µs each
def sub_assessment_name(repository: str, digest: str, vuln_id: str = "", package: str = "") -> str:
    """Stable per (repository, digest, finding id, package): the same digest may sit in two repositories,
    and Azure gives each its own rows. The healthy row uses empty finding and package."""
    return str(uuid.uuid5(_NAMESPACE, "\n".join((repository, digest, vuln_id, package))))


def registry_host(registry: str) -> str:
    """The store names registries by login server; a bare ACR name gets Azure's public suffix."""
    return registry if "." in registry or ":" in registry else f"{registry}.azurecr.io"


def image_sub_assessments(
    scope: Scope,
    image: ImageSummary,
    findings: Sequence[StoredFinding],
    shape: Shape,
    weaknesses: Weaknesses = NO_WEAKNESSES,
) -> list[dict[str, Any]]:
    """The rows for one image: none if not assessed, one Healthy or NotApplicable row, else one per
    active finding (disabled and resolved ones stay out: they do not count toward health); an Incomplete
    image has its image row first, then its findings'."""
    if image.health is None:
        return []
    if image.health in ("Healthy", "Unsupported", "NotApplicable", "NotAssessed"):
        return [_image_row(scope, image, shape)]
    rows = [_finding_row(scope, image, stored, shape, weaknesses) for stored in findings if stored.active]
    return [_image_row(scope, image, shape), *rows] if image.health == "Incomplete" else rows


def assessment_row(
    scope: Scope, row: AssessmentRow, shape: Shape, weaknesses: Weaknesses = NO_WEAKNESSES
) -> dict[str, Any]:
    """One stored row (`Lookups.list_assessment_rows`, scanner.store.ports) as its resource: the store already applied
    the rules of `image_sub_assessments` (assessed images only, active findings only)."""
    if row.finding is None:
        return _image_row(scope, row.image, shape)
    return _finding_row(scope, row.image, row.finding, shape, weaknesses)


def row_name(row: AssessmentRow) -> str:
    """The resource name `assessment_row` gives this row, without building the resource."""
    key = row.image.key
    if row.finding is None:
        return sub_assessment_name(key.repository, key.digest)
    return sub_assessment_name(key.repository, key.digest, *_finding_identity(row.finding))


def _finding_identity(stored: StoredFinding) -> tuple[str, str]:
    pkg = stored.finding.package
    return stored.finding.id, f"{pkg.name}@{pkg.version}"


def _resource(scope: Scope, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{scope.prefix}/{name}", "name": name, "type": RESOURCE_TYPE, "properties": properties}


def _resource_details(image: ImageSummary) -> dict[str, str]:
    return {"source": "Azure", "id": f"/repositories/{image.key.repository}/images/{image.key.digest}"}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def date_time(text: str) -> str | None:
    """A feed's date or date-time as the RFC 3339 date-time Azure's schema wants (a bare date is midnight UTC, a
    time without a zone is UTC); None (the field left out) for "" or anything that does not parse."""
    text = text.strip()
    try:
        at = datetime.fromisoformat(text) if "T" in text or " " in text else None
        if at is None:
            at = datetime.combine(date.fromisoformat(text), datetime.min.time())
    except ValueError:
        return None
    return _iso(at if at.tzinfo is not None else at.replace(tzinfo=UTC))


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields acrguard knows: None and "" left out (the SDK fails a page on an empty date-time)."""
    return {k: v for k, v in fields.items() if v is not None and v != ""}


def row_severity(severity: Severity) -> str:
    """Azure's three levels; Unknown is Medium (why: the module's docstring)."""
    return "Medium" if severity == "Unknown" else azure_severity(severity)


def _image_row(scope: Scope, image: ImageSummary, shape: Shape) -> dict[str, Any]:
    healthy = image.health == "Healthy"
    incomplete = image.health == "Incomplete"
    code = "Healthy" if healthy else "Unhealthy" if incomplete else "NotApplicable"
    description = "No vulnerability findings" if healthy else (image.reason or "The image could not be assessed")
    properties = _present(
        {
            "displayName": description,
            "description": description,
            "timeGenerated": _iso(image.assessed_at),
            "status": _present(
                {
                    "code": code,
                    "cause": None if healthy else image.health,
                    "description": description,
                    "severity": _IMAGE_ROW_SEVERITY.get(image.health or "", "Low"),
                }
            ),
            "resourceDetails": _resource_details(image),
            "additionalData": _image_data(image, shape),
        }
    )
    return _resource(scope, sub_assessment_name(image.key.repository, image.key.digest), properties)


# An image row's severity by health: what was not read may be vulnerable (High); a database that could not assess
# the image is to be updated (Medium); nothing to assess, or healthy, is Low.
_IMAGE_ROW_SEVERITY = {"Incomplete": "High", "NotAssessed": "Medium"}


def _image_data(image: ImageSummary, shape: Shape) -> dict[str, Any]:
    if shape == "qualys":
        return {
            "assessedResourceType": "ContainerRegistryVulnerability",
            "repositoryName": image.key.repository,
            "imageDigest": image.key.digest,
            "registryHost": registry_host(image.key.registry),
        }
    return {"assessedResourceType": "AzureContainerRegistryVulnerability", "artifactDetails": _artifact(image)}


def vulnerability_id(finding: Finding) -> str:
    """The row's `id`: the finding's CVE id where it has one, as Microsoft's rows carry; else its advisory's."""
    return (finding.cve_ids or (finding.id,))[0]


def _finding_row(
    scope: Scope, image: ImageSummary, stored: StoredFinding, shape: Shape, weaknesses: Weaknesses
) -> dict[str, Any]:
    finding = stored.finding
    pkg = finding.package
    vuln_id = vulnerability_id(finding)
    title = f"{vuln_id} in {pkg.name} {finding.installed_version}".strip()
    properties = _present(
        {
            "id": vuln_id,
            "displayName": vuln_id,
            "remediation": finding.remediation or _default_remediation(finding),
            "impact": finding.summary or title,
            "category": finding.category,
            "description": finding.summary or title,
            "timeGenerated": _iso(image.assessed_at or stored.last_seen),
            "status": {
                "code": "Unhealthy",
                "description": title,
                "severity": row_severity(finding.severity),  # Azure knows three levels; exact class in `acrguard`
            },
            "resourceDetails": _resource_details(image),
            "additionalData": _qualys_data(image, stored)
            if shape == "qualys"
            else _mdvm_data(image, stored, weaknesses.get(finding.id, ())),
        }
    )
    name = sub_assessment_name(image.key.repository, image.key.digest, *_finding_identity(stored))
    return _resource(scope, name, properties)


def _default_remediation(finding: Finding) -> str:
    if finding.fixed_version:
        return f"Upgrade {finding.package.name} to {finding.fixed_version} or later."
    return f"No fix is available yet for {finding.package.name}."


def _link(ref_id: str) -> str:
    if ref_id.startswith("CVE-"):
        return f"https://nvd.nist.gov/vuln/detail/{ref_id}"
    return f"https://osv.dev/vulnerability/{ref_id}"


def _cvss3(finding: Finding, with_vector: bool) -> dict[str, Any]:
    # Both shapes key CVSS v3 by "3.0"; v3.1 scores fill that slot. v4 has no place there.
    if finding.cvss is None or not finding.cvss.version.startswith("3"):
        return {}
    entry: dict[str, Any] = {"base": finding.cvss.score}
    if with_vector:
        entry["cvssVectorString"] = finding.cvss.vector
    return {"3.0": entry}


def _cvss2(finding: Finding) -> dict[str, Any] | None:
    """MDVM's `cvss."2.0"`: the v2 score where the finding's rating is one, else null (Microsoft's sample)."""
    if finding.cvss is None or not finding.cvss.version.startswith("2"):
        return None
    return {"base": finding.cvss.score, "cvssVectorString": finding.cvss.vector}


def _exact(stored: StoredFinding) -> dict[str, Any]:
    """Ours, beside Azure's fields: the exact class and score Azure's three levels lose."""
    finding = stored.finding
    cvss = finding.cvss
    return {
        "severity": finding.severity,
        "severitySource": finding.severity_source,
        "cvss": {"version": cvss.version, "vector": cvss.vector, "score": cvss.score} if cvss else None,
        "aliases": list(finding.aliases),
        "fixStatus": finding.fix_status,
        "findingKey": stored.key,
        "advisoryId": finding.id,
        "firstSeen": _iso(stored.first_seen),
        "kev": None if finding.kev is None else KEV.view(finding.kev),
        "epss": None if finding.epss is None else EPSS.view(finding.epss),
        "risk": finding.risk,
        "origin": finding.origin,
    }


# CVSS attack vectors as MDVM's exploitability `types` name them.
_ATTACK_TYPES = {"N": "Remote", "A": "Remote", "L": "Local", "P": "Local"}


def exploitability(finding: Finding) -> dict[str, Any]:
    """MDVM's `exploitabilityAssessment` from what acrguard knows: a CVE in CISA's KEV catalog has been exploited
    in the wild, which CISA verified (`exploitStepsPublished`, `exploitStepsVerified`); used in ransomware
    campaigns stands in for `isInExploitKit`; the CVSS attack vector gives `types`; `exploitUris` links the
    KEV catalog entry. The EPSS score has no field of Azure's: it is under `acrguard.epss`."""
    kev = finding.kev
    vector = dict(p.split(":", 1) for p in finding.cvss.vector.split("/") if ":" in p) if finding.cvss else {}
    kind = _ATTACK_TYPES.get(vector.get("AV", ""))
    return {
        "exploitStepsPublished": kev is not None,
        "exploitStepsVerified": kev is not None,
        "isInExploitKit": bool(kev and kev.ransomware),
        "exploitUris": [f"{KEV_CATALOG}?search_api_fulltext={cve}" for cve in finding.cve_ids[:1]] if kev else [],
        "types": [kind] if kind else [],
    }


def _qualys_data(image: ImageSummary, stored: StoredFinding) -> dict[str, Any]:
    finding = stored.finding
    return _present(
        {
            "assessedResourceType": "ContainerRegistryVulnerability",
            "type": "Vulnerability",
            "cvss": _cvss3(finding, with_vector=False),
            "patchable": finding.patchable,
            "cve": [{"title": cve, "link": _link(cve)} for cve in finding.cve_ids],
            "publishedTime": date_time(finding.published),
            "vendorReferences": [{"title": ref, "link": ref} for ref in finding.references],
            "repositoryName": image.key.repository,
            "imageDigest": image.key.digest,
            "registryHost": registry_host(image.key.registry),
            "acrguard": _exact(stored),
        }
    )


def _mdvm_data(image: ImageSummary, stored: StoredFinding, cwe_ids: Sequence[str]) -> dict[str, Any]:
    finding = stored.finding
    cvss3 = _cvss3(finding, with_vector=True)
    return _present(
        {
            "assessedResourceType": "AzureContainerRegistryVulnerability",
            "vulnerabilityDetails": _present(
                {
                    "severity": finding.severity,
                    "cveId": vulnerability_id(finding),
                    "cvss": {"2.0": _cvss2(finding), **cvss3},
                    "references": [{"title": ref, "link": ref} for ref in finding.references],
                    "weaknesses": {"cwe": [{"id": cwe} for cwe in cwe_ids]},
                    "workarounds": [],
                    "publishedDate": date_time(finding.published),
                    "lastModifiedDate": date_time(finding.modified),
                    "exploitabilityAssessment": exploitability(finding),
                    # `cpe` is left out: no feed acrguard reads names the package's CPE.
                }
            ),
            "artifactDetails": _artifact(image),
            "softwareDetails": _software(image, finding),
            "cvssV30Score": cvss3["3.0"]["base"] if cvss3 else None,
            "acrguard": _exact(stored),
        }
    )


def _software(image: ImageSummary, finding: Finding) -> dict[str, Any]:
    """MDVM's `softwareDetails`: the package, its language (from its ecosystem) or distribution (as `vendor`), the
    image's operating system as Microsoft writes it, and `evidence`: where the package was found and how known."""
    pkg = finding.package
    os_package = finding.category == "os"
    image_os = pkg.ecosystem if os_package else next((c.ecosystem for c in image.coverage if c.kind == "os"), "")
    distribution, _, _ = image_os.partition(":")
    return _present(
        {
            "packageName": pkg.name,
            "version": finding.installed_version,
            "fixedVersion": finding.fixed_version,
            "fixStatus": _MDVM_FIX.get(finding.fix_status, "Unknown"),
            "category": "OS" if os_package else "Language",
            "language": None if os_package else _LANGUAGES.get(base_ecosystem(pkg.ecosystem)),
            "vendor": _name_part(distribution) if os_package else None,
            "osDetails": os_details(image_os),
            # Where the package was found, then how it is known (installed, lockfile, binary, runtime).
            "evidence": [*pkg.locations, pkg.evidence],
        }
    )


def _name_part(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "_", text.strip().lower()).strip("_")


def os_details(ecosystem: str) -> dict[str, str] | None:
    """An OS ecosystem (`Alpine:v3.10`, `Ubuntu:20.04`, `Debian:12`) as MDVM's `osDetails`: platform `linux`,
    version `alpine_linux_3.10` (Microsoft's `ubuntu_linux_20.04`); None when the image's OS is not known."""
    distribution, _, release = ecosystem.partition(":")
    name = _name_part(distribution)
    if not name:
        return None
    version = _name_part(release.split(":")[0].removeprefix("v").removeprefix("V"))
    return {"osPlatform": "linux", "osVersion": f"{name}_linux_{version}" if version else f"{name}_linux"}


def _artifact(image: ImageSummary) -> dict[str, Any]:
    return _present(
        {
            "registryHost": registry_host(image.key.registry),
            "repositoryName": image.key.repository,
            "digest": image.key.digest,
            "tags": list(image.tags),
            "mediaType": image.media_type,
            "artifactType": "ContainerImage",
            "lastPushedToRegistryUTC": _iso(image.last_push),
        }
    )
