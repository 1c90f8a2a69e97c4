"""Users, password hashes, sessions, CSRF and login rate limiting of the gateway's web layer.

Real SQLite files, real scrypt, aiohttp's real test server; the clock is a FakeClock so expiry and the
rate-limit window can be crossed without waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from civiq.clock import FakeClock
from civiq.gateway.web import AuthError, UserStore, check_password, create_app, hash_password
from civiq.gateway.web.auth import SessionCodec
from civiq.gateway.web.context import CTX
from civiq.gateway.web.memory import sample_view
from civiq.tickettoken import ticket_token, verify_ticket_token

SECRET = b"auth-test-secret-0123456789"


# ------------------------------------------------------------------------------------------ hashing, store
def test_password_hash_round_trip_is_salted() -> None:
    a, b = hash_password("Mật khẩu dài 123"), hash_password("Mật khẩu dài 123")
    assert a != b  # a fresh salt each time
    assert a.startswith("scrypt$16384$8$1$")
    assert check_password("Mật khẩu dài 123", a) and check_password("Mật khẩu dài 123", b)
    assert not check_password("Mat khau dai 123", a)
    for broken in ("", "scrypt$1$2", "bcrypt$x$y$z$a$b", a.replace("$8$", "$x$"), "scrypt$99999999$8$1$AA$AA"):
        assert check_password("Mật khẩu dài 123", broken) is False


def test_user_store_validates_and_persists(tmp_path) -> None:
    path = tmp_path / "users.db"
    s = UserStore(path)
    s.add_user("lan", "long enough", "center_manager", center="hcm-q1")
    for args, why in ((("x y", "long enough", "viewer"), "user name"),
                      (("a", "long enough", "boss"), "role"),
                      (("b", "long enough", "center_manager"), "needs a center"),
                      (("c", "short", "viewer"), "at least 8"),
                      (("d", "long enough", "viewer", "Bad Center"), "center id"),
                      (("e", "long enough", "province_admin", "hcm-q1"), "not bound"),
                      (("lan", "long enough", "viewer"), "already exists")):
        with pytest.raises(AuthError, match=why):
            s.add_user(*args)
    s.close()
    again = UserStore(path)  # the same file, reopened: the user and the hash survived
    user = again.verify("lan", "long enough")
    assert user is not None and (user.role, user.center) == ("center_manager", "hcm-q1")
    assert again.verify("lan", "wrong password") is None and again.verify("nobody", "long enough") is None
    again.set_password("lan", "another long one")
    assert again.verify("lan", "long enough") is None and again.verify("lan", "another long one")
    again.close()


def test_session_cookie_signature_and_ticket_tokens() -> None:
    codec = SessionCodec(SECRET)
    value = codec.encode("sid123", 2_000_000_000)
    assert codec.decode(value, now=1.0) == ("sid123", 2_000_000_000)
    assert codec.decode(value.replace("2000000000", "2000000001"), now=1.0) is None  # expiry extended by hand
    assert codec.decode(value, now=2_000_000_001) is None  # expired
    assert SessionCodec(b"another secret 0123456").decode(value, now=1.0) is None
    assert codec.check_csrf("sid123", codec.csrf("sid123")) and not codec.check_csrf("sid124", codec.csrf("sid123"))

    tok = ticket_token(SECRET, "hcm-q1", "2026-01-05", "A001")
    assert verify_ticket_token(SECRET, tok) == ("hcm-q1", "2026-01-05", "A001")
    payload, mac = tok.split(".")
    other = ticket_token(SECRET, "hcm-q1", "2026-01-05", "A002").split(".")[0]
    assert verify_ticket_token(SECRET, f"{other}.{mac}") is None  # someone else's ticket, our MAC
    assert verify_ticket_token(SECRET, "garbage") is None and verify_ticket_token(SECRET, "a.b.c") is None
    with pytest.raises(ValueError):
        ticket_token(SECRET, "hcm-q1", "2026-01-05", "A001|x")


# ------------------------------------------------------------------------------------------ over HTTP
@pytest.fixture
async def server(tmp_path, clock: FakeClock) -> AsyncIterator[TestServer]:
    users = UserStore(tmp_path / "users.db")
    users.add_user("lan", "lan-pass-123", "center_manager", center="hcm-q1")
    users.add_user("tech", "tech-pass-123", "technician")
    app = create_app(sample_view(clock), users, secret=SECRET, public_base_url="http://gw.test", clock=clock,
                     session_ttl_s=3600)
    srv = TestServer(app)
    await srv.start_server()
    yield srv
    await srv.close()
    users.close()


@pytest.fixture
async def client(server: TestServer) -> AsyncIterator[TestClient]:
    c = TestClient(server)
    await c.start_server()
    yield c
    await c.close()


async def login(c: TestClient, user: str, password: str, **headers: str):
    return await c.post("/login", data={"user": user, "password": password, "next": "/centers/hcm-q1"},
                        allow_redirects=False, headers=headers)


async def test_login_sets_a_strict_httponly_cookie_and_logout_ends_the_session(client: TestClient) -> None:
    r = await client.get("/", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] in ("/login?next=/", "/login?next=%2F")
    r = await login(client, "lan", "lan-pass-123")
    assert r.status == 303 and r.headers["Location"] == "/centers/hcm-q1"
    cookie = r.headers["Set-Cookie"]
    assert "civiq_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Max-Age=3600" in cookie
    me = await (await client.get("/api/v1/me")).json()
    assert (me["name"], me["role"], me["center"]) == ("lan", "center_manager", "hcm-q1")
    page = await client.get("/centers/hcm-q1")
    assert page.status == 200 and "Phường Bến Thành" in await page.text()

    old = client.session.cookie_jar.filter_cookies(client.make_url("/"))["civiq_session"].value
    r = await client.post("/logout", data={"csrf_token": me["csrf"]}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/login"
    assert (await client.get("/api/v1/me")).status == 401
    # the old cookie, replayed after logout, is dead on the server side too
    r = await client.get("/api/v1/me", cookies={"civiq_session": old})
    assert r.status == 401


async def test_wrong_password_and_tampered_or_expired_cookie(client: TestClient, clock: FakeClock) -> None:
    r = await login(client, "lan", "not-the-password")
    assert r.status == 401 and "Sai tên đăng nhập" in await r.text()
    assert (await client.get("/api/v1/me")).status == 401
    r = await login(client, "nobody", "whatever-123")
    assert r.status == 401

    assert (await login(client, "lan", "lan-pass-123")).status == 303
    good = client.session.cookie_jar.filter_cookies(client.make_url("/"))["civiq_session"].value
    sid, exp, mac = good.split(".")
    forged = f"{sid}.{int(exp) + 86400}.{mac}"
    assert (await client.get("/api/v1/me", cookies={"civiq_session": forged})).status == 401
    assert (await client.get("/api/v1/me")).status == 200
    clock.advance(3601)  # past the session's expiry
    assert (await client.get("/api/v1/me")).status == 401


async def test_csrf_token_is_required_for_every_state_change(client: TestClient, server: TestServer) -> None:
    assert (await login(client, "tech", "tech-pass-123")).status == 303
    csrf = (await (await client.get("/api/v1/me")).json())["csrf"]
    url = "/api/v1/centers/hcm-q1/counters/1/next"
    r = await client.post(url)
    assert r.status == 403 and "CSRF" in (await r.json())["error"]
    r = await client.post(url, headers={"X-CSRF-Token": "wrong"})
    assert r.status == 403
    r = await client.post("/api/v1/silences", json={"center": "hcm-q1", "minutes": 5, "reason": "x"})
    assert r.status == 403
    r = await client.post("/logout", allow_redirects=False)  # a form without the token
    assert r.status == 403
    assert (await client.get("/api/v1/me")).status == 200  # still logged in
    # the right token in the header, or as a form field
    assert (await client.post(url, headers={"X-CSRF-Token": csrf})).status == 202
    assert (await client.post(url, data={"csrf_token": csrf})).status == 202
    view = server.app[CTX].view
    assert [c.action for _, c, _ in view.commands] == ["next", "next"]
    # a cross-site Origin is refused even with a valid token
    r = await client.post(url, headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    assert r.status == 403 and "cross-site" in (await r.json())["error"]


async def test_cross_site_login_is_refused(client: TestClient) -> None:
    r = await login(client, "lan", "lan-pass-123", Origin="http://evil.example")
    assert r.status == 403
    assert (await client.get("/api/v1/me")).status == 401


async def test_login_rate_limit_per_user_and_its_window(client: TestClient, server: TestServer,
                                                        clock: FakeClock) -> None:
    for _ in range(5):
        assert (await login(client, "lan", "bad-password")).status == 401
    r = await login(client, "lan", "lan-pass-123")  # even the right password is refused now
    assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    assert "quá nhiều lần" in await r.text()
    assert (await client.get("/api/v1/me")).status == 401
    # another user from the same address is not locked out by lan's failures
    assert (await login(client, "tech", "tech-pass-123")).status == 303
    clock.advance(301)  # the failures leave the window
    assert (await login(client, "lan", "lan-pass-123")).status == 303


async def test_login_rate_limit_per_address(client: TestClient) -> None:
    # a spray of different names from one address: 20 failures, then the address is refused
    for i in range(20):
        assert (await login(client, f"user{i}", "bad-password")).status == 401
    r = await login(client, "tech", "tech-pass-123")
    assert r.status == 429
