"""A Rails app image (gems installed under /usr/local/bundle/specifications, the app's Gemfile.lock in /app)
scanned by `acrguard scan` against real GitHub advisories for nokogiri (tests/fixtures/ruby/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

RUBY = FIXTURES / "ruby"
BUNDLE = "usr/local/bundle/specifications"


@pytest.fixture(scope="module")
def ruby_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "ruby.sqlite"
    import_sources(path, [str(RUBY / "ghsa")])
    return path


def rails_layout(root: Path) -> str:
    """Debian 12 with a Rails app: nokogiri 1.16.0 (x86_64-linux) installed by Bundler, and the app's lockfile
    naming the same nokogiri build beside its other gems."""
    base = layer_tar([Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')])
    specs = [
        Entry(f"{BUNDLE}/{spec.name}", spec.read_bytes())
        for spec in [*sorted((RUBY / "specifications").iterdir()), *(RUBY / "rails-app" / BUNDLE).iterdir()]
    ]
    gems = layer_tar(specs)
    app = layer_tar([Entry("app/Gemfile.lock", (RUBY / "lockfiles" / "many-git-path-platform.lock").read_bytes())])
    layers = [Layer(base, created_by="FROM debian"), Layer(gems, created_by="RUN bundle install")]
    write_layout(root, [Image([*layers, Layer(app, created_by="COPY . /app")])])
    return f"oci:{root}"


def test_rails_image_gems_matched_against_rubygems_advisories(acrguard: Any, ruby_db: Path, tmp_path: Path) -> None:
    run = acrguard("scan", rails_layout(tmp_path / "rails"), "--db", str(ruby_db), "--format", "json")
    assert run.code in (0, 1), run.err
    doc = run.json()
    gems = [p for p in doc["packages"] if p["ecosystem"] == "RubyGems"]
    by_evidence = {(p["name"], p["version"], p["evidence"]) for p in gems}
    # Installed gemspecs, and the lockfile's GEM gems (not its PATH google-cloud-errors or GIT turbolinks).
    assert {("bundler", "2.1.4", "installed"), ("rake", "13.0.3", "installed"), ("rails", "4.1.1", "lockfile")} <= (
        by_evidence
    )
    assert not {p["name"] for p in gems} & {"google-cloud-errors", "turbolinks", "bad-entry"}
    # The same nokogiri build seen twice, installed and locked: listed once, as installed, with both files.
    [nokogiri] = [p for p in gems if p["name"] == "nokogiri"]
    assert (nokogiri["evidence"], nokogiri["version"], nokogiri["purl"]) == (
        "installed",
        "1.16.0",
        "pkg:gem/nokogiri@1.16.0",
    )
    assert "/app/Gemfile.lock" in nokogiri["locations"]
    found = {(f["package"]["name"], f["id"], f["installed_version"], f["fixed_version"]) for f in doc["findings"]}
    # nokogiri 1.16.0 (x86_64-linux build) < 1.16.2: affected. GHSA-pxvg-2qj5-37jq ends at 1.14.3: not.
    assert found == {("nokogiri", "GHSA-xc9x-jj77-9p9j", "1.16.0", "1.16.2")}
    assert doc["status"] != "Healthy"
