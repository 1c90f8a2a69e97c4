"""The report page in a real browser (Debian's chromium through playwright), in Vietnamese: the numbers a
manager reads are the report's, the charts and the satisfaction block are drawn, the Excel download is a
workbook. Screenshot into tmp_path, and into docs/img/reports.png with ``CIVIQ_UPDATE_SCREENSHOTS=1``."""

from __future__ import annotations

import io
import os
import shutil
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image

from civiq.clock import SystemClock
from civiq.gateway.reports import sample
from civiq.gateway.store.series import SeriesStore
from civiq.gateway.web import UserStore, create_app
from civiq.gateway.web.memory import MemoryView
from tests.browser import HAVE_CHROMIUM, WHY_NOT, checked_page, chromium

if not HAVE_CHROMIUM:  # pragma: no cover - the machine's setup installs it (apt: chromium)
    pytest.skip(WHY_NOT, allow_module_level=True)
pytest.importorskip("playwright.sync_api")

from tests.gateway.test_web_browser import ServerThread  # noqa: E402 - after the skip

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
Q = "center=hcm-q1&period=day&date=2026-12-05"


def _vi(x: float, digits: int = 1) -> str:
    """A number as the page writes it in Vietnamese: comma for decimals."""
    return f"{x:.{digits}f}".replace(".", ",")


def test_report_page_in_vietnamese_shows_the_reports_numbers(tmp_path: Path) -> None:
    clock = SystemClock()
    view = MemoryView(clock=clock)
    store = SeriesStore(tmp_path / "series.db")
    view.state.apply_status("hcm-q1", "pi-1", sample.birth(), clock.now())
    store.add_events([("hcm-q1", n, e) for n, e in sample.sample_events([date(2026, 12, 5)], 140, seed=4)])
    view.report_store = store
    users = UserStore(tmp_path / "users.db")
    users.add_user("lan", "lan-pass-123", "center_manager", center="hcm-q1")
    users.add_user("admin", "admin-pass-1", "province_admin")
    view.state.apply_status("hcm-q3", "pi-1", sample.birth("hcm-q3", "Phường Võ Thị Sáu"), clock.now())
    srv = ServerThread(create_app(view, users, secret=b"reports-browser-0123456789", clock=clock,
                                  public_base_url="http://127.0.0.1"))
    url = f"http://127.0.0.1:{srv.port}"
    rep = view.report("hcm-q1", "day", "2026-12-05")
    t = rep["total"]
    try:
        with chromium() as browser, checked_page(browser, width=1400, height=1000) as page:
            page.goto(f"{url}/login?next=/reports?{Q.replace('&', '%26')}")
            page.fill("#user", "lan")
            page.fill("#password", "lan-pass-123")
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#rep-table tbody tr")
            assert page.get_attribute("html", "lang") == "vi"
            assert page.text_content("h1") == "Báo cáo chất lượng phục vụ"
            assert "Phường Bến Thành · Ngày 2026-12-05" in (page.text_content("#rep-where") or "")
            assert page.text_content('[data-field="served"] .value') == str(t["served"])
            assert page.text_content('[data-field="issued"] .value') == str(t["issued"])
            assert page.text_content('[data-field="wait_mean"] .value') == f"{_vi(t['wait_mean_s'] / 60)} phút"
            assert page.text_content('[data-field="satisfied_share"] .value') == f"{_vi(100 * t['satisfied_share'])} %"
            # the table: one row per service and the total
            a = rep["services"][0]
            assert page.text_content('#rep-table tbody tr[data-key="A"] td:first-child') == "Đất đai"
            assert page.text_content('#rep-table tbody tr[data-key="A"] [data-col="served"]') == str(a["served"])
            assert page.text_content('#rep-table tbody tr[data-key="A"] [data-col="wait_p90_s"]') == \
                _vi(a["wait_p90_s"] / 60)
            assert page.text_content('#rep-table tfoot [data-col="served"]') == str(t["served"])
            # the charts and the satisfaction block
            assert page.locator("#rep-bars-served .bar").count() == len(rep["timeline"])
            busiest = max(rep["timeline"], key=lambda b: b["served"])
            assert page.text_content(f'#rep-bars-served [data-bucket="{busiest["bucket"]}"] .bar-value') == str(busiest["served"])
            top_reason = max(t["reasons"].items(), key=lambda kv: kv[1])
            reason = page.locator(f'#rep-reasons [data-reason="{top_reason[0]}"]')
            assert sample.REASONS[top_reason[0]] in (reason.text_content() or "")
            assert reason.locator(".hbar-value").text_content() == str(top_reason[1])
            assert page.text_content('[data-field="sat_ratings"] .value') == str(t["ratings"])
            path = tmp_path / "reports.png"
            page.screenshot(path=str(path), full_page=True)
            with Image.open(path) as img:
                assert img.width >= 1000 and len(img.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 200
            if os.environ.get("CIVIQ_UPDATE_SCREENSHOTS") == "1":
                shutil.copy(path, DOCS_IMG / "reports.png")
            # per clerk, chosen from the form
            page.select_option("#rep-by", "clerk")
            page.wait_for_selector('#rep-table tbody tr[data-key="c01"]')
            rows = page.locator("#rep-table tbody tr td:first-child").all_text_contents()
            assert rows == ["Nguyễn Thị Lan", "Trần Văn Minh", "Lê Thu Hà", "(chưa đăng nhập)"]
            # English on demand: the same numbers, English words
            page.click("#lang-toggle")
            page.wait_for_selector('html[lang="en"] #rep-table tbody tr[data-key="c01"]')
            assert page.text_content("h1") == "Service quality report"
            assert page.locator("#rep-table tbody tr td:first-child").all_text_contents()[-1] == "(not signed in)"
            assert page.text_content('[data-field="served"] .value') == str(t["served"])
            # the Excel button gives a workbook
            with page.expect_download() as dl:
                page.click("#dl-xlsx")
            wb = load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()))
            assert wb.sheetnames == ["Tổng hợp", "Theo dịch vụ", "Theo quầy", "Theo cán bộ", "Đánh giá"]
        with chromium() as browser, checked_page(browser, width=1400, height=900) as page:
            # the province: every center in one table, each a link to its own report
            page.goto(f"{url}/login?next=/reports?period=day%26date=2026-12-05")
            page.fill("#user", "admin")
            page.fill("#password", "admin-pass-1")
            page.click("#login-form button[type=submit]")
            page.wait_for_selector('#rep-table tbody tr[data-key="hcm-q3"]')
            assert page.text_content('#rep-table tr[data-key="hcm-q1"] [data-col="served"]') == str(t["served"])
            assert page.text_content('[data-field="centers"] .value') == "2"
            page.screenshot(path=str(tmp_path / "reports-province.png"), full_page=True)
            page.click('#rep-table tr[data-key="hcm-q1"] a')
            page.wait_for_selector('#rep-table tbody tr[data-key="A"]')
            assert page.text_content('[data-field="served"] .value') == str(t["served"])
    finally:
        srv.stop()
        users.close()
        store.close()


