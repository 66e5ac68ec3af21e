"""A Node.js application image with yarn lockfiles (v1 and Berry, real files from osv-scalibr and trivy:
tests/fixtures/node-lockfiles/SOURCES.md) scanned end to end against a real GitHub-reviewed advisory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

LOCKS = FIXTURES / "node-lockfiles"


def yarn_image(root: Path) -> str:
    app = layer_tar(
        [
            Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'),
            # yarn v1: ansi-regex 2.1.1 and 3.0.0 (an application bundled without node_modules).
            Entry("app/yarn.lock", (LOCKS / "yarn-v1-many.lock").read_bytes()),
            # Berry: ansi-regex 5.0.1 and 6.0.1 through an alias, and a workspace.
            Entry("srv/berry/yarn.lock", (LOCKS / "yarn-berry-with-aliases.lock").read_bytes()),
        ]
    )
    write_layout(root, [Image([Layer(app, created_by="COPY . /")])])
    return f"oci:{root}"


def test_yarn_lockfiles_matched_against_ghsa(acrguard: Any, npm_db: Path, tmp_path: Path) -> None:
    run = acrguard("scan", yarn_image(tmp_path / "yarn"), "--db", str(npm_db), "--format", "json")
    assert run.code in (0, 1), run.err
    doc = run.json()
    found = {(f["package"]["name"], f["id"], f["installed_version"], f["fixed_version"]) for f in doc["findings"]}
    # Matched: 3.0.0 is in [3.0.0, 3.0.1). Not matched: 2.1.1 (before every range), and Berry's 5.0.1 and
    # 6.0.1 (the fixed versions themselves).
    assert found == {("ansi-regex", "GHSA-93q8-gq69-wqmw", "3.0.0", "3.0.1")}
    assert doc["status"] == "Unhealthy"
    ansi = {(p["version"], p["evidence"], p["locations"][0]) for p in doc["packages"] if p["name"] == "ansi-regex"}
    assert ansi == {
        ("2.1.1", "lockfile", "/app/yarn.lock"),
        ("3.0.0", "lockfile", "/app/yarn.lock"),
        ("5.0.1", "lockfile", "/srv/berry/yarn.lock"),
        ("6.0.1", "lockfile", "/srv/berry/yarn.lock"),
    }
    assert not any(p["name"] in ("mine", "ansi-regex-cjs", "babel-hvi") for p in doc["packages"])
