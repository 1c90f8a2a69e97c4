"""The gateway's pages in a real browser: Python playwright driving Debian's chromium.

The aiohttp app runs in a thread with its own event loop; the tests change the view's data from here and
wait on the DOM (with timeouts) for the page to follow, without reloading. Each page is screenshotted into
tmp_path (and into docs/img/ when ``CIVIQ_UPDATE_SCREENSHOTS=1``) and the PNG is checked to be a real picture.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from civiq.clock import SystemClock, local_day
from civiq.contract import CounterState, QueueSnapshot, ServiceQueue
from civiq.gateway.web import UserStore, create_app, ticket_token
from civiq.gateway.web.memory import MemoryView, sample_view
from tests.browser import HAVE_CHROMIUM, WHY_NOT, checked_page, chromium
from tests.conftest import wait_for

SECRET = b"browser-test-secret-0123456789"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
XSS = '<img src=x onerror="window.__xss=1">'

if not HAVE_CHROMIUM:  # pragma: no cover - the machine's setup installs it (apt: chromium)
    pytest.skip(WHY_NOT, allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Site:
    url: str
    view: MemoryView
    clock: SystemClock


class ServerThread:
    """The app on 127.0.0.1:<free port>, served by an event loop in a thread of its own."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app)
        self.port = self._run(self._start())

    def _run(self, coro):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _start(self) -> int:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        self._run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    clock = SystemClock()  # the browser's own clock is real: keep the server's in step with it
    users = UserStore(tmp_path / "users.db")
    users.add_user("admin", "admin-pass-1", "province_admin")
    users.add_user("lan", "lan-pass-123", "center_manager", center="hcm-q1")
    users.add_user("tech", "tech-pass-123", "technician")
    view = sample_view(clock)
    srv = ServerThread(create_app(view, users, secret=SECRET, public_base_url="http://127.0.0.1", clock=clock))
    try:
        yield Site(f"http://127.0.0.1:{srv.port}", view, clock)
    finally:
        srv.stop()
        users.close()


@pytest.fixture
def page(browser, site: Site):  # noqa: ANN001, ANN201
    with checked_page(browser) as pg:
        yield pg


def login(page, site: Site, user: str, password: str, then: str = "/") -> None:  # noqa: ANN001
    page.goto(f"{site.url}/login?next={then}")
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{site.url}{then}")


