"""The dashboard's functions in process, routed as `acrguard serve` routes them (its `Dispatcher`), with real
adapters: the management tests' environment (a SQLite store and queue, the Alpine secdb database, one file
rule, `ACRGUARD_API_KEY`) and the fixture archive's inventory as what a scan fetched."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from scanner.azure.dashboard import bp as dashboard_bp
from scanner.azure.manage import bp as manage_bp
from scanner.localhost.serve import Dispatcher, Reply, index_functions
from scanner.model.settings import Settings
from scanner.service.config import clients
from tests.app_index import blueprint_functions
from tests.azure.manage_support import KEY, REG, REPO, drain

INDEX = index_functions(blueprint_functions(manage_bp, dashboard_bp).values())
DIGEST = "sha256:" + "a" * 64
VULN = "CVE-2019-14697"  # musl in the fixture archive (Alpine 3.10)


@dataclass
class Browser:
    """A client that keeps the session cookie, as a browser does (no redirects followed)."""

    scheme: str = "http"
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, target: str, form: dict[str, str] | None = None, **headers: str) -> Reply:
        clients.configure(Settings.from_environ())
        sent = dict(headers)
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        reply = Dispatcher(INDEX).dispatch(method, target, sent, body, "localhost")
        set_cookie = reply.headers.get("Set-Cookie")
        if set_cookie:
            jar: SimpleCookie = SimpleCookie()
            jar.load(set_cookie)
            for name, morsel in jar.items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return reply

    def get(self, target: str, **headers: str) -> Reply:
        return self.request("GET", target, **headers)

    def post(self, target: str, form: dict[str, str], **headers: str) -> Reply:
        return self.request("POST", target, form, **headers)

    def sign_in(self, key: str = KEY) -> Reply:
        return self.post("/api/dashboard/login", {"key": key, "next": "/api/dashboard"})

    def csrf(self, target: str) -> str:
        page = html(self.get(target))
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, page[:500]
        return found.group(1)


def html(reply: Reply) -> str:
    assert reply.status == 200, (reply.status, reply.body[:600])
    return reply.body.decode()


def scanned(digest: str = DIGEST) -> None:
    """The fixture archive pushed as REG/REPO@digest and scanned, through the management API."""
    body = json.dumps({"registry": REG, "repository": REPO, "digest": digest, "tag": "3.10"}).encode()
    headers = {"x-api-key": KEY, "Content-Type": "application/json"}
    clients.configure(Settings.from_environ())
    reply = Dispatcher(INDEX).dispatch("POST", "/api/import-notifications", headers, body, "localhost")
    assert reply.status == 202, reply.body
    assert drain().processed == 1


def image_path(digest: str = DIGEST) -> str:
    return f"/api/dashboard/images/{REG}/{digest}"
