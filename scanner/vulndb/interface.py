"""The read side of the vulnerability database, as matching sees it (an interface, no I/O here).

Records are OSV dicts (https://ossf.github.io/osv-schema/). Implementations live in scanner/vulndb/. Packages
are looked up by (base_ecosystem(ecosystem), normalise_name(ecosystem, name)), from scanner.ecosystems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from scanner.ecosystems.catalog import base_ecosystem, normalise_name
from scanner.model.types import Coverage, Epss, Kev

__all__ = ["OsvRecord", "VulnDatabase", "base_ecosystem", "normalise_name"]

OsvRecord = Mapping[str, Any]


class VulnDatabase(Protocol):
    def lookup(self, ecosystem: str, name: str) -> list[OsvRecord]:
        """Non-withdrawn records with an `affected[]` entry whose package is (base_ecosystem(ecosystem),
        normalise_name(name)), for any release of that ecosystem: the matcher checks the release."""
        ...

    def prefetch(self, packages: Iterable[tuple[str, str]]) -> None:
        """Load the records of many (ecosystem, name) pairs at once, so the `lookup`s that follow are
        answered from memory (a scan looks up hundreds of packages). May do nothing."""
        ...

    def by_id(self, vuln_id: str) -> list[OsvRecord]:
        """Records whose id, or one of whose aliases, is `vuln_id` (to find a CVE's CVSS elsewhere)."""
        ...

    def exploitation(self, cve_ids: Iterable[str]) -> dict[str, tuple[Kev | None, Epss | None]]:
        """Per CVE id the database holds either for: its KEV catalog entry and its EPSS score (None where one
        is missing). Answers many ids at once (a scan has hundreds)."""
        ...

    def coverage(self, ecosystem: str) -> Coverage:
        """How many non-withdrawn records apply to this ecosystem and its release (`Debian:12`: those for
        `Debian:12`, not `Debian:11`; `PyPI`: all; each record once, however many of its entries apply), the
        newest date of the feeds they come from (how current the feed is, not when it was imported; "" when
        nothing applies), and whether they all come from sources that hold only a selection of their feeds.
        Answered from counts kept at import, not by reading the records."""
        ...

    def describe(self) -> dict[str, Any]:
        """Sources (name, imported at, record count, feed date, selection), the advisory ecosystems with their
        record counts and sources, schema version, total records."""
        ...
