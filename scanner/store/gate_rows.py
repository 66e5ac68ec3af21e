"""Gates' verdicts in the SQL store: what each gate decided about an image at each assessment, and the
actions that followed (the dashboard's Gates page reads them back).

The history is bounded on every write: each gate keeps its newest `KEPT_PER_GATE` verdicts, and none older
than `KEPT_DAYS` days, so a fleet rescanned every day cannot grow the table without end. A replayed
assessment (same gate, image and time) overwrites its row, as every store write is idempotent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import timedelta

from scanner.store.ports import MAX_PAGE
from scanner.store.records import GateActionOutcome, GateVerdictRecord
from scanner.store.sql import Row, Tx, dumps, loads, req_time, to_text

KEPT_PER_GATE = 500
KEPT_DAYS = 90
# Bounds what one verdict row holds: reasons are one line each and a gate has at most three actions.
MAX_REASONS = 20
MAX_TEXT = 500

_COLUMNS = "gate, registry, repository, digest, decided_at, failed, tags, reasons, actions"
_UPSERT = (
    f"INSERT INTO gate_verdicts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (gate, registry, repository, digest, decided_at) DO UPDATE SET failed = excluded.failed,"
    " tags = excluded.tags, reasons = excluded.reasons, actions = excluded.actions"
)
MAX_TAGS = 50
# The tags pointing at the image when the verdict is recorded (an assessment knows only the tag it was
# pushed with, if any).
_CURRENT_TAGS = "SELECT tag FROM tags WHERE registry = ? AND repository = ? AND digest = ? AND is_current = 1"
# Newest first; ties (one rescan stamps every image with the same time) broken by the image, so the bound
# below cuts at one row.
_ORDER = "decided_at DESC, registry DESC, repository DESC, digest DESC"


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class SqlGateVerdicts(ABC):
    @abstractmethod
    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]: ...

    def record_gate_verdicts(self, verdicts: Sequence[GateVerdictRecord]) -> None:
        if not verdicts:
            return
        with self._tx() as tx:
            current: dict[tuple[str, str, str], list[str]] = {}
            for v in verdicts:
                image = (v.registry, v.repository, v.digest)
                if image not in current:
                    current[image] = [row[0] for row in tx.rows(_CURRENT_TAGS, image)]
                tags = sorted({*v.tags, *current[image]})[:MAX_TAGS]
                actions = [{"action": _short(a.action), "ok": a.ok, "error": _short(a.error)} for a in v.actions]
                tx.run(
                    _UPSERT,
                    (
                        v.gate,
                        v.registry,
                        v.repository,
                        v.digest,
                        to_text(v.decided_at),
                        int(v.failed),
                        dumps(tags),
                        dumps([_short(r) for r in v.reasons[:MAX_REASONS]]),
                        dumps(actions),
                    ),
                )
            newest = max(v.decided_at for v in verdicts)
            tx.run("DELETE FROM gate_verdicts WHERE decided_at < ?", (to_text(newest - timedelta(days=KEPT_DAYS)),))
            for gate in sorted({v.gate for v in verdicts}):
                _keep_newest(tx, gate)

    def gate_verdicts(
        self,
        gate: str | None = None,
        registry: str | None = None,
        repository: str | None = None,
        digest: str | None = None,
        limit: int = 100,
    ) -> list[GateVerdictRecord]:
        limit = max(1, min(limit, MAX_PAGE))
        where: list[str] = []
        params: list[str] = []
        for column, value in (("gate", gate), ("registry", registry), ("repository", repository), ("digest", digest)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        with self._tx(write=False) as tx:
            rows = tx.rows(f"SELECT {_COLUMNS} FROM gate_verdicts{condition} ORDER BY {_ORDER} LIMIT {limit}", params)
        return [_record(row) for row in rows]


def _keep_newest(tx: Tx, gate: str) -> None:
    """Drops the gate's verdicts older than its `KEPT_PER_GATE` newest."""
    boundary = tx.rows(
        f"SELECT decided_at, registry, repository, digest FROM gate_verdicts WHERE gate = ? ORDER BY {_ORDER}"
        f" LIMIT 1 OFFSET {KEPT_PER_GATE - 1}",
        (gate,),
    )
    if boundary:
        tx.run(
            "DELETE FROM gate_verdicts WHERE gate = ? AND (decided_at, registry, repository, digest) < (?, ?, ?, ?)",
            (gate, *boundary[0]),
        )


def _record(row: Row) -> GateVerdictRecord:
    gate, registry, repository, digest, decided_at, failed, tags, reasons, actions = row
    return GateVerdictRecord(
        gate=gate,
        registry=registry,
        repository=repository,
        digest=digest,
        tags=tuple(loads(tags)),
        failed=bool(failed),
        reasons=tuple(loads(reasons)),
        actions=tuple(GateActionOutcome(a["action"], bool(a["ok"]), a.get("error", "")) for a in loads(actions)),
        decided_at=req_time(decided_at),
    )
