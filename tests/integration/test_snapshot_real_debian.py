"""`acrguard scan` of the real mmdebstrap Debian bookworm image with no database chosen: the bundled snapshot.
Its Debian 12 records give exactly the findings dpkg predicts for the image's packages (none while the image
is as new as the newest fix the records know), and a scan that finds nothing in a selection is not Healthy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration import realparts
from tests.snapshot_oracle import DEBIAN, expected_findings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def snapshot_scan(debian_images: realparts.BuiltImages, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "ACRGUARD_DB"}
    env["HOME"] = str(tmp_path_factory.mktemp("home"))  # no ~/.cache/acrguard/vulndb.sqlite: the snapshot
    result = subprocess.run(
        [sys.executable, "-m", "scanner", "scan", debian_images.oci("bookworm"), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert result.returncode in (0, 1), result.stderr
    assert not list(Path(env["HOME"], ".cache", "acrguard").glob("vulndb.sqlite"))
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_real_bookworm_findings_equal_dpkg_oracle_over_the_snapshot(
    snapshot_scan: dict[str, Any], expected_dpkg: set[tuple[str, str, str, str]]
) -> None:
    installed = {(name, source, source_version) for name, _version, source, source_version in expected_dpkg}
    got = {(f["package"]["name"], f["id"], f["fixed_version"], f["fix_status"]) for f in snapshot_scan["findings"]}
    assert got == expected_findings(DEBIAN, "Debian:12", installed)


def test_real_bookworm_with_only_the_snapshot_is_assessed_or_not_assessed_never_healthy(
    snapshot_scan: dict[str, Any],
) -> None:
    # Findings from the selection make it Unhealthy; without any, a selection proves nothing: NotAssessed.
    [debian] = [c for c in snapshot_scan["coverage"] if c["ecosystem"] == "Debian:12"]
    assert (debian["advisories"], debian["selection"], debian["assessed"]) == (91, True, False)
    if snapshot_scan["findings"]:
        assert snapshot_scan["status"] == "Unhealthy"
    else:
        assert snapshot_scan["status"] == "NotAssessed"
        assert snapshot_scan["reason"] == (
            "the database holds only a selection of Debian:12 advisories (91, the bundled snapshot): "
            "run `acrguard db update`"
        )
