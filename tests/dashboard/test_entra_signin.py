"""Sign-in with Microsoft, end to end: a real `acrguard serve` process configured for a tenant whose
sign-in endpoints a local stand-in plays (tests/dashboard/idp.py: real RS256 ID tokens, a real JWKS, codes
redeemed once against the PKCE verifier and the client secret), driven over real HTTP by a client that
keeps cookies as a browser does and follows no redirect by itself.

The whole flow (login page → Microsoft → callback → session), the app roles deciding reader or writer,
and every way a callback is refused: no flow cookie, another state, a replayed code, another nonce, no
role; failed callbacks count against the sign-in limit like wrong keys."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.dashboard.idp import CLIENT_ID, USER, IdentityProvider, identity_provider
from tests.localhost.stack import Serve, start_serve
from tests.service.entra_support import TENANT, Signer

ROOT = Path(__file__).resolve().parents[2]
BASE = "/api/dashboard"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    set_cookies: list[str]
    body: str


@dataclass
class Client:
    """Cookies kept by name and path; redirects returned, not followed."""

    cookies: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (value, path)
    # The address this client connects from (any of 127/8 reaches serve on 127.0.0.1): serve counts failed
    # sign-ins per peer address, whatever `X-Forwarded-For` a client writes.
    source: str = "127.0.0.1"

    def get(self, url: str, **headers: str) -> Reply:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1", url
        sent = dict(headers)
        jar = [f"{n}={v}" for n, (v, p) in self.cookies.items() if parts.path.startswith(p)]
        if jar:
            sent["Cookie"] = "; ".join(jar)
        connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=30, source_address=(self.source, 0))
        try:
            connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=sent)
            response = connection.getresponse()
            reply = Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.msg.get_all("Set-Cookie") or [],
                response.read().decode(errors="replace"),
            )
        finally:
            connection.close()
        for header in reply.set_cookies:
            jar_in: SimpleCookie = SimpleCookie()
            jar_in.load(header)
            for name, morsel in jar_in.items():
                if morsel.value:
                    self.cookies[name] = (morsel.value, morsel["path"] or "/")
                else:
                    self.cookies.pop(name, None)
        return reply


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, IdentityProvider]]:
    workdir = tmp_path_factory.mktemp("dashboard-entra")
    db = workdir / "vulndb.sqlite"
    import_sources(db, [str(ROOT / "tests/fixtures/osv/alpine-secdb/v3.10")])
    with identity_provider(Signer()) as idp:
        serve = start_serve(workdir / "serve", db=db, env=idp.settings())
        try:
            yield serve, idp
        finally:
            serve.stop()


@pytest.fixture
def idp(stack: tuple[Serve, IdentityProvider]) -> Iterator[IdentityProvider]:
    _, provider = stack
    provider.roles, provider.nonce = ("Findings.Write",), None
    yield provider


def start(serve: Serve, client: Client, target: str = f"{BASE}/rules") -> str:
    """Login page → the Microsoft button → the authorize URL serve sends the browser to."""
    page = client.get(serve.url(f"{BASE}/login?{urlencode({'next': target})}"))
    assert page.status == 200 and "Sign in with Microsoft" in page.body
    link = re.search(r'href="([^"]*/login/entra[^"]*)"', page.body)
    assert link, page.body
    started = client.get(serve.url(link.group(1).replace("&amp;", "&")))
    assert started.status == 303, started.body
    flow = next(c for c in started.set_cookies if c.startswith("acrguard_signin="))
    assert "HttpOnly" in flow and "SameSite=Lax" in flow and "Path=/api/dashboard/login" in flow
    return started.headers["location"]


def at_microsoft(client: Client, authorize_url: str) -> str:
    """The stand-in signs the user in and sends the browser back: the callback URL."""
    back = client.get(authorize_url)
    assert back.status == 302, back.body
    return back.headers["location"]


def test_the_whole_flow_makes_a_writer_session(stack: tuple[Serve, IdentityProvider], idp: IdentityProvider) -> None:
    serve, _ = stack
    client = Client()
    assert client.get(serve.url(f"{BASE}/rules")).status == 303  # not signed in yet
    authorize = start(serve, client)
    parts = urlsplit(authorize)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}" == idp.authority
    assert parts.path == f"/{TENANT}/oauth2/v2.0/authorize"
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert query["redirect_uri"] == serve.url(f"{BASE}/login/callback")  # from the configuration
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32 and query["state"] != query["nonce"]

    callback = at_microsoft(client, authorize)
    done = client.get(callback)
    assert done.status == 200, done.body
    assert f"as {USER}" in done.body and 'http-equiv="refresh"' in done.body
    session = next(c for c in done.set_cookies if c.startswith("acrguard_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session
    assert f'content="0; url={BASE}/rules"' in done.body  # back where the user was going
    # What the token endpoint was sent: the code, the verifier of the challenge, the secret, the same URI.
    redeemed = idp.token_requests[-1]
    assert redeemed["redirect_uri"] == query["redirect_uri"] and redeemed["client_secret"]
    rules = client.get(serve.url(f"{BASE}/rules"))
    assert rules.status == 200 and "New rule" in rules.body  # a writer's form


def test_a_reader_role_reads_but_cannot_change(stack: tuple[Serve, IdentityProvider], idp: IdentityProvider) -> None:
    serve, _ = stack
    idp.roles = ("Findings.Read",)
    client = Client()
    done = client.get(at_microsoft(client, start(serve, client)))
    assert done.status == 200 and "to read" in done.body
    rules = client.get(serve.url(f"{BASE}/rules"))
    assert rules.status == 200 and "New rule" not in rules.body
    assert client.get(serve.url(BASE)).status == 200


def test_no_role_is_refused(stack: tuple[Serve, IdentityProvider], idp: IdentityProvider) -> None:
    serve, _ = stack
    idp.roles = None
    client = Client()
    done = client.get(at_microsoft(client, start(serve, client)))
    assert done.status == 403 and "no app role" in done.body
    assert "acrguard_session" not in client.cookies


def test_callbacks_that_do_not_complete_this_browsers_sign_in_are_refused(
    stack: tuple[Serve, IdentityProvider], idp: IdentityProvider
) -> None:
    serve, _ = stack
    # Another browser's callback (no flow cookie here): refused before any code is redeemed.
    victim = Client(source="127.0.0.10")
    callback = at_microsoft(victim, start(serve, victim))
    redeemed = len(idp.token_requests)
    attacker = Client(source="127.0.0.11")
    refused = attacker.get(callback)
    assert refused.status == 401 and "no sign-in in progress" in refused.body
    assert len(idp.token_requests) == redeemed
    # The right cookie with another state.
    tampered = re.sub(r"state=[^&]+", "state=forged", callback)
    assert "does not match" in victim.get(tampered).body
    # The real callback signs in; replaying it fails at the token endpoint (each code once).
    assert victim.get(callback).status == 200
    replay = victim.get(callback)
    assert replay.status == 401 and "AADSTS70008" in replay.body
    # An ID token whose nonce is not this sign-in's.
    idp.nonce = "another-sign-in"
    other = Client(source="127.0.0.12")
    wrong_nonce = other.get(at_microsoft(other, start(serve, other)))
    assert wrong_nonce.status == 401 and "nonce" in wrong_nonce.body
    # The user cancelled at Microsoft: the error is shown, not counted as a guess.
    cancelled = Client().get(serve.url(f"{BASE}/login/callback?error=access_denied&error_description=cancelled"))
    assert cancelled.status == 401 and "access_denied (cancelled)" in cancelled.body


def test_failed_callbacks_are_rate_limited(stack: tuple[Serve, IdentityProvider]) -> None:
    serve, _ = stack
    # Each guess claims another forwarded address: serve appends the peer's, which decides.
    for n in range(5):
        guess = Client(source="127.0.0.77").get(
            serve.url(f"{BASE}/login/callback?code=guess{n}&state=x"), **{"X-Forwarded-For": f"198.51.100.{n}"}
        )
        assert guess.status == 401
    blocked = Client(source="127.0.0.77").get(serve.url(f"{BASE}/login/callback?code=guess&state=x"))
    assert blocked.status == 429 and int(blocked.headers["retry-after"]) >= 1
    assert '"code": "TooManyRequests"' in blocked.body
    # Another peer is still heard.
    other = Client(source="127.0.0.78").get(serve.url(f"{BASE}/login/callback?code=guess&state=x"))
    assert other.status == 401
