"""The citizen's ticket page on a small phone (360 px wide) with long names: nothing sticks out sideways and no
word is cut across two lines; a called ticket names the counter by its name. Real headless Chromium; the
geometry is read from the laid-out page (element boxes and the boxes of every word)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from civiq.clock import SystemClock, local_day
from civiq.gateway.web import UserStore, create_app, ticket_token
from civiq.gateway.web.memory import sample_view
from tests.browser import HAVE_CHROMIUM, WHY_NOT, chromium
from tests.gateway.test_web_browser import ServerThread

if not HAVE_CHROMIUM:  # pragma: no cover
    pytest.skip(WHY_NOT, allow_module_level=True)

SECRET = b"phone-test-secret-0123456789abcd"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
CENTER = "Trung tâm Phục vụ hành chính công phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh"
SERVICE = "Đăng ký kinh doanh hộ cá thể, hợp tác xã và chuyển nhượng quyền sử dụng đất"
COUNTER = "Quầy 12 - Đăng ký kinh doanh và đầu tư (ưu tiên người cao tuổi)"

# Every problem a citizen would see: the page scrolls sideways, a box or a word sticks out of the screen,
# a word is split over two lines.
LAYOUT_PROBLEMS = """() => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > vw) out.push(`the page scrolls sideways (${document.documentElement.scrollWidth} > ${vw})`);
  const card = document.querySelector(".ticket-card");
  const box = card.getBoundingClientRect();
  for (const el of card.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (!r.width && !r.height) continue;
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5) out.push(`#${el.id || el.className} sticks out of the card`);
  }
  const walk = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const re = /\\S+/g;
    for (let m = re.exec(n.textContent); m; m = re.exec(n.textContent)) {
      const range = document.createRange();
      range.setStart(n, m.index);
      range.setEnd(n, m.index + m[0].length);
      const rects = [...range.getClientRects()].filter((r) => r.width > 0);
      if (!rects.length) continue;
      if (new Set(rects.map((r) => Math.round(r.top))).size > 1) out.push(`"${m[0]}" is split over two lines`);
      for (const r of rects) if (r.left < -0.5 || r.right > vw + 0.5) out.push(`"${m[0]}" runs off the screen`);
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    clock = SystemClock()
    users = UserStore(tmp_path_factory.mktemp("users") / "users.db")
    view = sample_view(clock)
    srv = ServerThread(create_app(view, users, secret=SECRET, public_base_url="http://127.0.0.1", clock=clock))
    try:
        yield f"http://127.0.0.1:{srv.port}", view
    finally:
        srv.stop()
        users.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_long_names_fit_a_360px_phone(site, browser, tmp_path: Path, lang: str) -> None:  # noqa: ANN001
    url, view = site
    day = local_day(SystemClock().now())
    view.put_ticket("hcm-q1", day, "LD1128", service="LD", service_name=SERVICE, center_name=CENTER, state="waiting",
                    ahead=127, eta_s=5 * 3600 + 25 * 60, counter=None, counter_name=None)
    token = ticket_token(SECRET, "hcm-q1", day, "LD1128")
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, device_scale_factor=2)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{url}/t/{token}?lang={lang}")
        page.wait_for_selector("#t-ahead:has-text('127')")
        assert page.text_content("#t-service") == SERVICE and page.text_content("#t-center") == CENTER
        assert page.evaluate(LAYOUT_PROBLEMS) == []

        # called: the counter's name (not its id), in big type, and still nothing sticks out
        view.put_ticket("hcm-q1", day, "LD1128", service="LD", service_name=SERVICE, center_name=CENTER,
                        state="called", ahead=None, eta_s=None, counter="c12", counter_name=COUNTER)
        page.wait_for_selector("#t-counter:visible", timeout=5000)
        assert page.text_content("#t-counter") == COUNTER
        assert "c12" not in page.inner_text("body")
        assert page.text_content("#t-state") == ("Mời đến" if lang == "vi" else "Please go to")
        assert page.evaluate(LAYOUT_PROBLEMS) == []
        if lang == "vi":
            path = tmp_path / "gateway-ticket-phone.png"
            page.screenshot(path=str(path), full_page=True)
            if os.environ.get("CIVIQ_UPDATE_SCREENSHOTS") == "1":
                shutil.copy(path, DOCS_IMG / path.name)
    finally:
        ctx.close()
    assert errors == []


def test_the_check_sees_a_word_split_and_a_box_sticking_out(site, browser) -> None:  # noqa: ANN001
    """The geometry check itself can fail: the old rules (break anywhere, no wrapping in the facts)."""
    url, view = site
    day = local_day(SystemClock().now())
    view.put_ticket("hcm-q1", day, "B129", service="LD", service_name=SERVICE, center_name=CENTER, state="waiting",
                    ahead=3, eta_s=5 * 3600 + 25 * 60, counter=None)
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = ctx.new_page()
    try:
        page.goto(f"{url}/t/{ticket_token(SECRET, 'hcm-q1', day, 'B129')}")
        page.wait_for_selector("#t-ahead:has-text('3')")
        page.evaluate("""() => {  // CSSOM (the page's CSP refuses injected style sheets)
          const s = document.querySelector(".ticket-service").style;
          s.overflowWrap = "anywhere"; s.width = "3.5ch";
          for (const dd of document.querySelectorAll(".ticket-facts dd")) {
            dd.style.whiteSpace = "nowrap"; dd.style.fontSize = "3rem";
          }
        }""")
        problems = page.evaluate(LAYOUT_PROBLEMS)
        assert any("split over two lines" in p for p in problems), problems
        assert any("sticks out" in p or "runs off" in p for p in problems), problems
    finally:
        ctx.close()
