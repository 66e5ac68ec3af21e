"""The sources a finding's severity may come from, and the order the user chose to trust them in
(`ACRGUARD_SEVERITY_SOURCES`, `acrguard scan --severity-source`).

`vendor`: the distribution's or advisory's own word (Debian's urgency, Ubuntu's priority, Red Hat's impact, GHSA's
severity); `cvss`: the matched advisory's own CVSS, else its OSV alias records'; `cna`, `cisa-adp`: the CVSS of
the CVE record's CNA and of CISA's vulnrichment (CVE JSON 5 records); `nvd`: NVD's CVSS (NVD records).
"""

from __future__ import annotations

from scanner.model.errors import AcrguardError

SEVERITY_SOURCES = ("vendor", "cvss", "cna", "cisa-adp", "nvd")
# The distribution's own rating for OS packages (it weighs how the package is built and used there), then CVSS.
DEFAULT_SEVERITY_ORDER = SEVERITY_SOURCES
_MAX_TEXT = 200


class SeverityOrderError(AcrguardError, ValueError):
    """An order naming no source or a source that does not exist; the message is one line naming the value."""


def parse_severity_order(text: str) -> tuple[str, ...]:
    """`nvd, vendor` -> ("nvd", "vendor"): names in the order given, any case, a repeat dropped; a name that is not
    a source is a SeverityOrderError naming it."""
    names = [n.strip().lower() for n in text[: _MAX_TEXT + 1].split(",") if n.strip()]
    if len(text) > _MAX_TEXT or not names:
        raise SeverityOrderError(f"{text[:40]!r} is not a comma-separated list of {', '.join(SEVERITY_SOURCES)}")
    for name in names:
        if name not in SEVERITY_SOURCES:
            raise SeverityOrderError(f"unknown severity source {name[:40]!r} (known: {', '.join(SEVERITY_SOURCES)})")
    return tuple(dict.fromkeys(names))
