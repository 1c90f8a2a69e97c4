"""QR boards: the Nextion HMI over a pty, the cycle of procedures, and the HDMI page."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
import qrcode

from civiq.clock import FakeClock
from civiq.contract import DeviceState
from civiq.edge.devices.display.base import DisplayError
from civiq.edge.devices.qrboard import NextionQrBoard, QrCycler, QrItem, render_qr_page
from civiq.edge.devices.qrboard.page import qr_svg
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.qrboard import NextionEmulator

URL = "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh.html?ma_thu_tuc=1.000001"


@pytest.fixture
def hmi() -> Iterator[NextionEmulator]:
    emu = NextionEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def transport(hmi: NextionEmulator) -> Iterator[SerialTransport]:
    t = SerialTransport(hmi.port, 9600, timeout=0.2)
    yield t
    t.close()


def test_show_sets_the_components(hmi: NextionEmulator, transport: SerialTransport) -> None:
    q1 = NextionQrBoard("q1", transport, timeout=0.5)
    q1.show(URL, 'Đất đai "sổ đỏ" \\ Land', ["Đang chờ: 5", "Waiting: 5"])
    assert hmi.components["qr0"] == URL
    assert hmi.components["t0"] == 'Đất đai "sổ đỏ" \\ Land'  # quotes and backslash survive the escaping
    assert hmi.components["t1"] == "Đang chờ: 5"
    assert hmi.components["t2"] == "Waiting: 5"
    assert hmi.components["t3"] == ""
    assert hmi.bkcmd == 3 and hmi.page == 0
    assert hmi.instructions[:2] == ["bkcmd=3", "page 0"]
    assert q1.health().state == DeviceState.ok
    assert q1.poll().state == DeviceState.ok
    assert q1.last_shown == (URL, 'Đất đai "sổ đỏ" \\ Land', ("Đang chờ: 5", "Waiting: 5"))


def test_hmi_error_codes_become_failed(hmi: NextionEmulator, transport: SerialTransport) -> None:
    q1 = NextionQrBoard("q1", transport, timeout=0.5, line_components=("t1", "t9"))  # t9 is not in the project
    with pytest.raises(DisplayError, match=r"invalid component id \(code 0x02\)") as e:
        q1.show(URL, "Hộ tịch", ["a", "b"])
    assert e.value.state == DeviceState.failed
    assert q1.health().state == DeviceState.failed
    with pytest.raises(DisplayError, match="needs a URL"):
        q1.show("", "x")
    with pytest.raises(DisplayError, match="3 lines given, the page has 2"):
        q1.show(URL, "x", ["1", "2", "3"])


def test_silent_hmi_is_offline_then_recovers(hmi: NextionEmulator, transport: SerialTransport) -> None:
    q1 = NextionQrBoard("q1", transport, timeout=0.3)
    q1.show(URL, "A", [])
    hmi.muted = True
    with pytest.raises(DisplayError, match="does not answer") as e:
        q1.show(URL, "B", [])
    assert e.value.state == DeviceState.offline
    assert q1.poll().state == DeviceState.offline
    hmi.muted = False
    assert q1.poll().state == DeviceState.ok
    q1.show(URL, "C", [])
    assert hmi.components["t0"] == "C"


def test_reboot_is_survived(hmi: NextionEmulator, transport: SerialTransport) -> None:
    q1 = NextionQrBoard("q1", transport, timeout=0.5)
    q1.show(URL, "Trước", [])
    hmi.power_on()  # values gone, bkcmd back to "failures only", startup bytes on the line
    assert hmi.components["t0"] == "" and hmi.bkcmd == 2
    q1.show(URL, "Sau", ["1"])
    assert hmi.components["t0"] == "Sau" and hmi.components["qr0"] == URL
    assert hmi.bkcmd == 3


def test_emulator_ignores_garbage(hmi: NextionEmulator, transport: SerialTransport) -> None:
    transport.write(b"\x80\x81 not an instruction" + b"\xff\xff\xff" + b't0.txt="unterminated\xff\xff\xff')
    q1 = NextionQrBoard("q1", transport, timeout=0.5)
    q1.show(URL, "OK", [])
    assert hmi.components["t0"] == "OK"


def test_cycler_takes_turns_on_the_clock(clock: FakeClock) -> None:
    a, b, c = (QrItem("Đất đai", "Land", "https://a"), QrItem("Hộ tịch", "Civil status", "https://b"),
               QrItem("Kinh doanh", "Business", "https://c"))
    cyc = QrCycler([a, b, c], clock, cycle_seconds=8)
    seen = []
    for _ in range(4):
        seen.append(cyc.current())
        clock.advance(8)
    assert seen == [a, b, c, a]
    assert cyc.seconds_left() == pytest.approx(8)
    clock.advance(3)
    assert cyc.seconds_left() == pytest.approx(5)
    cyc.set_items([c])
    assert cyc.current() == c
    cyc.set_items([])
    assert cyc.current() is None
    assert a.title == "Đất đai / Land"
    with pytest.raises(ValueError, match="cycle_seconds"):
        QrCycler([a], clock, 0)


def _page() -> str:
    items = [QrItem("Đất đai", "Land", URL), QrItem("<script>alert(1)</script>", "<b>x</b>", "https://x/?a=1&b=2")]
    waits = {"A": ("Đất đai", "Land", 4, 600.0), "B": ('Hộ "tịch" <script>', "Civil status", 0, None)}
    return render_qr_page("Trung tâm <Bến Nghé>", items, waits, refresh_s=15)


def test_page_escapes_config_text() -> None:
    page = _page()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "Trung tâm &lt;Bến Nghé&gt;" in page
    assert "https://x/?a=1&amp;b=2" in page
    assert '<meta http-equiv="refresh" content="15">' in page
    assert page.count("<svg") == 2
    assert "khoảng 10 phút" in page and "about 10 min" in page and "chưa rõ" in page
    assert re.search(r'class="n">4<', page)
    with pytest.raises(ValueError, match="refresh_s"):
        render_qr_page("x", [], {}, refresh_s=0)


def _dark_modules(svg: str) -> set[tuple[int, int]]:
    return {(int(x), int(y)) for x, y in re.findall(r"M(\d+),(\d+)H", svg)}


def test_page_qr_encodes_the_raw_url() -> None:
    """The QR holds the URL itself: not HTML-escaped ("&amp;"), not truncated."""
    url = "https://dichvucong.gov.vn/p?ma_thu_tuc=1.000001&lang=vi"
    page = render_qr_page("x", [QrItem("a", "b", url)], {}, 5)
    svg = page[page.index("<svg"):page.index("</svg>")]
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    qr.add_data(url)
    qr.make(fit=True)
    expected = {(x, y) for y, row in enumerate(qr.get_matrix()) for x, dark in enumerate(row) if dark}
    assert _dark_modules(svg) == expected
    assert _dark_modules(qr_svg(url.replace("&", "&amp;"))) != expected
    assert "URL too long" in render_qr_page("x", [QrItem("a", "b", "u" * 5000)], {}, 5)  # no crash


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed")
def test_page_in_a_browser_shows_names_and_runs_nothing() -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    html = _page().replace("alert(1)", "window.pwned=1")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.set_content(html)
            assert page.evaluate("typeof window.pwned") == "undefined"
            text = page.inner_text("body")
            assert "<script>window.pwned=1</script>" in text  # shown as text, not executed
            assert "Đất đai" in text and "Trung tâm <Bến Nghé>" in text
            sizes = page.eval_on_selector_all(".qr svg", "els => els.map(e => e.getBoundingClientRect().width)")
            assert len(sizes) == 2 and all(w > 100 for w in sizes)
        finally:
            browser.close()
