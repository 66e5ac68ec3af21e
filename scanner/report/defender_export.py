"""Sub-assessment rows as records of a Log Analytics table shaped like Defender's continuous export (pure).

Defender for Cloud exports sub-assessments ("nested recommendations") to the `SecurityNestedRecommendation`
table. acrguard's table (`AcrguardFindings_CL`, created by the data collection rule in `infra/`) has the same
columns with the same names and types, so KQL written for Defender's data works after a table rename:
`SecurityNestedRecommendation | where ParentRecommendationId == "c0b7cfc6-…"` becomes
`AcrguardFindings_CL | where ParentRecommendationId == "c0b7cfc6-…"`. Columns Defender fills from Azure's
resource tree (subscription, resource group) are filled from the sub-assessment's own id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

# (name, Log Analytics type) of every column, in Defender's order; `infra/` declares the same in its table and
# data collection rule (a test checks they agree).
EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("TimeGenerated", "datetime"),
    ("Id", "string"),
    ("NestedRecommendationId", "string"),
    ("ParentRecommendationId", "string"),
    ("RecommendationName", "string"),
    ("RecommendationSeverity", "string"),
    ("RecommendationState", "string"),
    ("RecommendationSubscriptionId", "string"),
    ("RecommendationLink", "string"),
    ("Description", "string"),
    ("Cause", "string"),
    ("Category", "string"),
    ("Impact", "string"),
    ("RemediationDescription", "string"),
    ("AssessedResourceId", "string"),
    ("ResourceGroup", "string"),
    ("ResourceProviderType", "string"),
    ("ResourceDetails", "dynamic"),
    ("AdditionalData", "dynamic"),
    ("IsSnapshot", "boolean"),
)
TABLE = "AcrguardFindings_CL"


def _id_part(resource_id: str, name: str) -> str:
    """The segment after `/name/` in an ARM id ("" when absent), case-insensitively as ARM compares them."""
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index(name.lower()) + 1] if name.lower() in lowered[:-1] else ""


def export_record(resource: Mapping[str, Any], at: datetime, *, snapshot: bool = False) -> dict[str, Any]:
    """One sub-assessment resource (`scanner.report.subassessments`) as one record of the export table."""
    properties: Mapping[str, Any] = resource.get("properties") or {}
    status: Mapping[str, Any] = properties.get("status") or {}
    resource_id = str(resource.get("id", ""))
    registry_id = resource_id.split("/providers/Microsoft.Security/", 1)[0]
    details: Mapping[str, Any] = properties.get("resourceDetails") or {}
    return {
        "TimeGenerated": at.isoformat().replace("+00:00", "Z"),
        "Id": properties.get("id", ""),
        "NestedRecommendationId": resource.get("name", ""),
        "ParentRecommendationId": _id_part(resource_id, "assessments"),
        "RecommendationName": properties.get("displayName", ""),
        "RecommendationSeverity": status.get("severity", ""),
        "RecommendationState": status.get("code", ""),
        "RecommendationSubscriptionId": _id_part(resource_id, "subscriptions"),
        "RecommendationLink": "",
        "Description": properties.get("description", ""),
        "Cause": status.get("cause", ""),
        "Category": properties.get("category", ""),
        "Impact": properties.get("impact", ""),
        "RemediationDescription": properties.get("remediation", ""),
        # The image inside the registry, as Defender names the assessed container image.
        "AssessedResourceId": registry_id + str(details.get("id", "")),
        "ResourceGroup": _id_part(resource_id, "resourceGroups"),
        "ResourceProviderType": "Microsoft.ContainerRegistry/registries",
        "ResourceDetails": dict(details),
        "AdditionalData": dict(properties.get("additionalData") or {}),
        "IsSnapshot": snapshot,
    }
