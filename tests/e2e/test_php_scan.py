"""A Laravel app image (Composer's vendor/composer/installed.json and the app's composer.lock) scanned by
`acrguard scan` against a real GitHub advisory for guzzlehttp/guzzle (tests/fixtures/php/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.e2e.conftest import FIXTURES
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

PHP = FIXTURES / "php"
APP = PHP / "laravel-app"


@pytest.fixture(scope="module")
def php_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "php.sqlite"
    import_sources(path, [str(PHP / "ghsa")])
    return path


def laravel_layout(root: Path) -> str:
    """Debian 12 with a Laravel app installed by `composer install --no-dev` (guzzle 7.4.4), and a second
    app that ships only its lockfile (trivy's, guzzle 6.5.8)."""
    base = layer_tar([Entry("etc/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')])
    app = layer_tar(
        [Entry(p.relative_to(APP).as_posix(), p.read_bytes()) for p in sorted(APP.rglob("*")) if p.is_file()]
        + [Entry("srv/legacy/composer.lock", (PHP / "lockfiles" / "trivy-composer-happy.lock").read_bytes())]
    )
    write_layout(root, [Image([Layer(base, created_by="FROM debian"), Layer(app, created_by="COPY . /var/www")])])
    return f"oci:{root}"


def test_laravel_image_packages_matched_against_packagist_advisories(
    acrguard: Any, php_db: Path, tmp_path: Path
) -> None:
    run = acrguard("scan", laravel_layout(tmp_path / "laravel"), "--db", str(php_db), "--format", "json")
    assert run.code in (0, 1), run.err
    doc = run.json()
    composer = [p for p in doc["packages"] if p["ecosystem"] == "Packagist"]
    names = {(p["name"], p["version"], p["evidence"]) for p in composer}
    # `v9.52.16` is written `9.52.16`, as Packagist advisories write versions.
    # Installed and locked: listed once, as installed.
    assert ("laravel/framework", "9.52.16", "installed") in names
    assert ("laravel/framework", "9.52.16", "lockfile") not in names
    # The lockfile's dev package is not on disk (--no-dev): not reported.
    assert not any(p["name"] == "phpunit/phpunit" for p in composer)
    [guzzle] = [p for p in composer if p["name"] == "guzzlehttp/guzzle" and p["version"] == "7.4.4"]
    assert (guzzle["evidence"], guzzle["purl"]) == ("installed", "pkg:composer/guzzlehttp/guzzle@7.4.4")
    assert len(guzzle["locations"]) == 2  # installed.json and the lockfile beside it
    assert ("guzzlehttp/guzzle", "6.5.8", "lockfile") in names
    found = {(f["package"]["name"], f["id"], f["installed_version"], f["fixed_version"]) for f in doc["findings"]}
    # 7.4.4 is in [7.0.0, 7.4.5): affected; 6.5.8 is the fix of the 6.x range: not affected.
    assert found == {("guzzlehttp/guzzle", "GHSA-25mq-v84q-4j7r", "7.4.4", "7.4.5")}
    assert doc["status"] != "Healthy"
