"""The CWE ids of findings, from the advisories the vulnerability database holds: GitHub's and OSV's records carry
them in `database_specific.cwe_ids`. Read when a lookup shows MDVM-shaped rows (`vulnerabilityDetails.weaknesses`):
the finding stored with the assessment does not carry them."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from scanner.model.errors import AcrguardError
from scanner.model.types import Finding
from scanner.vulndb.interface import VulnDatabase

_log = logging.getLogger(__name__)

MAX_IDS = 4  # ids looked up per finding: its own and its first CVE ids
MAX_CWES = 20  # CWE ids kept per finding
_CWE = re.compile(r"CWE-[0-9]{1,6}")


def cwe_ids(db: VulnDatabase, findings: Iterable[Finding]) -> dict[str, tuple[str, ...]]:
    """Per finding id: the CWE ids of its records and of the records of its CVE ids, first seen first."""
    found: dict[str, tuple[str, ...]] = {}
    for finding in findings:
        if finding.id in found:
            continue
        ids = dict.fromkeys((finding.id, *finding.cve_ids))
        cwes: dict[str, None] = {}
        for vuln_id in list(ids)[:MAX_IDS]:
            for record in db.by_id(vuln_id):
                cwes.update(dict.fromkeys(_record_cwes(record)))
        found[finding.id] = tuple(cwes)[:MAX_CWES]
    return found


def _record_cwes(record: Mapping[str, Any]) -> Sequence[str]:
    specific = record.get("database_specific")
    listed = specific.get("cwe_ids") if isinstance(specific, Mapping) else None
    if not isinstance(listed, list):
        return ()
    return [item for item in listed[:MAX_CWES] if isinstance(item, str) and _CWE.fullmatch(item)]


def cwe_reader(open_db: Callable[[], VulnDatabase]) -> Callable[[list[Finding]], dict[str, tuple[str, ...]]]:
    """`cwe_ids` on the database `open_db` gives when asked; without a readable database no finding has CWE ids
    (the rows show an empty list), and the reason is logged."""

    def read(findings: list[Finding]) -> dict[str, tuple[str, ...]]:
        try:
            return cwe_ids(open_db(), findings)
        except (AcrguardError, OSError, sqlite3.Error) as exc:
            _log.warning("sub-assessments show no CWE ids: vulnerability database unreadable: %s", exc)
            return {}

    return read
