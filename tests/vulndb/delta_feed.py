"""A real feed and its update for the change-record tests: PyPA's advisories (tests/fixtures/osv) as a
directory source, and the same directory after an update that adds one advisory, changes one and withdraws
one. Also a real Python rootfs (dist-info METADATA as pip writes it) whose packages those advisories name."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PYPA = FIXTURES / "osv" / "pypa-advisory-database" / "vulns"
ADDED = "PYSEC-2023-192"  # urllib3 (CVE-2023-43804): absent from the first build, added by the update
MODIFIED = "PYSEC-2021-66"  # jinja2: the update says 2.10 fixed it (was: fixed in 2.11.3)
WITHDRAWN = "PYSEC-2023-45"  # redis (CVE-2023-28858): withdrawn by the update
UPDATED_AT = "2026-12-01T00:00:00Z"


def write_feed(directory: Path, *, updated: bool) -> None:
    """The advisories as the feed serves them before (`updated=False`) or after the update."""
    shutil.rmtree(directory, ignore_errors=True)
    for path in sorted(PYPA.rglob("*.yaml")):
        record: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        if record["id"] == ADDED and not updated:
            continue
        if updated and record["id"] == MODIFIED:
            record["modified"] = UPDATED_AT
            for entry in record["affected"]:
                entry.pop("versions", None)
                entry["ranges"] = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.10"}]}]
        if updated and record["id"] == WITHDRAWN:
            record["modified"] = UPDATED_AT
            record["withdrawn"] = UPDATED_AT
        out = (directory / path.relative_to(PYPA)).with_suffix(".json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, default=_rfc3339), encoding="utf-8")


def _rfc3339(value: object) -> str:
    """YAML reads unquoted times as datetimes; OSV writes them as RFC 3339 UTC text."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"not JSON: {value!r}")
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def python_rootfs(root: Path, packages: dict[str, str]) -> str:
    """A root filesystem with these (name → version) installed in site-packages; its `dir:` reference."""
    site = root / "usr" / "local" / "lib" / "python3.11" / "site-packages"
    for name, version in packages.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    return f"dir:{root}"
