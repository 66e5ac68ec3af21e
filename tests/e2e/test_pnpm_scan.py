"""A Node.js application image with pnpm lockfiles (v6 and v9, real files from trivy:
tests/fixtures/node-lockfiles/SOURCES.md) scanned end to end against real GitHub-reviewed advisories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

LOCKS = FIXTURES / "node-lockfiles"


def pnpm_image(root: Path) -> str:
    manifest = json.dumps({"name": "braces", "version": "3.0.3"}).encode()
    app = layer_tar(
        [
            Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'),
            # v6: braces 3.0.2 and ansi-regex 5.0.1 among 85 packages (dev ones too), no node_modules.
            Entry("app/pnpm-lock.yaml", (LOCKS / "pnpm-v6-many.yaml").read_bytes()),
            # v9 with its installed tree: pnpm's node_modules/.pnpm layout is what is reported there.
            Entry("srv/api/pnpm-lock.yaml", (LOCKS / "pnpm-v9-many.yaml").read_bytes()),
            Entry("srv/api/node_modules/.pnpm/braces@3.0.3/node_modules/braces/package.json", manifest),
        ]
    )
    write_layout(root, [Image([Layer(app, created_by="COPY . /")])])
    return f"oci:{root}"


def test_pnpm_lockfiles_matched_against_ghsa(acrguard: Any, npm_db: Path, tmp_path: Path) -> None:
    run = acrguard("scan", pnpm_image(tmp_path / "pnpm"), "--db", str(npm_db), "--format", "json")
    assert run.code in (0, 1), run.err
    doc = run.json()
    found = {
        (f["package"]["name"], f["id"], f["installed_version"], f["fixed_version"], f["package"]["purl"])
        for f in doc["findings"]
    }
    # Matched: braces 3.0.2 (fixed in 3.0.3). Not matched: ansi-regex 5.0.1 (the fix of its range), and the
    # installed braces 3.0.3 under /srv/api.
    assert found == {("braces", "GHSA-grv7-fg5c-xmjg", "3.0.2", "3.0.3", "pkg:npm/braces@3.0.2")}
    by_name = {(p["name"], p["version"]): p for p in doc["packages"]}
    assert by_name[("braces", "3.0.2")]["evidence"] == "lockfile"
    assert by_name[("braces", "3.0.2")]["locations"] == ["/app/pnpm-lock.yaml"]
    assert by_name[("ansi-regex", "5.0.1")]["evidence"] == "lockfile"
    assert by_name[("braces", "3.0.3")]["evidence"] == "installed"
    # The v9 lockfile beside an installed tree is not read: the tree is the truth there.
    assert not any(p["locations"] == ["/srv/api/pnpm-lock.yaml"] for p in doc["packages"])