def test_todays_report_follows_new_events(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """A report whose period holds today re-reads its numbers (every minute; here every 0.3 s)."""
    from civiq.clock import local_day
    from civiq.gateway.web import reports as web_reports
    from tests.conftest import wait_for

    monkeypatch.setattr(web_reports, "REFRESH_S", 0.3)
    clock = SystemClock()
    today = date.fromisoformat(local_day(clock.now()))
    view = MemoryView(clock=clock)
    store = SeriesStore(tmp_path / "series.db")
    view.state.apply_status("hcm-q1", "pi-1", sample.birth(), clock.now())
    evs = sample.sample_events([today], 60, seed=9)
    half = len(evs) // 2
    store.add_events([("hcm-q1", n, e) for n, e in evs[:half]])
    view.report_store = store
    users = UserStore(tmp_path / "users.db")
    users.add_user("lan", "lan-pass-123", "center_manager", center="hcm-q1")
    srv = ServerThread(create_app(view, users, secret=b"reports-browser-0123456789", clock=clock,
                                  public_base_url="http://127.0.0.1"))
    url = f"http://127.0.0.1:{srv.port}"
    try:
        with chromium() as browser, checked_page(browser) as page:
            page.goto(f"{url}/login?next=/reports")
            page.fill("#user", "lan")
            page.fill("#password", "lan-pass-123")
            page.click("#login-form button[type=submit]")
            page.wait_for_selector('[data-field="served"] .value')
            before = view.report("hcm-q1", "day", today.isoformat())["total"]["served"]
            assert page.text_content('[data-field="served"] .value') == str(before)
            store.add_events([("hcm-q1", n, e) for n, e in evs[half:]])
            after = view.report("hcm-q1", "day", today.isoformat())["total"]["served"]
            assert after > before
            wait_for(lambda: page.text_content('[data-field="served"] .value') == str(after), timeout=10,
                     what="the page showing the new events")
    finally:
        srv.stop()
        users.close()
        store.close()
