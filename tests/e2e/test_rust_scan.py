"""A Rust application image scanned end to end: two real Cargo.lock files and a real `cargo auditable`
program (tests/fixtures/rust/SOURCES.md) against real GitHub-reviewed crates.io advisories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

RUST = FIXTURES / "rust"


@pytest.fixture(scope="module")
def crates_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "crates.sqlite"
    import_sources(path, [str(RUST / "advisories")])
    return path


def rust_image(root: Path) -> str:
    app = layer_tar(
        [
            Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'),
            # trivy's CI test application: ammonia 1.9.0 among 70 crates.
            Entry("app/Cargo.lock", (RUST / "trivy-ci-test.lock").read_bytes()),
            # Another project's lockfile: regex 1.7.3, past the regex advisory's fix.
            Entry("src/tools/Cargo.lock", (RUST / "v3-many.lock").read_bytes()),
            Entry("usr/local/bin/uses_json", (RUST / "auditable-serde-json").read_bytes(), mode=0o755),
            # A crate's own lockfile in Cargo's download cache: not what anything here was built with.
            Entry(
                "root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/x-1.0.0/Cargo.lock",
                (RUST / "trivy-ci-test.lock").read_bytes().replace(b'"1.9.0"', b'"2.0.0"'),
            ),
        ]
    )
    write_layout(root, [Image([Layer(app, created_by="COPY . /")])])
    return f"oci:{root}"


def test_rust_image_lockfiles_and_auditable_binary(acrguard: Any, crates_db: Path, tmp_path: Path) -> None:
    ref = rust_image(tmp_path / "rust")
    run = acrguard("scan", ref, "--db", str(crates_db), "--format", "json")
    assert run.code in (0, 1), run.err
    doc = run.json()
    found = {(f["package"]["name"], f["id"], f["installed_version"], f["fixed_version"]) for f in doc["findings"]}
    # Matched: ammonia 1.9.0 is before 2.1.3, the fix of the range that starts at 0.
    # Not matched: regex 1.7.3 is past GHSA-m5pq-gvj9-9vr8's fix (1.5.5).
    assert found == {("ammonia", "GHSA-5325-xw5m-phm3", "1.9.0", "2.1.3")}
    (ammonia,) = doc["findings"]
    assert ammonia["aliases"] == ["CVE-2021-38193"]
    assert ammonia["package"]["purl"] == "pkg:cargo/ammonia@1.9.0"
    assert doc["status"] == "Unhealthy"

    crates = {
        (p["name"], p["version"], p["evidence"], p["locations"][0])
        for p in doc["packages"]
        if p["purl"].startswith("pkg:cargo/")
    }
    assert ("ammonia", "1.9.0", "lockfile", "/app/Cargo.lock") in crates
    assert ("regex", "1.7.3", "lockfile", "/src/tools/Cargo.lock") in crates
    assert ("serde_json", "1.0.135", "binary", "/usr/local/bin/uses_json") in crates
    assert not any(loc.startswith("/root/.cargo/") for _, _, _, loc in crates)
    assert not any(name in ("normal", "uses_json") for name, _, _, _ in crates)  # the applications themselves
