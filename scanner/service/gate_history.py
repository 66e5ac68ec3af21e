"""What the gates decided about an image, as the store keeps it (`GateVerdictRecord`): each gate's verdict
with the actions of that gate that ran after it (from `apply_verdicts`' report) and whether they succeeded.

An action runs once per image for every gate naming it (one lock whichever gate fails), so each gate's
record lists the run of each of its actions: `lock` or `unlock`, `quarantine Failed` or `Passed`, `notify`.
An action that did not run (no change to notify of, evaluation without an adapter) is not listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from scanner.policy.gate_actions import ActionReport
from scanner.policy.gates import GateVerdict
from scanner.policy.image_context import ImageContext
from scanner.store.records import GateActionOutcome, GateVerdictRecord

# Which labels of `ActionReport.outcomes` each gate action may have run as.
_LABELS = {"lock": ("lock", "unlock"), "quarantine": ("quarantine Failed", "quarantine Passed"), "notify": ("notify",)}


def records(
    image: ImageContext, verdicts: Sequence[GateVerdict], report: ActionReport | None, at: datetime
) -> list[GateVerdictRecord]:
    """One record per verdict, in gate order."""
    outcomes = report.outcomes if report is not None else {}
    found = []
    for verdict in verdicts:
        actions = tuple(
            GateActionOutcome(label, not outcomes[label], outcomes[label])
            for action in verdict.gate.actions
            for label in _LABELS.get(action, ())
            if label in outcomes
        )
        found.append(
            GateVerdictRecord(
                gate=verdict.gate.name,
                registry=image.registry,
                repository=image.repository,
                digest=image.digest,
                tags=image.tags,
                failed=verdict.failed,
                reasons=verdict.reasons,
                actions=actions,
                decided_at=at,
            )
        )
    return found
