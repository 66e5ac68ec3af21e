"""The dashboard's pages in process, routed as serve routes them, against a real store holding a scanned
image: who may see and change what, every page's content, the URL's filters and sorts, the downloads, and
a rule created and deleted through the forms changing the image's health."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlencode

import azure.functions as func
import pytest

from scanner.azure.dashboard import dashboard_login
from tests.azure.manage_support import REG, REPO
from tests.dashboard.support import VULN, Browser, html, image_path, scanned

BASE = "/api/dashboard"


@pytest.fixture
def browser(manage_env: Path) -> Browser:
    scanned()
    signed_in = Browser()
    assert signed_in.sign_in().status == 303
    return signed_in


def rows(page: str, table_id: str) -> list[str]:
    body = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr.*?</tr>", body.split("<tbody>", 1)[1], re.S)


def test_pages_need_a_session_and_the_login_sets_a_strict_cookie(manage_env: Path) -> None:
    anonymous = Browser()
    reply = anonymous.get(f"{BASE}/images?registry={REG}")
    assert reply.status == 303
    assert reply.headers["Location"] == f"{BASE}/login?next=%2Fapi%2Fdashboard%2Fimages%3Fregistry%3D{REG}"
    assert "<form" in html(anonymous.get(reply.headers["Location"]))
    wrong = anonymous.sign_in("not-the-key")
    assert wrong.status == 401 and b"not the API key" in wrong.body and not anonymous.cookies
    ok = anonymous.post(f"{BASE}/login", {"key": "manage-key", "next": f"{BASE}/images?registry={REG}"})
    assert (ok.status, ok.headers["Location"]) == (303, f"{BASE}/images?registry={REG}")
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and f"Path={BASE}" in cookie
    assert "Secure" not in cookie  # plain http (serve on localhost): a Secure cookie would never come back
    assert html(anonymous.get(f"{BASE}/images"))
    # Over https (Azure) the cookie is Secure; a `next` elsewhere is replaced by the overview.
    body = urlencode({"key": "manage-key", "next": "https://evil.example/"}).encode()
    request = func.HttpRequest("POST", f"https://acrguard.example{BASE}/login", headers={}, body=body)
    tls = dashboard_login(request)
    assert tls.headers["Location"] == BASE and "; Secure" in tls.headers["Set-Cookie"]


def test_api_key_header_reads_and_anonymous_reads_only_when_open(
    manage_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Browser().get(BASE, **{"x-api-key": "manage-key"}).status == 200
    assert Browser().get(BASE, **{"x-api-key": "wrong"}).status == 303
    monkeypatch.delenv("ACRGUARD_API_KEY")
    monkeypatch.setenv("ACRGUARD_ALLOW_ANONYMOUS", "true")
    reader = Browser()
    page = html(reader.get(f"{BASE}/rules"))
    assert "New rule" not in page and "Sign in with the API key" in page
    refused = reader.post(f"{BASE}/rules", {"name": "x", "justification": "y", "ids": VULN})
    assert refused.status == 403


def test_overview_counts_the_fleet(browser: Browser) -> None:
    page = html(browser.get(BASE))
    assert REG in page and REPO in page
    repo_row = next(r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if f">{REPO}</a>" in r)
    cells = re.findall(r'<td class="num">(?:<a[^>]*>)?(\d+)', repo_row)
    assert cells == ["1", "0", "0", "0", "0", "1"]  # Unhealthy, Healthy, NotAssessed, Incomplete, Other, total
    assert "<dt>Active findings</dt><dd>8</dd>" in page
    assert "<dt>Fixable</dt><dd>8 (100%)</dd>" in page
    assert "ALPINE-CVE-2019-14697" in page and '<svg id="trend"' in page and "Alpine:v3.10" in page
    assert "1 succeeded, 0 failed" in page
    # The trend's span and the repository filter come from the URL.
    assert '<a href="/api/dashboard?days=7" aria-current="true">' in html(browser.get(f"{BASE}?days=7"))
    assert REPO not in html(browser.get(f"{BASE}?registry=elsewhere.azurecr.io")).split("Registries")[1]
    bad = browser.get(f"{BASE}?days=5")
    assert bad.status == 400 and b"days: expected one of 7, 30, 90" in bad.body


def test_image_findings_filter_and_sort_by_url(browser: Browser) -> None:
    page = html(browser.get(image_path()))
    assert "Unhealthy" in page and "3.10" in page and "/bin/sh -c" in page  # health, tag, layer history
    assert len(rows(page, "findings")) == 8
    musl = html(browser.get(image_path() + "?package=musl&sort=package"))
    packages = re.findall(r"<td>(musl[^<]*)</td>", musl)
    assert packages == ["musl", "musl-utils"]
    assert len(rows(html(browser.get(image_path() + "?fix=not_fixed")), "findings")) == 1  # "No findings match."
    assert len(rows(html(browser.get(image_path() + "?origin=base&severity=Unknown")), "findings")) == 8
    assert browser.get(image_path() + "?severity=Severe").status == 400
    missing = browser.get(f"{BASE}/images/{REG}/sha256:{'0' * 64}")
    assert missing.status == 404


def test_finding_vulnerability_and_downloads(browser: Browser) -> None:
    page = html(browser.get(image_path()))
    link = re.search(r'href="(/api/dashboard/images/[^"]+/findings/[^"]+)">ALPINE-CVE-2019-14697', page)
    assert link
    finding = html(browser.get(link.group(1).replace("&amp;", "&")))
    assert "Remediation" in finding and f'href="{BASE}/vulnerabilities/{VULN}"' in finding
    vuln = html(browser.get(f"{BASE}/vulnerabilities/{VULN}"))
    assert "musl" in vuln and "3.10" in vuln and "per the Alpine secdb" in vuln
    assert browser.get(f"{BASE}/vulnerabilities/CVE-0000-0000").status == 404
    sbom = browser.get(image_path() + "/sbom")
    assert sbom.status == 200 and "attachment" in sbom.headers["Content-Disposition"]
    assert json.loads(sbom.body)["bomFormat"] == "CycloneDX"
    sarif = json.loads(browser.get(image_path() + "/sarif").body)
    assert len(sarif["runs"][0]["results"]) == 8


def test_rule_form_changes_health_and_needs_the_csrf_token(browser: Browser) -> None:
    token = browser.csrf(f"{BASE}/rules")
    form = {"name": "accept-all", "justification": "reviewed", "packages": "*", "csrf": token}
    assert browser.post(f"{BASE}/rules", {**form, "csrf": "forged"}).status == 403
    refused = browser.post(f"{BASE}/rules", {**form, "name": "bad name"})
    assert refused.status == 400 and b"name" in refused.body
    created = browser.post(f"{BASE}/rules", form)
    assert (created.status, created.headers["Location"]) == (303, f"{BASE}/rules?done=created")
    rules = html(browser.get(f"{BASE}/rules?done=created"))
    row = next(r for r in rows(rules, "rules") if "accept-all" in r)
    assert '<td class="num">8</td>' in row and '<td class="num">1</td>' in row  # hides 8 findings in 1 image
    assert ">Healthy<" in html(browser.get(image_path()))
    deleted = browser.post(f"{BASE}/rules/accept-all/delete", {"csrf": token})
    assert deleted.status == 303
    assert ">Unhealthy<" in html(browser.get(image_path()))
    # The file rule cannot be deleted from the page.
    assert browser.post(f"{BASE}/rules/file-accept-nothing/delete", {"csrf": token}).status == 409


def test_sign_out_ends_the_session(browser: Browser) -> None:
    token = browser.csrf(f"{BASE}/rules")
    out = browser.post(f"{BASE}/logout", {"csrf": token})
    assert out.status == 303 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert browser.get(BASE).status == 303


def test_stylesheet_is_public_and_overridable(manage_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reply = Browser().get(f"{BASE}/static/dashboard.css")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/css")
    user = manage_env / "dashboard"
    user.mkdir()
    (user / "dashboard.css").write_text("body { color: red }")
    monkeypatch.setenv("ACRGUARD_DASHBOARD_TEMPLATES", str(user))
    assert Browser().get(f"{BASE}/static/dashboard.css").body == b"body { color: red }"


def test_pages_allow_no_script(browser: Browser) -> None:
    reply = browser.get(BASE)
    assert "script-src" not in reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert b"<script" not in reply.body


def test_operations_show_the_queue_depth(browser: Browser) -> None:
    from scanner.service.config import clients
    from tests.queue.support import make_request

    def depth() -> int:
        found = re.search(r'id="queue-depth">(\d+) scan requests? queued', html(browser.get(f"{BASE}/operations")))
        assert found is not None
        return int(found.group(1))

    before = depth()
    clients.queue().send(make_request(4242))
    assert depth() == before + 1


def test_a_rules_expiry_changes_what_it_hides(browser: Browser) -> None:
    token = browser.csrf(f"{BASE}/rules")
    form = {"name": "accept-for-now", "justification": "reviewed", "packages": "*", "csrf": token}
    assert browser.post(f"{BASE}/rules", form).status == 303
    assert ">Healthy<" in html(browser.get(image_path()))
    # Expired yesterday: the findings show again; cleared: hidden again; a date that is none: 400, nothing changed.
    past = browser.post(f"{BASE}/rules/accept-for-now/expiry", {"expires": "2020-01-01", "csrf": token})
    assert (past.status, past.headers["Location"]) == (303, f"{BASE}/rules?done=expiry")
    assert ">Unhealthy<" in html(browser.get(image_path()))
    row = next(r for r in rows(html(browser.get(f"{BASE}/rules")), "rules") if "accept-for-now" in r)
    assert "2020-01-01 (expired)" in row
    assert browser.post(f"{BASE}/rules/accept-for-now/expiry", {"expires": "2020-02-31", "csrf": token}).status == 400
    assert browser.post(f"{BASE}/rules/accept-for-now/expiry", {"expires": "", "csrf": token}).status == 303
    assert ">Healthy<" in html(browser.get(image_path()))
    assert browser.post(f"{BASE}/rules/accept-for-now/expiry", {"expires": "", "csrf": "forged"}).status == 403
    assert browser.post(f"{BASE}/rules/file-accept-nothing/expiry", {"expires": "", "csrf": token}).status == 409
    assert browser.post(f"{BASE}/rules/accept-for-now/delete", {"csrf": token}).status == 303
