"""The dashboard's session cookie: signed, expiring, bound to the configured credentials, with a CSRF token."""

from __future__ import annotations

from scanner.model.settings import Settings
from scanner.service import dashboard_session as s

KEYED = Settings(api_key="key-1")
NOW = 1_800_000_000


def test_session_round_trip_and_csrf() -> None:
    value = s.issue(KEYED, NOW)
    viewer = s.session(KEYED, value, NOW + 60)
    assert viewer is not None and viewer.can_write and viewer.signed_in
    assert s.csrf_ok(viewer, viewer.csrf) and not s.csrf_ok(viewer, "") and not s.csrf_ok(viewer, "x" * 64)
    other = s.session(KEYED, s.issue(KEYED, NOW), NOW)
    assert other is not None and other.csrf != viewer.csrf  # each session its own token


def test_expired_forged_or_rotated_sessions_are_refused() -> None:
    value = s.issue(KEYED, NOW)
    assert s.session(KEYED, value, NOW + s.SESSION_SECONDS) is None
    body, signature = value.split(".")
    assert s.session(KEYED, f"{body}x.{signature}", NOW) is None
    assert s.session(KEYED, f"{body}.{signature[:-2]}AA", NOW) is None
    assert s.session(Settings(api_key="key-2"), value, NOW) is None  # a new API key ends every session
    assert s.session(Settings(), value, NOW) is None
    for junk in ("", ".", "a.b.c", "é.é", "x" * 5000):
        assert s.session(KEYED, junk, NOW) is None


def test_viewer_from_cookie_headers_or_anonymous() -> None:
    cookie = f"other=1; {s.COOKIE}={s.issue(KEYED, NOW)}"
    assert s.viewer(KEYED, {"Cookie": cookie}, NOW) is not None
    header = s.viewer(KEYED, {"X-Api-Key": "key-1"}, NOW)
    assert header is not None and header.can_write and not header.signed_in and s.csrf_ok(header, "")
    assert s.viewer(KEYED, {"X-Api-Key": "wrong"}, NOW) is None
    assert s.viewer(Settings(allow_anonymous=True, api_key="key-1"), {}, NOW) is None  # a key configured: required
    reader = s.viewer(Settings(allow_anonymous=True), {}, NOW)
    assert reader is not None and not reader.can_write and not s.csrf_ok(reader, "")
    assert s.viewer(Settings(), {}, NOW) is None


def test_login_accepts_the_key_or_the_token_only() -> None:
    both = Settings(api_key="key-1", api_token="token-1")
    assert s.credential_ok(both, "key-1") and s.credential_ok(both, " token-1 ")
    assert not s.credential_ok(both, "") and not s.credential_ok(Settings(), "")


def test_cookie_flags() -> None:
    plain = s.set_cookie("v", secure=False)
    assert plain == f"{s.COOKIE}=v; Path=/api/dashboard; Max-Age={s.SESSION_SECONDS}; HttpOnly; SameSite=Strict"
    assert s.set_cookie("", secure=True).endswith("Max-Age=0; HttpOnly; SameSite=Strict; Secure")
