"""The Gates page in process, routed as serve routes them: a gate configured in the gates directory judges
the scanned image (real pipeline, real store), its verdict is stored with the action taken, and the page
lists the gate and the verdict, narrowed by gate and by image through the URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.service.config import clients
from tests.azure.manage_support import REG, REPO
from tests.dashboard.support import DIGEST, Browser, html, image_path, scanned
from tests.dashboard.test_pages import rows

BASE = "/api/dashboard"
GATES = """\
version: 1
gates:
  - name: block-high
    description: No High findings in production.
    when:
      count_at_least: {{severity: Unknown, count: 2}}
      fix_status: [fixed]
    repositories: ["library/*", "{repo}"]
    actions: [notify]
  - name: elsewhere
    description: Known-exploited findings lock other images.
    when:
      kev: true
    repositories: ["other/*"]
    actions: [lock]
"""


@pytest.fixture
def gated(manage_env: Path, monkeypatch: pytest.MonkeyPatch) -> Browser:
    gates = manage_env / "gates"
    gates.mkdir()
    (gates / "gates.yaml").write_text(GATES.format(repo=REPO))
    monkeypatch.setenv("ACRGUARD_GATES", str(gates))
    clients.close()
    scanned()
    browser = Browser()
    assert browser.sign_in().status == 303
    return browser


def test_gates_page_lists_the_gates_and_the_verdict_of_the_scanned_image(gated: Browser) -> None:
    page = html(gated.get(f"{BASE}/gates"))
    configured = rows(page, "gates")
    assert len(configured) == 2
    assert "block-high" in configured[0] and "count_at_least: 2 at least Unknown" in configured[0]
    assert "fix_status: fixed" in configured[0] and "notify" in configured[0] and REPO in configured[0]
    assert "elsewhere" in configured[1] and "kev: yes" in configured[1] and "lock" in configured[1]
    (verdict,) = rows(page, "verdicts")  # `elsewhere` does not apply to the repository: no verdict
    assert "block-high" in verdict and "Failed" in verdict and "finding(s) at least Unknown (limit 2)" in verdict
    assert f"{REG}/{REPO}@" in verdict and DIGEST[:19] in verdict and "3.10" in verdict
    assert "notify: done" in verdict


def test_verdicts_filter_by_gate_and_image(gated: Browser) -> None:
    assert len(rows(html(gated.get(f"{BASE}/gates?gate=block-high")), "verdicts")) == 1
    assert "No verdicts match." in html(gated.get(f"{BASE}/gates?gate=elsewhere"))
    assert len(rows(html(gated.get(f"{BASE}/gates?registry={REG}&digest={DIGEST}")), "verdicts")) == 1
    assert "No verdicts match." in html(gated.get(f"{BASE}/gates?repository=other/thing"))
    too_long = gated.get(f"{BASE}/gates?gate={'x' * 300}")
    assert too_long.status == 400


def test_rules_and_image_pages_link_to_the_gates(gated: Browser) -> None:
    assert f'href="{BASE}/gates"' in html(gated.get(f"{BASE}/rules"))
    link = f"{BASE}/gates?registry={REG}&amp;digest={DIGEST.replace(':', '%3A')}"
    assert f'href="{link}"' in html(gated.get(image_path()))