def shot(page, tmp_path: Path, name: str) -> Path:  # noqa: ANN001
    """Screenshot the page and check it is a real picture, not a blank or broken one."""
    path = tmp_path / f"web-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 15_000, f"{name}: suspiciously small screenshot"
    with Image.open(path) as img:
        assert img.width >= 380 and img.height >= 500
        colors = img.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colors is not None and len(colors) > 200, f"{name}: the screenshot is nearly uniform"
    if os.environ.get("CIVIQ_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / path.name)
    return path


def waiting_of(page, center: str) -> str:  # noqa: ANN001
    return page.text_content(f'[data-center="{center}"] [data-field="waiting"]') or ""


def new_snapshot(site: Site, waiting: int, ticket: str = "A044") -> QueueSnapshot:
    now = site.clock.now()
    return QueueSnapshot(ts=now + timedelta(seconds=1), day=local_day(now), services={
        "A": ServiceQueue(waiting=waiting, oldest_wait_s=600, eta_s=900, served_today=42, issued_today=50)},
        counters={"1": CounterState(state="open", ticket=ticket, services=["A"], served_today=22)})


# ------------------------------------------------------------------------------------------ tests
def test_overview_shows_numbers_and_updates_live(page, site: Site, tmp_path: Path) -> None:  # noqa: ANN001
    login(page, site, "admin", "admin-pass-1")
    page.wait_for_selector('[data-center="hcm-q1"]')
    assert waiting_of(page, "hcm-q1") == "23"
    card = page.text_content('[data-center="hcm-q1"]') or ""
    assert "Phường Bến Thành" in card and "29 phút" in card and "3/5" in card and "147" in card
    bad = page.text_content('[data-center="hcm-q3"] [data-field="offline_devices"]')
    assert bad == "2"  # a failed printer and an offline node
    page.wait_for_selector('#conn[data-state="live"]')
    shot(page, tmp_path, "overview")

    page.evaluate("window.__same_page = true")
    t0 = time.monotonic()
    site.view.state.apply_queue("hcm-q1", "pi-1", new_snapshot(site, 35), site.clock.now())
    page.wait_for_function(
        "() => document.querySelector('[data-center=\"hcm-q1\"] [data-field=\"waiting\"]').textContent === '35'",
        timeout=1000)
    assert time.monotonic() - t0 < 1.0
    assert page.evaluate("window.__same_page") is True  # updated in place, no reload


def test_center_page_counters_advice_and_commands(page, site: Site, tmp_path: Path) -> None:  # noqa: ANN001
    login(page, site, "lan", "lan-pass-123", then="/centers/hcm-q1")
    page.wait_for_selector('[data-service="A"]')
    assert page.text_content('[data-service="A"] .svc-name') == "Đất đai"
    assert page.text_content('[data-service="A"] [data-field="waiting"]') == "12"
    assert page.text_content('[data-service="D"] [data-field="eta"]') == "chưa rõ"  # no guess
    assert page.text_content('[data-counter="1"] [data-field="ticket"]') == "A042"
    assert "Quầy 3 nhận thêm hồ sơ Đất đai" in (page.text_content("#advice") or "")
    actions = page.text_content("#advice .staff-actions") or ""  # staff actions, in the page's language only
    assert "Mở quầy 5" in actions and "34 → 18 phút" in actions and "Open counter" not in actions
    assert page.locator("#chart-today svg path.line").count() == 1
    assert page.locator("#chart-days svg rect.bar").count() == 7
    page.wait_for_selector('#conn[data-state="live"]')
    shot(page, tmp_path, "center")

    page.click('[data-counter="1"] button[data-action="next"]')
    wait_for(lambda: site.view.commands, timeout=5, what="the counter command to reach the view")
    center, cmd, user = site.view.commands[0]
    assert (center, cmd.counter, cmd.action, user) == ("hcm-q1", "1", "next", "lan")

    page.click("#apply-advice")
    page.wait_for_selector("#toast:has-text('phiên bản 1')")
    assert site.view.applied == [("hcm-q1", "adv-1", "lan")]

    site.view.state.apply_queue("hcm-q1", "pi-1", new_snapshot(site, 9, ticket="A044"), site.clock.now())
    page.wait_for_function(
        "() => document.querySelector('[data-counter=\"1\"] [data-field=\"ticket\"]').textContent === 'A044'",
        timeout=1000)


def test_manager_is_refused_another_center(page, site: Site) -> None:  # noqa: ANN001
    login(page, site, "lan", "lan-pass-123")
    assert [e.get_attribute("data-center") for e in page.query_selector_all(".card")] == ["hcm-q1"]
    resp = page.goto(f"{site.url}/centers/hcm-q3")
    assert resp is not None and resp.status == 403
    assert "không có quyền" in (page.text_content("#error-message") or "")


def test_devices_page_ack_and_silence(page, site: Site, tmp_path: Path) -> None:  # noqa: ANN001
    login(page, site, "tech", "tech-pass-123", then="/devices")
    page.wait_for_selector('[data-node="hcm-q3/pi-1"]')
    row = page.text_content('[data-node="hcm-q3/pi-1"] [data-device="printer-1"]') or ""
    assert "Lỗi" in row and "máy in hết giấy" in row
    assert page.get_attribute('[data-node="hcm-q3/pi-2"] .badge', "data-state") == "offline"
    page.wait_for_selector('#conn[data-state="live"]')
    shot(page, tmp_path, "devices")

    key = "hcm-q3/pi-1/printer-1/printer_paper_out"
    page.click(f'[data-alert="{key}"] button[data-action="ack"]')
    page.wait_for_selector(f'[data-alert="{key}"]:has-text("Đã xác nhận bởi tech")', timeout=2000)
    assert site.view.active_alerts[key]["acked_by"] == "tech"

    page.select_option("#silence-center", "hcm-q3")
    page.select_option("#silence-node", "pi-2")
    page.fill("#silence-minutes", "45")
    page.fill("#silence-reason", "Thay bộ nguồn máy trạm")
    page.click("#silence-form button[type=submit]")
    page.wait_for_selector('#silences:has-text("Thay bộ nguồn máy trạm")', timeout=2000)
    (s,) = site.view.silence_list
    assert (s["center"], s["node"], s["user"]) == ("hcm-q3", "pi-2", "tech")


def test_public_ticket_page_on_a_phone_refreshes_live(browser, site: Site, tmp_path: Path) -> None:  # noqa: ANN001
    ctx = browser.new_context(viewport={"width": 390, "height": 800}, is_mobile=True)
    page = ctx.new_page()
    try:
        day = local_day(site.clock.now())
        page.goto(f"{site.url}/t/{ticket_token(SECRET, 'hcm-q1', day, 'A051')}")
        assert page.text_content("#t-label") == "A051"
        page.wait_for_selector("#t-ahead:has-text('8')")
        assert "Đất đai" in (page.text_content("#t-service") or "")
        assert page.text_content("#t-eta") == "25 phút"
        assert page.locator("header.topbar").count() == 0  # no login, no navigation for citizens
        page.wait_for_selector('#conn[data-state="live"]')
        shot(page, tmp_path, "ticket")
        site.view.put_ticket("hcm-q1", day, "A051", service="A", service_name="Đất đai", state="waiting",
                             ahead=7, eta_s=None)
        page.wait_for_selector("#t-ahead:has-text('7')", timeout=1000)
        assert page.text_content("#t-eta") == "chưa rõ"
        site.view.put_ticket("hcm-q1", day, "A051", service="A", state="called", ahead=0, counter="2")
        page.wait_for_selector("#t-state:has-text('Mời đến quầy 2')", timeout=1000)
    finally:
        ctx.close()


def test_device_and_config_text_is_shown_as_text(page, site: Site, tmp_path: Path) -> None:  # noqa: ANN001
    now = site.clock.now()
    site.view.state.set_center_name("hcm-q1", XSS)
    site.view.service_names["hcm-q1"] = {}
    site.view.state.apply_queue("hcm-q1", "pi-1", QueueSnapshot(
        ts=now + timedelta(seconds=1), day=local_day(now),
        services={XSS: ServiceQueue(waiting=2, oldest_wait_s=30)},
        counters={"1": CounterState(state="open", ticket="A001", services=[XSS])}), now)
    login(page, site, "admin", "admin-pass-1")
    page.wait_for_selector('[data-center="hcm-q1"]')
    assert page.text_content('[data-center="hcm-q1"] .card-name') == XSS
    page.goto(f"{site.url}/centers/hcm-q1")
    page.wait_for_selector("#services tbody tr")
    assert page.text_content("#services tbody .svc-name") == XSS
    assert page.text_content("#center-name") == XSS
    assert page.locator("img").count() == 0
    page.wait_for_timeout(300)  # give a would-be onerror handler its chance to run
    assert page.evaluate("window.__xss") is None


def test_english_toggle(page, site: Site) -> None:  # noqa: ANN001
    login(page, site, "admin", "admin-pass-1")
    page.click("#lang-toggle")
    page.wait_for_selector("h1:has-text('Service centers overview')")
    assert "Waiting" in (page.text_content('[data-center="hcm-q1"]') or "")
    page.goto(f"{site.url}/devices")  # the choice sticks (cookie)
    assert page.text_content("h1") == "Devices"


LONG_ERROR = ("display display-1 (Modbus address 1 on /dev/serial/by-path/platform-3f980000.usb-usb-0:1.2:1.0-port0"
              "-rs485-bus-of-the-second-floor) does not answer: " + "timeout waiting for the reply frame; " * 12)
NO_OVERFLOW = """() => [...document.querySelectorAll('.node, .node table, main')].filter(
    (el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.className || el.tagName)
  .concat(document.documentElement.scrollWidth > window.innerWidth ? ['page'] : [])"""


def test_devices_page_long_error_keeps_the_layout_in_words_of_the_chosen_language(  # noqa: ANN001
        browser, site: Site, tmp_path: Path) -> None:
    from civiq.contract import DeviceHealth, Health

    site.view.state.apply_health("hcm-q3", "pi-1", Health(ts=site.clock.now() + timedelta(seconds=1), devices=[
        DeviceHealth(id="printer-1", kind="printer", state="failed", detail="printer is out of paper"),
        DeviceHealth(id="display-1", kind="display", state="offline", detail=LONG_ERROR)]), site.clock.now())
    for width in (1400, 390):  # a desk screen and a technician's phone
        with checked_page(browser, width=width) as page:
            login(page, site, "tech", "tech-pass-123", then="/devices?center=hcm-q3")
            row = '[data-node="hcm-q3/pi-1"] [data-device="display-1"]'
            page.wait_for_selector(row)
            assert page.evaluate(NO_OVERFLOW) == [], f"horizontal overflow at {width} px"
            cell = page.locator(f'{row} [data-field="detail"]')
            assert "bảng số display-1 (địa chỉ Modbus" in (cell.text_content() or "")  # in Vietnamese; ids stay
            assert LONG_ERROR in (cell.get_attribute("title") or "")  # the whole text, in the tooltip
            assert cell.bounding_box()["height"] < 120, "the detail is clamped to a few lines"  # type: ignore[index]
            if width == 1400:
                shot(page, tmp_path, "devices-long-error")
    with checked_page(browser) as page:
        login(page, site, "tech", "tech-pass-123", then="/devices?center=hcm-q3")
        page.wait_for_selector('[data-node="hcm-q3/pi-1"] [data-device="display-1"]')
        node = '[data-node="hcm-q3/pi-1"]'
        assert page.text_content(f'{node} [data-device="display-1"] [data-field="kind"]') == "Bảng số tại quầy"
        assert page.text_content(f'{node} [data-device="display-1"] [data-field="counter"]') == "Quầy 1 - Đất đai"
        assert page.text_content(f'{node} [data-device="printer-1"] [data-field="counter"]') == "Dùng chung cho sảnh"
        assert page.text_content(f'{node} [data-device="printer-1"] [data-field="detail"]') == "máy in hết giấy"
        facts = page.text_content(f"{node} .facts") or ""
        assert "Nhiệt độ CPU" in facts and "Ổ đĩa" in facts and "Load" not in facts
        alert = '[data-alert="hcm-q3/pi-1/printer-1/printer_paper_out"] [data-field="what"]'
        assert page.text_content(alert) == "Máy in hết giấy"  # one language (the summary has both)

        page.goto(f"{site.url}/devices?center=hcm-q3&lang=en")
        page.wait_for_selector(f'{node} [data-device="display-1"]')
        assert page.text_content(f'{node} [data-device="display-1"] [data-field="kind"]') == "Counter display"
        assert page.text_content(f'{node} [data-device="printer-1"] [data-field="detail"]') == "printer is out of paper"
        assert page.text_content(f'{node} [data-device="printer-1"] [data-field="counter"]') == "Shared by the hall"
        assert page.text_content(alert) == "Printer out of paper"


UNITS_EN = r"\d\s*(s|min|h)\b"
UNITS_VI = r"\d\s*(giây|phút|giờ)\b"
# the page's own words: the advisor's summary and reason are its data (in the language it wrote them)
PAGE_TEXT = """() => { document.querySelectorAll('#advice > p').forEach((p) => { p.hidden = true; });
  return document.querySelector('main').innerText; }"""


def test_center_page_units_in_one_language_forecast_labelled_failed_devices_linked(page, site: Site) -> None:  # noqa: ANN001
    import re

    login(page, site, "admin", "admin-pass-1", then="/centers/hcm-q3")
    link = page.locator('[data-field="offline_devices"] a[data-link="devices"]')
    link.wait_for()
    page.goto(f"{site.url}/centers/hcm-q1")  # a center with waits of every size and an advice
    page.wait_for_selector('[data-service="A"]')
    text = page.evaluate(PAGE_TEXT)
    assert re.search(UNITS_VI, text) and not re.search(UNITS_EN, text), text
    forecast = page.text_content('#advice [data-field="forecast"]') or ""
    assert forecast.startswith("Dự báo") and "15 phút → 45 giây" in forecast, forecast

    page.goto(f"{site.url}/centers/hcm-q1?lang=en")
    page.wait_for_selector('[data-service="A"]')
    text = page.evaluate(PAGE_TEXT)
    assert re.search(UNITS_EN, text) and not re.search(UNITS_VI, text), text
    forecast = page.text_content('#advice [data-field="forecast"]') or ""
    assert forecast.startswith("Forecast") and "15 min → 45 s" in forecast, forecast

    for lang, mine, other in (("vi", UNITS_VI, UNITS_EN), ("en", UNITS_EN, UNITS_VI)):  # the province's overview
        page.goto(f"{site.url}/?lang={lang}")
        page.wait_for_selector('[data-center="hcm-q1"] [data-field="longest_wait"]')
        text = page.inner_text("main")
        assert re.search(mine, text) and not re.search(other, text), text

    page.goto(f"{site.url}/centers/hcm-q3?lang=vi")
    page.click('[data-field="offline_devices"] a[data-link="devices"]')
    page.wait_for_url(f"{site.url}/devices?center=hcm-q3")
    page.wait_for_selector('[data-node="hcm-q3/pi-1"] [data-device="printer-1"]')
    assert not re.search(UNITS_EN, page.inner_text("main"))  # the devices page has no duration, no stray unit
