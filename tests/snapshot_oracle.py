"""What the bundled snapshot's Debian and Ubuntu records say, read straight from its files (no acrguard code):
counts per release and the findings dpkg itself predicts for installed source packages."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).resolve().parents[1] / "scanner" / "data" / "osv-snapshot"
UBUNTU = SNAPSHOT / "ubuntu-osv"
DEBIAN = SNAPSHOT / "debian-osv"


def load(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))]


def release_of(ecosystem: str) -> str | None:
    """`Ubuntu:22.04:LTS` and `Ubuntu:25.04` -> `Ubuntu:22.04`/`Ubuntu:25.04`; `Debian:12` as is; Ubuntu Pro
    (ESM, FIPS) entries need a subscription and apply to no plain image: None."""
    parts = ecosystem.split(":")
    if parts[0] == "Ubuntu":
        return None if parts[1] == "Pro" else f"Ubuntu:{parts[1]}"
    return ecosystem


def counts(directory: Path) -> Counter[str]:
    """Records per release: each record counts once for every release one of its entries names."""
    out: Counter[str] = Counter()
    for record in load(directory):
        releases = {release_of(a["package"]["ecosystem"]) for a in record["affected"]}
        out.update(r for r in releases if r is not None)
    return out


def dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


def expected_findings(
    directory: Path, release: str, installed: set[tuple[str, str, str]]
) -> set[tuple[str, str, str, str]]:
    """(binary package, record id, fixed version, fix status) for every record entry of `release` whose
    source package is installed (binary, source, source version) below the fix, or with no fix."""
    out = set()
    for record in load(directory):
        for entry in record["affected"]:
            if release_of(entry["package"]["ecosystem"]) != release:
                continue
            fixed = next((e["fixed"] for r in entry["ranges"] for e in r["events"] if "fixed" in e), "")
            for binary, source, version in installed:
                if source != entry["package"]["name"]:
                    continue
                if not fixed:
                    out.add((binary, record["id"], "", "not_fixed"))
                elif dpkg_lt(version, fixed):
                    out.add((binary, record["id"], fixed, "fixed"))
    return out
