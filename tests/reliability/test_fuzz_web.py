"""Fuzz the gateway's HTTP API over real HTTP: random bodies, content types, paths and query strings.

The app is the real one (:func:`create_app` with a :class:`MemoryView` and a real :class:`UserStore`) served by
:class:`WebThread`. A logged-in province admin with a valid CSRF token sends the garbage, so every request
reaches the handlers. Property: never a 5xx, and an API error is JSON that says why.
"""

from __future__ import annotations

import collections
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civiq.clock import FakeClock
from civiq.gateway.web import UserStore, create_app
from civiq.gateway.web.memory import sample_view
from civiq.webthread import WebThread
from tests.reliability.faultkit import fuzz, soak

# bounded here; `make soak` (CIVIQ_SOAK=1) runs many more examples, with the time that takes
pytestmark = [pytest.mark.slow, pytest.mark.timeout(soak(120, 1800))]

PASSWORD = "admin-pass-123"
STATUSES: collections.Counter[int] = collections.Counter()  # what the fuzzed POSTs got (the harness check)


@dataclass
class Site:
    port: int
    cookie: str
    csrf: str

    def request(self, method: str, path: str, body: bytes | None = None, ctype: str | None = None,
                auth: bool = True) -> tuple[int, bytes, str]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {}
        if auth:
            headers = {"Cookie": self.cookie, "X-CSRF-Token": self.csrf}
        if ctype is not None:
            headers["Content-Type"] = ctype
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read(), r.getheader("Content-Type", "")
        finally:
            c.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from datetime import UTC, datetime

    clock = FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))
    users = UserStore(tmp_path_factory.mktemp("web") / "users.db")
    users.add_user("admin", PASSWORD, "province_admin")
    app = create_app(sample_view(clock), users, secret=b"fuzz-secret-0123456789", public_base_url="http://gw.test",
                     clock=clock)
    server = WebThread(app).start()
    try:
        s = Site(server.port, "", "")
        status, _, _ = s.request("POST", "/login", urlencode({"user": "admin", "password": PASSWORD}).encode(),
                                 "application/x-www-form-urlencoded", auth=False)
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        c.request("POST", "/login", body=urlencode({"user": "admin", "password": PASSWORD}),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        r.read()
        assert r.status == 303, r.status
        s.cookie = r.getheader("Set-Cookie", "").split(";", 1)[0]
        c.close()
        status, body, _ = s.request("GET", "/api/v1/me")
        assert status == 200
        s.csrf = json.loads(body)["csrf"]
        yield s
    finally:
        server.stop()


POST_PATHS = ["/api/v1/silences", "/api/v1/centers/{c}/counters/{k}/{a}", "/api/v1/centers/{c}/advice/apply",
              "/api/v1/alerts/{key}/ack", "/logout"]
GET_PATHS = ["/api/v1/centers/{c}", "/api/v1/centers/{c}/history?{q}", "/api/v1/centers/{c}/daily?{q}",
             "/api/v1/centers/{c}/advice", "/api/v1/devices?{q}", "/api/v1/alerts?{q}", "/api/v1/public/tickets/{key}",
             "/centers/{c}", "/t/{key}", "/devices?{q}", "/?{q}", "/api/v1/overview?{q}"]
segment = st.sampled_from(["hcm-q1", "hcm-q3", "c1", "c2", "next", "recall", "transfer", "no_show", "complete",
                           "open", "close", "break", "x", "", "..", "%2e%2e", "%00", "A" * 300, "Đất", "<script>"]) \
    | st.text(max_size=20)
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                          | st.text(max_size=30), lambda x: st.lists(x, max_size=3)
                          | st.dictionaries(st.text(max_size=10), x, max_size=3), max_leaves=10)
body_dict = st.fixed_dictionaries({}, optional={
    "center": segment, "node": segment, "minutes": json_value | st.floats(), "until": json_value | segment,
    "reason": json_value | segment, "to_service": json_value, "to_counter": json_value, "advice_id": json_value})
bodies = st.one_of(
    body_dict.map(lambda d: (json.dumps(d).encode(), "application/json")),
    json_value.map(lambda v: (json.dumps(v).encode(), "application/json")),
    st.binary(max_size=300).map(lambda b: (b, "application/json")),
    body_dict.map(lambda d: (urlencode({k: str(v) for k, v in d.items()}).encode(),
                             "application/x-www-form-urlencoded")),
    st.binary(max_size=300).map(lambda b: (b, "application/x-www-form-urlencoded")),
    st.binary(max_size=300).map(lambda b: (b, "multipart/form-data; boundary=xyz")),
    st.tuples(st.binary(max_size=100), st.sampled_from(["text/plain", "", "application/json; charset=latin-1",
                                                         "image/png", "multipart/form-data"])),
    st.just((b"[" * 100_000, "application/json")),
    st.just((b"x" * 200_000, "application/json")),
)


def _fill(path: str, draw: st.DrawFn) -> str:
    q = urlencode({draw(st.sampled_from(["from", "to", "days", "center", "limit", "x"])): draw(segment)
                   for _ in range(draw(st.integers(0, 3)))})
    return path.format(c=quote(draw(segment), safe=""), k=quote(draw(segment), safe=""),
                       a=quote(draw(segment), safe=""), key=quote(draw(segment), safe=""), q=q)


def _check(status: int, body: bytes, ctype: str, path: str) -> None:
    assert status < 500, f"{status} for {path}: {body[:300]!r}"
    if path.startswith("/api/") and status >= 400:
        assert "application/json" in ctype, ctype
        assert json.loads(body)["error"]


@fuzz(200, 5000)
@given(data=st.data())
def test_random_post_bodies(site: Site, data: st.DataObject) -> None:
    path = _fill(data.draw(st.sampled_from(POST_PATHS)), data.draw)
    if path == "/logout":
        return  # would end the session the other examples use
    body, ctype = data.draw(bodies)
    status, resp, rtype = site.request("POST", path, body, ctype)
    STATUSES[status] += 1
    _check(status, resp, rtype, path)


@fuzz(150, 5000)
@given(data=st.data())
def test_random_get_paths_and_queries(site: Site, data: st.DataObject) -> None:
    path = _fill(data.draw(st.sampled_from(GET_PATHS)), data.draw)
    status, resp, rtype = site.request("GET", path, auth=data.draw(st.booleans()))
    _check(status, resp, rtype, path)


@fuzz(60, 2000)
@given(body=st.binary(max_size=300), ctype=st.sampled_from(["application/x-www-form-urlencoded", "text/plain",
                                                            "multipart/form-data; boundary=b"]))
def test_random_login_bodies(site: Site, body: bytes, ctype: str) -> None:
    status, resp, _ = site.request("POST", "/login", body, ctype, auth=False)
    assert status < 500, resp[:300]


def test_the_session_survived_the_fuzz(site: Site) -> None:
    status, body, _ = site.request("GET", "/api/v1/me")
    assert status == 200 and json.loads(body)["name"] == "admin"
    if STATUSES:  # run after the POST fuzz (file order): it reached the handlers, not only the CSRF check
        assert STATUSES[400] > 10 and STATUSES[403] < sum(STATUSES.values()) / 2, STATUSES
