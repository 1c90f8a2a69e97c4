"""Reports on the web, per role: ``/api/v1/reports``, ``/api/v1/ratings``, the ``/reports`` page and its
downloads, through aiohttp's real test server with real users (scrypt, SQLite) and a real series store.

province_admin: everything; center_manager: their center only; viewer: no per-clerk rows, no rating rows;
technician: no satisfaction at all; clerk: only their own work and ratings, and no live page.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook

from civiq.clock import FakeClock
from civiq.gateway.reports import sample
from civiq.gateway.store.series import SeriesStore
from civiq.gateway.web import UserStore, create_app
from civiq.gateway.web.auth import User
from civiq.gateway.web.memory import MemoryView

SECRET = b"reports-secret-0123456789abcdef"
USERS = {  # name: (role, center, clerk)
    "admin": ("province_admin", None, None), "lan": ("center_manager", "hcm-q1", None),
    "minh": ("center_manager", "hcm-q3", None), "tech": ("technician", None, None),
    "viewer": ("viewer", "hcm-q1", None), "ha": ("clerk", "hcm-q1", "c03"),
}
PASSWORD = "a-long-pass-1"
Q = "center=hcm-q1&period=day&date=2026-12-05"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator:  # noqa: ANN201
    clock = FakeClock(datetime(2026, 12, 5, 3, 0, tzinfo=UTC))  # 10:00 local
    view = MemoryView(clock=clock)
    store = SeriesStore(tmp_path / "series.db")
    for center, name, seed in (("hcm-q1", "Phường Bến Thành", 1), ("hcm-q3", "Phường Võ Thị Sáu", 2)):
        view.state.apply_status(center, "pi-1", sample.birth(center, name), clock.now())
        store.add_events([(center, n, e) for n, e in sample.sample_events([date(2026, 12, 5)], 60, seed)])
    view.report_store = store
    users = UserStore(tmp_path / "users.db")
    for name, (role, center, clerk) in USERS.items():
        users.add_user(name, PASSWORD, role, center=center, clerk=clerk)
    server = TestServer(create_app(view, users, secret=SECRET, public_base_url="http://gw.test", clock=clock))
    await server.start_server()
    clients: list[TestClient] = []

    async def login(user: str | None) -> TestClient:
        c = TestClient(server)
        await c.start_server()
        clients.append(c)
        if user:
            r = await c.post("/login", data={"user": user, "password": PASSWORD, "next": "/reports"},
                             allow_redirects=False)
            assert r.status == 303
        return c

    try:
        yield login
    finally:
        for c in clients:
            await c.close()
        await server.close()
        users.close()
        store.close()


async def _json(c: TestClient, path: str, status: int = 200) -> dict:
    r = await c.get(path)
    body = await r.json()
    assert r.status == status, body
    return body


async def test_admin_and_manager_see_the_whole_report(client) -> None:  # noqa: ANN001
    admin = await client("admin")
    rep = await _json(admin, f"/api/v1/reports?{Q}")
    assert rep["center_name"] == "Phường Bến Thành" and rep["period"]["label"] == "2026-12-05"
    assert rep["total"]["issued"] == 60 and rep["total"]["ratings"] > 0
    assert {r["key"] for r in rep["clerks"]} == {"c01", "c02", "c03", None}
    week = await _json(admin, "/api/v1/reports?center=hcm-q3&period=week&date=2026-12-05")
    assert week["period"]["first"] == "2026-11-30" and week["total"]["issued"] == 60
    lan = await client("lan")
    mine = await _json(lan, "/api/v1/reports?period=day&date=2026-12-05")  # their center by default
    assert mine["center"] == "hcm-q1" and mine["total"] == rep["total"]
    err = await _json(lan, "/api/v1/reports?center=hcm-q3&date=2026-12-05", 403)
    assert "hcm-q3" in err["error"]
    rows = (await _json(lan, "/api/v1/ratings?center=hcm-q1&from=2026-12-05&to=2026-12-05"))["ratings"]
    assert len(rows) == rep["total"]["ratings"]
    assert {"ts", "center", "center_name", "ticket", "day", "service", "counter", "counter_name", "clerk",
            "clerk_name", "score", "scale", "satisfied", "reasons", "dossier"} <= set(rows[0])
    await _json(lan, "/api/v1/ratings?center=hcm-q3", 403)


async def test_bad_queries_get_clear_errors(client) -> None:  # noqa: ANN001
    admin = await client("admin")
    assert "period" in (await _json(admin, "/api/v1/reports?center=hcm-q1&period=year", 400))["error"]
    assert "2026-12-05" in (await _json(admin, "/api/v1/reports?center=hcm-q1&date=05-12-2026", 400))["error"]
    assert "92" in (await _json(admin, "/api/v1/ratings?center=hcm-q1&from=2026-01-01&to=2026-12-05", 400))["error"]
    assert "nowhere" in (await _json(admin, "/api/v1/reports?center=nowhere", 404))["error"]
    assert "nowhere" in (await _json(admin, "/api/v1/ratings?center=nowhere", 404))["error"]
    anon = await client(None)
    await _json(anon, f"/api/v1/reports?{Q}", 401)
    await _json(anon, "/api/v1/ratings?center=hcm-q1", 401)


async def test_technician_sees_no_satisfaction_and_viewer_no_clerks(client) -> None:  # noqa: ANN001
    tech = await client("tech")
    rep = await _json(tech, f"/api/v1/reports?{Q}")
    assert rep["total"]["served"] > 0 and "ratings" not in rep["total"] and "satisfied_share" not in rep["total"]
    assert rep["clerks"] == [] and rep["scores"] == {} and rep["reasons"] == {}
    assert all("reasons" not in r for r in rep["services"])
    await _json(tech, "/api/v1/ratings?center=hcm-q1", 403)
    page = await (await tech.get(f"/reports?{Q}")).text()
    assert "Tỷ lệ hài lòng" not in page.split('id="boot"')[0]
    r = await tech.get(f"/reports/download?{Q}&format=xlsx")
    wb = load_workbook(io.BytesIO(await r.read()))
    assert wb.sheetnames == ["Tổng hợp", "Theo dịch vụ", "Theo quầy"]
    assert (await tech.get(f"/reports/download?{Q}&format=ratings.csv")).status == 403

    viewer = await client("viewer")
    rep = await _json(viewer, f"/api/v1/reports?{Q}")
    assert rep["total"]["satisfied_share"] is not None and rep["clerks"] == []
    await _json(viewer, "/api/v1/ratings?center=hcm-q1", 403)
    page = await (await viewer.get(f"/reports?{Q}&by=clerk")).text()
    assert '<option value="clerk"' not in page and 'id="dl-ratings"' not in page
    assert '"by": "service"' in page  # asked per clerk, shown per service
    assert (await viewer.get(f"/reports/download?{Q}&format=ratings.csv")).status == 403


async def test_clerk_sees_only_their_own_rows_and_ratings(client) -> None:  # noqa: ANN001
    admin = await client("admin")
    full = await _json(admin, f"/api/v1/reports?{Q}")
    c03 = next(r for r in full["clerks"] if r["key"] == "c03")
    ha = await client("ha")
    rep = await _json(ha, "/api/v1/reports?date=2026-12-05")
    assert rep["clerk"] == "c03" and rep["clerk_name"] == "Lê Thu Hà"
    assert [r["key"] for r in rep["clerks"]] == ["c03"]
    assert {k: v for k, v in rep["total"].items() if k not in ("key", "name", "issued")} == \
        {k: v for k, v in c03.items() if k not in ("key", "name", "issued")}
    assert [r["key"] for r in rep["counters"]] == ["3"]  # the only counter c03 worked at
    rows = (await _json(ha, "/api/v1/ratings?from=2026-12-05"))["ratings"]
    assert rows and {r["clerk"] for r in rows} == {"c03"} and len(rows) == c03["ratings"]
    # nothing of the live pages, nor of another center
    await _json(ha, "/api/v1/overview", 403)
    await _json(ha, "/api/v1/centers/hcm-q1", 403)
    await _json(ha, "/api/v1/reports?center=hcm-q3&date=2026-12-05", 403)
    r = await ha.get("/", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/reports"
    assert (await ha.get("/centers/hcm-q1")).status == 403
    assert (await ha.get("/devices")).status == 403
    page = await (await ha.get("/reports?date=2026-12-05&by=clerk")).text()
    assert "Lê Thu Hà" in page and "Nguyễn Thị Lan" not in page and "Trần Văn Minh" not in page
    wb = load_workbook(io.BytesIO(await (await ha.get("/reports/download?date=2026-12-05&format=xlsx")).read()))
    assert [r[1].value for r in wb["Theo cán bộ"].iter_rows(min_row=2)] == ["Lê Thu Hà", "Tổng cộng"]
    assert {r[9].value for r in wb["Đánh giá"].iter_rows(min_row=2)} == {"c03"}


async def test_page_and_downloads_for_a_manager(client) -> None:  # noqa: ANN001
    lan = await client("lan")
    r = await lan.get(f"/reports?{Q}&by=counter")
    page = await r.text()
    assert r.status == 200 and "Báo cáo" in page and "Phường Bến Thành" in page
    assert 'href="/reports/download?center=hcm-q1&amp;period=day&amp;date=2026-12-05&amp;format=xlsx"' in page
    x = await lan.get(f"/reports/download?{Q}&format=xlsx")
    assert x.status == 200 and x.content_type.endswith("spreadsheetml.sheet")
    assert "bao-cao-hcm-q1-2026-12-05.xlsx" in x.headers["Content-Disposition"]
    c = await lan.get(f"/reports/download?{Q}&format=csv")
    body = await c.read()
    assert c.status == 200 and body.startswith(b"\xef\xbb\xbf") and "Tổng cộng".encode() in body
    assert (await lan.get("/reports/download?center=hcm-q3&format=csv")).status == 403
    assert (await lan.get("/reports?center=hcm-q3")).status == 403
    anon = await client(None)
    r = await anon.get(f"/reports?{Q}", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/login")


def test_an_older_users_file_gets_the_clerk_column(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    import sqlite3

    from civiq.cli import main as civiq_main

    path = tmp_path / "users.db"
    old = UserStore(path)
    old.add_user("lan", PASSWORD, "center_manager", center="hcm-q1")
    old.close()
    db = sqlite3.connect(path)  # the file as the previous version made it: no clerk column
    db.executescript("CREATE TABLE u2 AS SELECT name, hash, role, center FROM users; DROP TABLE users;"
                     " ALTER TABLE u2 RENAME TO users;")
    db.close()
    users = UserStore(path)
    assert users.verify("lan", PASSWORD).center == "hcm-q1"
    users.close()
    monkeypatch.setenv("CIVIQ_GW_DATA_DIR", str(tmp_path))
    assert civiq_main(["gateway", "user", "ha", "--role", "clerk", "--center", "hcm-q1", "--clerk", "c03",
                       "--password", PASSWORD]) == 0
    assert "clerk c03" in capsys.readouterr().out
    assert civiq_main(["gateway", "user", "x", "--role", "clerk", "--center", "hcm-q1", "--password", PASSWORD]) == 1
    assert "--clerk" in capsys.readouterr().err
    assert civiq_main(["gateway", "user", "y", "--role", "viewer", "--clerk", "c01", "--password", PASSWORD]) == 1
    users = UserStore(path)
    assert users.verify("ha", PASSWORD) == User("ha", "clerk", "hcm-q1", "c03")
    users.close()


async def test_every_center_in_one_table_for_the_province(client) -> None:  # noqa: ANN001
    admin = await client("admin")
    prov = await _json(admin, "/api/v1/reports?period=day&date=2026-12-05")
    assert [r["key"] for r in prov["centers"]] == ["hcm-q1", "hcm-q3"]
    q1 = await _json(admin, f"/api/v1/reports?{Q}")
    assert {**prov["centers"][0], "key": None, "name": q1["total"]["name"]} == q1["total"]
    assert prov["centers"][1]["name"] == "Phường Võ Thị Sáu" and prov["period"]["label"] == "2026-12-05"
    page = await (await admin.get("/reports?period=day&date=2026-12-05")).text()
    assert "Tất cả trung tâm" in page and "Phường Võ Thị Sáu" in page
    body = await (await admin.get("/reports/download?period=day&date=2026-12-05&format=csv")).read()
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Kỳ,Từ ngày,Đến ngày,Mã trung tâm,Trung tâm,Số phiếu đã cấp")
    assert [ln.split(",")[3] for ln in lines[1:]] == ["hcm-q1", "hcm-q3"]
    wb = load_workbook(io.BytesIO(await (await admin.get("/reports/download?period=day&date=2026-12-05")).read()))
    assert wb.sheetnames == ["Theo trung tâm"] and wb["Theo trung tâm"]["B4"].value == "Phường Võ Thị Sáu"
    tech = await client("tech")
    rows = (await _json(tech, "/api/v1/reports?period=day&date=2026-12-05"))["centers"]
    assert len(rows) == 2 and all("satisfied_share" not in r for r in rows)
    lan = await client("lan")  # a center manager has no province view: their center
    assert (await _json(lan, "/api/v1/reports?date=2026-12-05"))["center"] == "hcm-q1"
