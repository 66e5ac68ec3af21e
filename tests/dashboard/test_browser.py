"""The dashboard in a real browser: Debian's chromium driven by Playwright against a real `acrguard serve`
next to a real registry that skopeo pushes an Alpine image to, scanned through the registry's notification.

One walk as a user would take it: sign in, overview → repository → image → finding → CVE → back; filter and
sort through the URL and through the filter form; create a rule and see the image turn Healthy, delete it
and see it Unhealthy again; requeue a dead letter; then the reading again with JavaScript off (the pages
need none). Every page is checked with axe-core (injected from npm's package; no serious or critical
violation) and saved as a screenshot under the directory printed at the start (`ACRGUARD_TEST_ARTEFACTS`,
default `build/test-artefacts`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from scanner.queue import ScanRequest
from scanner.queue.factory import open_queue
from scanner.vulndb.osv_import import import_sources
from tests.dashboard.idp import identity_provider
from tests.localhost.stack import (
    API_KEY,
    VULN,
    Serve,
    alpine_layout,
    realparts,
    serve_with_registry,
    start_serve,
    wait_for,
)
from tests.service.entra_support import Signer

playwright_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".cache/axe-core/node_modules/axe-core/axe.min.js"
REPO = "serve/alpine"
CVE = "CVE-2019-14697"


@pytest.fixture(scope="module")
def artefacts() -> Path:
    where = Path(os.environ.get("ACRGUARD_TEST_ARTEFACTS") or ROOT / "build/test-artefacts") / "dashboard"
    where.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {where}")
    return where


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():  # a fresh clone: the same script README command 2 runs
        subprocess.run(["bash", str(ROOT / "scripts/install-axe-core.sh")], check=True)
    return AXE.read_text()


# A gate that fails the pushed image and locks it: the local registry has no ACR lock API, so the lock fails
# and the Gates page says so.
GATES = """\
version: 1
gates:
  - name: lock-known-vulnerable
    description: Lock images with a known vulnerability.
    when:
      count_at_least: {severity: Unknown, count: 1}
    repositories: ["serve/*"]
    actions: [lock]
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Serve, realparts.Registry]]:
    db = tmp_path / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "gates.yaml").write_text(GATES)
    with serve_with_registry(tmp_path, db, env={"ACRGUARD_GATES": str(gates)}) as (serve, registry):
        yield serve, registry


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium under Playwright (its own browser download is not used)."""
    found = shutil.which("chromium")
    assert found, "chromium is missing: bash scripts/install-system-deps.sh installs Debian's"
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=found)
        try:
            yield launched
        finally:
            launched.close()


class Checked:
    """Each page visited: axe-core run on it, a screenshot saved."""

    def __init__(self, page: Any, axe: str, artefacts: Path) -> None:
        self.page, self.axe, self.artefacts = page, axe, artefacts
        self.shots: list[Path] = []

    def check(self, name: str) -> None:
        self.page.evaluate(self.axe)
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"{name}: accessibility violations:\n" + "\n".join(bad)
        shot = self.artefacts / f"{name}.png"
        self.page.screenshot(path=str(shot), full_page=True)
        self.shots.append(shot)


def _scanned(serve: Serve, registry: realparts.Registry, digest: str) -> None:
    def done() -> Any:
        status, body = serve.image(registry.host, digest)
        return status == 200 and body["lastScan"] and body["lastScan"]["status"] != "running" and body["findings"]

    wait_for(f"{VULN} found", done, timeout=120, context=serve.log_tail)


def test_walk_filter_rules_and_dead_letters_in_chromium(
    served: tuple[Serve, realparts.Registry], axe_source: str, artefacts: Path, tmp_path: Path
) -> None:
    serve, registry = served
    pushed = realparts.push(registry, f"oci:{alpine_layout(tmp_path / 'layout')}:latest", REPO, "3.10")
    digest = pushed.manifest.digest
    _scanned(serve, registry, digest)
    # A scan request nobody could finish, for the operations page to requeue.
    queue = open_queue(serve.workdir / "queue.sqlite")
    letter = queue.dead_letter(ScanRequest.create(registry.host, REPO, digest).to_json(), "pull failed: 503")
    with chromium() as browser:
        _walk(browser, serve, digest, letter, lambda page: Checked(page, axe_source, artefacts))


def _walk(browser: Any, serve: Serve, digest: str, letter: str, checked_pages: Callable[[Any], Checked]) -> None:
    # The pages hold no script and their CSP forbids any; axe is injected by the test (bypass_csp), which
    # needs JavaScript on. The walk's reading is repeated with JavaScript off at the end.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    checked = checked_pages(page)

    # Unauthenticated: the login page, which returns to the page asked for.
    page.goto(serve.url("/api/dashboard"))
    assert page.url.startswith(serve.url("/api/dashboard/login"))
    checked.check("login")
    assert page.get_by_role("link", name="Sign in with Microsoft").count() == 0  # Entra ID is not configured
    page.get_by_label("API key or token").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "not the API key" in page.get_by_role("alert").inner_text()
    page.get_by_label("API key or token").fill(API_KEY)
    page.get_by_role("button", name="Sign in").click()
    assert page.url == serve.url("/api/dashboard")
    cookie = next(c for c in context.cookies() if c["name"] == "acrguard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # overview → repository → image → finding → CVE → back
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"
    checked.check("overview")
    page.get_by_role("link", name=REPO, exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == REPO
    checked.check("repository")
    page.get_by_role("link", name=digest[:19]).click()
    assert "Unhealthy" in page.locator(".facts").inner_text()
    checked.check("image")
    image_url = page.url
    page.get_by_role("link", name=VULN).first.click()
    assert page.get_by_role("heading", level=1).inner_text().startswith(f"{VULN} in musl")
    assert page.get_by_role("heading", name="Remediation").is_visible()
    checked.check("finding")
    finding_url = page.url
    page.get_by_role("link", name=CVE, exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == CVE
    assert REPO in page.locator("table").last.inner_text()
    checked.check("vulnerability")
    page.go_back()
    assert page.url == finding_url

    # Filter and sort through the URL, then through the form (a plain GET: no script needed).
    page.goto(f"{image_url}?package=nothing-like-it")
    assert "No findings match." in page.locator("#findings").inner_text()
    page.goto(f"{image_url}?sort=package&package=musl")
    assert page.locator("#findings tbody tr").count() == 1
    assert page.locator("#findings th[aria-sort]").inner_text() == "Package"
    page.goto(image_url)
    page.get_by_label("Fix").select_option("not_fixed")
    page.get_by_role("button", name="Apply").click()
    assert "fix=not_fixed" in page.url and "No findings match." in page.locator("#findings").inner_text()
    page.goto(f"{image_url}?severity=Severe")
    assert "severity: expected one of" in page.get_by_role("alert").inner_text()

    # A rule hides the finding: the image turns Healthy; deleting it brings the finding back.
    page.get_by_role("link", name="Rules").click()
    page.get_by_label("Name").fill("accept-musl")
    page.get_by_label("Justification").fill("musl is never used for DNS here")
    page.get_by_label("Vulnerability ids").fill(CVE)
    page.get_by_label("Expires (last day)").fill("2099-12-31")
    page.get_by_role("button", name="Create rule").click()
    assert page.get_by_role("status").inner_text() == "Rule created."
    row = page.locator("#rules tr", has_text="accept-musl")
    assert "2099-12-31" in row.inner_text() and row.locator("td.num").first.inner_text() == "1"
    checked.check("rules")
    page.goto(image_url)
    assert "Healthy" in page.locator(".facts").inner_text() and "Unhealthy" not in page.locator(".facts").inner_text()
    page.goto(serve.url("/api/dashboard/rules"))
    page.get_by_role("button", name="Delete rule accept-musl").click()
    assert page.get_by_role("status").inner_text() == "Rule deleted."
    page.goto(image_url)
    assert "Unhealthy" in page.locator(".facts").inner_text()

    # Gates, linked from the rules: the configured gate and what it did to the pushed image.
    page.goto(serve.url("/api/dashboard/rules"))
    page.get_by_role("link", name="gates", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "Gates"
    assert "lock-known-vulnerable" in page.locator("#gates").inner_text()
    verdict = page.locator("#verdicts tbody tr").last.inner_text()  # the first verdict, at the push's scan
    assert "Failed" in verdict and f"{REPO}@" in verdict and "3.10" in verdict and "lock: failed" in verdict
    checked.check("gates")
    page.get_by_role("link", name="verdicts").first.click()
    assert "gate=lock-known-vulnerable" in page.url and page.locator("#verdicts tbody tr").count() >= 1

    # Operations: the dead letter is requeued.
    page.get_by_role("link", name="Operations").click()
    assert letter in page.locator("#dead-letters").inner_text()
    checked.check("operations")
    page.get_by_role("button", name=f"Requeue dead letter {letter}").click()
    assert page.get_by_role("status").inner_text() == f"Dead letter {letter} requeued."
    assert letter not in page.locator("#dead-letters").inner_text()

    # Reading and filtering with JavaScript off, in the same session.
    no_script = browser.new_context(java_script_enabled=False, storage_state=context.storage_state())
    plain = no_script.new_page()
    plain.goto(serve.url("/api/dashboard"))
    plain.get_by_role("link", name=REPO, exact=True).click()
    plain.get_by_role("link", name=digest[:19]).click()
    plain.get_by_label("Package").fill("musl")
    plain.get_by_role("button", name="Apply").click()
    assert "package=musl" in plain.url and plain.locator("#findings tbody tr").count() == 1
    no_script.close()

    # Signing out ends the session.
    page.get_by_role("button", name="Sign out").click()
    page.goto(serve.url("/api/dashboard/rules"))
    assert "/api/dashboard/login" in page.url
    assert [s.name for s in checked.shots] == [
        f"{n}.png"
        for n in (
            "login",
            "overview",
            "repository",
            "image",
            "finding",
            "vulnerability",
            "rules",
            "gates",
            "operations",
        )
    ]
    context.close()


def test_sign_in_with_microsoft_in_chromium(tmp_path: Path, axe_source: str, artefacts: Path) -> None:
    """With Entra ID configured the login page offers Microsoft's sign-in; clicking it goes through the
    stand-in tenant (tests/dashboard/idp.py) and back, signed in, to the page asked for."""
    db = tmp_path / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    with identity_provider(Signer()) as idp, chromium() as browser:
        serve = start_serve(tmp_path / "serve", db=db, env=idp.settings())
        try:
            context = browser.new_context(bypass_csp=True)
            page = context.new_page()
            checked = Checked(page, axe_source, artefacts)
            page.goto(serve.url("/api/dashboard/operations"))
            assert page.url.startswith(serve.url("/api/dashboard/login"))
            button = page.get_by_role("link", name="Sign in with Microsoft")
            assert button.is_visible()
            checked.check("login-entra")
            button.click()
            page.wait_for_url(serve.url("/api/dashboard/operations"))  # via the signed-in page's refresh
            assert page.get_by_role("heading", level=1).inner_text() == "Operations"
            assert idp.token_requests and idp.authorize_requests[-1]["code_challenge_method"] == "S256"
            cookie = next(c for c in context.cookies() if c["name"] == "acrguard_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            context.close()
        finally:
            serve.stop()
