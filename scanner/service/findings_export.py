"""Continuous export: after an assessment changed an image's findings or health, the image's sub-assessment rows
(MDVM shape, as `GET …/subAssessments` serves them) go to Log Analytics as records shaped like Defender's
`SecurityNestedRecommendation` (`scanner.report.defender_export`).

Each export carries the image's whole present state: one row per active finding, or its one Healthy /
NotApplicable row (and an Incomplete image's row before its findings'). A finding that went away is absent from
the newest export of its image, as in Defender's data: KQL takes each image's latest rows
(`summarize arg_max(TimeGenerated, *) by NestedRecommendationId` within the latest export of each
`AssessedResourceId`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from scanner.assess.assessment import Assessment
from scanner.model.errors import AcrguardError
from scanner.report.defender_export import export_record
from scanner.report.subassessments import MDVM_KEY, Scope, image_sub_assessments
from scanner.store.assessment_rows import finding_key
from scanner.store.records import AssessmentChange, ImageKey, ImageSummary, StoredFinding

log = logging.getLogger(__name__)


class Sink(Protocol):
    def send(self, records: Sequence[Mapping[str, Any]]) -> None: ...


def registry_scopes(resource_ids: Iterable[str]) -> dict[str, Scope]:
    """Login server → the registry's place in Azure's resource tree, from its ARM ids
    (`/subscriptions/S/resourceGroups/G/providers/Microsoft.ContainerRegistry/registries/NAME`)."""
    scopes: dict[str, Scope] = {}
    for resource_id in resource_ids:
        parts = resource_id.strip("/").split("/")
        lowered = [p.lower() for p in parts]
        if len(parts) != 8 or lowered[0] != "subscriptions" or lowered[2] != "resourcegroups":
            raise AcrguardError(f"registry resource id {resource_id!r}: not /subscriptions/…/registries/NAME")
        if lowered[4:7] != ["providers", "microsoft.containerregistry", "registries"]:
            raise AcrguardError(f"registry resource id {resource_id!r}: not a container registry")
        scopes[f"{lowered[7]}.azurecr.io"] = Scope(parts[1], parts[3], parts[7], MDVM_KEY)
    return scopes


class FindingsExporter:
    """Builds an image's rows after a change and hands them to the sink; a failure is logged, never raised (the
    findings are stored; the next change exports the image's state again)."""

    def __init__(self, sink: Sink, scopes: Mapping[str, Scope] | None = None) -> None:
        self.sink = sink
        self.scopes = dict(scopes or {})

    def records(self, key: ImageKey, result: Assessment, tags: tuple[str, ...], at: datetime) -> list[dict[str, Any]]:
        scope = self.scopes.get(key.registry) or Scope("", "", key.registry.split(".")[0], MDVM_KEY)
        image = ImageSummary(
            key=key,
            media_type=result.inventory.image.media_type,
            first_push=None,
            last_push=None,
            last_pull=None,
            deleted=False,
            tags=tags,
            health=result.health,
            reason=result.reason,
            summary=result.summary,
            assessed_at=at,
            coverage=result.coverage,
        )
        stored = [StoredFinding(finding_key(f), f, at, at, None, 0) for f in result.findings if not f.disabled]
        return [export_record(row, at) for row in image_sub_assessments(scope, image, stored, "mdvm")]

    def __call__(
        self, key: ImageKey, result: Assessment, change: AssessmentChange, tags: tuple[str, ...], at: datetime
    ) -> None:
        if not change.changed or change.stale:
            return
        try:
            self.sink.send(self.records(key, result, tags, at))
        except AcrguardError as err:
            log.warning("findings of %s/%s@%s not exported: %s", key.registry, key.repository, key.digest, err)
