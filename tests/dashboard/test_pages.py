"""The dashboard's pages in process, against a real store holding a scanned image."""

from __future__ import annotations

from pathlib import Path

from tests.dashboard.support import VULN, Browser, html, image_path, scanned


def test_smoke(manage_env: Path) -> None:
    scanned()
    browser = Browser()
    assert browser.sign_in().status == 303
    for target in ("/api/dashboard", "/api/dashboard/images", image_path(), f"/api/dashboard/vulnerabilities/{VULN}",
                   "/api/dashboard/rules", "/api/dashboard/operations"):
        html(browser.get(target))
