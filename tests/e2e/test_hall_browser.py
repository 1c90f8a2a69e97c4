"""The hall TV board and the touch kiosk in headless Chromium, on a simulated agent (emulated printer, mock
pins, a real Mosquitto): a burst of calls from four counters, an agent restart the page survives without a
reload, a kiosk tap that prints a ticket. Screenshots: docs/img/hall-board.png, docs/img/kiosk.png."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.web import agent_app, agent_routes
from civiq.webthread import WebThread
from tests.browser import HAVE_CHROMIUM, WHY_NOT, checked_page, chromium
from tests.e2e.centers import write_center

if not HAVE_CHROMIUM:  # pragma: no cover - the machine's setup installs it (apt: chromium)
    pytest.skip(WHY_NOT, allow_module_level=True)

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
UPDATE = os.environ.get("CIVIQ_UPDATE_SCREENSHOTS") == "1"  # rewrite docs/img/ from these runs


def shot(page: Any, tmp_path: Path, name: str) -> None:
    """A screenshot in the test's directory; with CIVIQ_UPDATE_SCREENSHOTS=1 also the docs' picture."""
    path = tmp_path / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000, "suspiciously small screenshot"
    if UPDATE:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / name)
RECENT_N = 6
MORE_COUNTERS = """\
  - {id: c3, name: "Quầy 3", profile: {services: [A, B]}}
  - {id: c4, name: "Quầy 4", profile: {services: [B, A]}}
"""


class Hall:
    """A simulated agent and its local HTTP server on a fixed port; ``restart()`` replaces both, as
    systemd does after a crash or an update (same port, same state directory)."""

    def __init__(self, cfg_path: Path, port: int) -> None:
        self.cfg, self.port = load_config(cfg_path), port
        self.agent: Any = None
        self.server: WebThread | None = None
        self.start()

    def start(self) -> None:
        self.agent = make_agent(self.cfg, simulate=True)
        self.agent.start()
        self.server = WebThread(agent_app(agent_routes(self.agent)), port=self.port).start()

    def stop(self) -> None:
        self.agent.stop()
        self.server.stop()
        self.agent.sim.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def hall(tmp_path: Path, broker) -> Iterator[Hall]:  # noqa: ANN001
    port = free_port()
    p = write_center(tmp_path, broker.port, http_port=port)
    text = re.sub(r"(?m)^dispenser:", MORE_COUNTERS + "dispenser:", p.read_text("utf-8"))
    text = text.replace("recall_cooldown_s: 10", "recall_cooldown_s: 0")  # the 720p test recalls at once
    p.write_text(text + f"hall: {{recent_calls: {RECENT_N}, highlight_s: 2}}\n", encoding="utf-8")
    h = Hall(p, port)
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


# Records, in the page, when each ticket first appears in the recent calls list (a call pushed out of the
# last N by the next ones was still on screen first).
OBSERVER = """() => {
  window.firstSeen = {};
  const note = () => document.querySelectorAll('#recent li').forEach(li => {
    if (!(li.dataset.ticket + '@' + li.dataset.id in window.firstSeen))
      window.firstSeen[li.dataset.ticket + '@' + li.dataset.id] = Date.now();
  });
  new MutationObserver(note).observe(document.getElementById('recent'), {childList: true, subtree: true});
  note();
}"""


def burst(agent: Any, calls_per_counter: int) -> list[tuple[str, str]]:
    """Four clerks press "next" at the same moment, ``calls_per_counter`` times each; returns (ticket,
    counter) of every call made."""
    made: list[tuple[str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def clerk(counter: str) -> None:
        start.wait()
        for _ in range(calls_per_counter):
            t = agent.counter_action(counter, "next")
            with lock:
                made.append((t.label, counter))

    threads = [threading.Thread(target=clerk, args=(c,)) for c in ("c1", "c2", "c3", "c4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return made


def recent_tickets(page: Any) -> list[str]:
    return page.eval_on_selector_all("#recent li", "els => els.map(e => e.dataset.ticket)")


def test_board_shows_a_burst_keeps_the_last_n_and_survives_an_agent_restart(hall: Hall, browser, tmp_path: Path) -> None:  # noqa: ANN001
    for i in range(12):
        hall.agent.on_dispenser_press("AB"[i % 2])
    with checked_page(browser, width=1920, height=1080) as page:
        page.goto(hall.url("/board"))
        page.wait_for_selector("#waiting [data-service='A']")
        assert page.inner_text("#waiting [data-service='A']").startswith("A · Đất đai: 6")
        marker = page.evaluate("window.civiqLoadedAt")
        page.evaluate(OBSERVER)
        made = burst(hall.agent, 2)  # 8 calls, 4 counters at once
        # the last N calls are on the board within 1 s, newest first, and the newest is highlighted
        calls = [e for e in hall.agent.store.events() if e.type == "ticket.called"]
        want = [e.data["ticket"] for e in reversed(calls)][:RECENT_N]
        page.wait_for_function("want => JSON.stringify([...document.querySelectorAll('#recent li')]"
                               ".map(e => e.dataset.ticket)) === JSON.stringify(want)", arg=want, timeout=1000)
        assert len(made) == 8
        seen = page.evaluate("Object.keys(window.firstSeen).map(k => k.split('@')[0])")
        # the board showed only calls that were made, and every one it must hold; the two pushed out by the burst
        # may never be drawn: a burst faster than the stream reaches the TV as one state (no flicker through
        # lists nobody can read; the voice still calls each of them, in order)
        assert set(seen) <= {t for t, _ in made} and set(want) <= set(seen)
        assert page.get_attribute("#recent li:first-child", "class") == "fresh"
        # every counter shows the number it serves now, by its name
        for c in ("c1", "c2", "c3", "c4"):
            now = hall.agent.engine.counter(c).ticket
            card = page.locator(f".counter[data-counter='{c}']")
            assert card.locator(".num").inner_text() == now
            assert card.locator(".name").inner_text() == {"c1": "Quầy 1", "c2": "Quầy 2", "c3": "Quầy 3",
                                                          "c4": "Quầy 4"}[c]
        assert page.inner_text("#waiting [data-service='A']").startswith("A · Đất đai: 2")
        shot(page, tmp_path, "hall-board.png")
        assert page.locator("#recent li.fresh").count() == 1  # only the newest
        page.wait_for_selector("#recent li.fresh, #recent li.new", state="detached", timeout=6000)  # over, kept
        assert recent_tickets(page) == want

        hall.stop()  # the agent goes away: the page says so and keeps what it showed
        page.wait_for_selector("#offline", state="visible", timeout=5000)
        assert recent_tickets(page) == want
        hall.start()  # a new agent on the same port and state directory
        page.wait_for_selector("#offline", state="hidden", timeout=10_000)
        t = hall.agent.counter_action("c3", "next")
        page.wait_for_function("t => document.querySelector('#recent li')?.dataset.ticket === t",
                               arg=t.label, timeout=1000)
        assert page.locator(".counter[data-counter='c3'] .num").inner_text() == t.label
        assert recent_tickets(page)[1:] == want[:RECENT_N - 1]  # the restarted agent kept the list
        assert page.evaluate("window.civiqLoadedAt") == marker  # never reloaded


def test_board_at_720p_fits_the_screen(hall: Hall, browser) -> None:  # noqa: ANN001
    for i in range(10):
        hall.agent.on_dispenser_press("AB"[i % 2])
    burst(hall.agent, 2)
    hall.agent.on_dispenser_press("A", priority="elderly")
    assert hall.agent.counter_action("c2", "next").priority == "elderly"  # goes first
    hall.agent.counter_action("c1", "recall")
    with checked_page(browser, width=1280, height=720) as page:
        page.goto(hall.url("/board"))
        page.wait_for_selector(f"#recent li:nth-child({RECENT_N})")
        assert "Gọi lại" in page.inner_text("#recent li:first-child")  # the recall is marked
        assert "ƯU TIÊN · Người cao tuổi" in page.inner_text("#recent")
        box = page.evaluate("""() => { const r = document.querySelector('#recent li:last-child')
            .getBoundingClientRect(); const f = document.querySelector('footer').getBoundingClientRect();
            return {listBottom: r.bottom, footerTop: f.top, h: innerHeight,
                    sw: document.documentElement.scrollWidth, w: innerWidth}; }""")
        assert box["listBottom"] <= box["footerTop"] and box["sw"] <= box["w"], box


def test_kiosk_tap_prints_a_ticket_and_shows_its_number(hall: Hall, browser, tmp_path: Path) -> None:  # noqa: ANN001
    hall.agent.on_dispenser_press("B")
    hall.agent.sim.emulator_of("p1").wait_tickets(1, timeout=10)
    with checked_page(browser, width=1280, height=800) as page:
        page.goto(hall.url("/kiosk"))
        page.wait_for_selector("button.svc[data-service='B']")
        page.click("#classes button[data-class='elderly']")
        shot(page, tmp_path, "kiosk.png")
        page.click("button.svc[data-service='B']")
        page.click("button.svc[data-service='B']", force=True, no_wait_after=True)  # a double tap
        page.wait_for_selector("#issued")
        assert page.inner_text("#issued") == "B002"
        text = page.inner_text("#result")
        assert "Vui lòng nhận phiếu" in text and "Trước bạn: 0 người" in text and "Người cao tuổi" in text
        printed = hall.agent.sim.emulator_of("p1").wait_tickets(2, timeout=10)
        assert "B002" in printed[1].all_text()
        shot(page, tmp_path, "kiosk-ticket.png")
        hall.agent.sim.set_printer("p1", paper_out=True)
        hall.agent.poll_devices()
        page.wait_for_selector("#fault", state="visible", timeout=10_000)  # said plainly, at once
        assert "Máy in hết giấy" in page.inner_text("#fault")
        assert hall.agent.engine.snapshot().services["B"].issued_today == 2  # one ticket for the double tap


@pytest.fixture
def voiced(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, broker) -> Iterator[Hall]:  # noqa: ANN001
    from tests.edge.voicepack import SHORT_TEMPLATE, shared_pack

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng missing: run scripts/install-test-deps.sh")
    port = free_port()
    p = write_center(tmp_path, broker.port, http_port=port)
    text = re.sub(r"(?m)^dispenser:", MORE_COUNTERS + "dispenser:", p.read_text("utf-8"))
    speaker = (f'speaker: {{template: "{SHORT_TEMPLATE}", pack_dir: {shared_pack(tmp_path_factory)}, repeat: 1, '
               f'chime: false, counter_names: {{c3: "quầy số 3"}}}}\n')
    p.write_text(text + speaker, encoding="utf-8")
    h = Hall(p, port)
    try:
        yield h
    finally:
        h.stop()


def test_board_with_audio_plays_each_announcement_in_order_never_two_at_once(voiced: Hall, browser) -> None:  # noqa: ANN001
    for _ in range(3):
        voiced.agent.on_dispenser_press("A")
    with checked_page(browser, width=1280, height=720) as page:
        page.goto(voiced.url("/board?audio=1"))
        page.wait_for_selector("#waiting [data-service='A']")
        burst3 = threading.Barrier(3)

        def clerk(c: str) -> None:
            burst3.wait()
            voiced.agent.counter_action(c, "next")

        threads = [threading.Thread(target=clerk, args=(c,)) for c in ("c1", "c2", "c3")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        if page.evaluate("window.civiqAudio.refused") or page.is_visible("#sound"):
            page.click("#sound")  # the browser wants a tap before it plays (kiosk mode: the autoplay flag)
        page.wait_for_function("window.civiqAudio.played.length === 3 && window.civiqAudio.active === 0",
                               timeout=30_000)
        made = [f"/api/voice/{a.id}.wav" for a in voiced.agent.announcer.recent_list()]
        assert page.evaluate("window.civiqAudio.played") == made  # each once, in the order announced
        assert page.evaluate("window.civiqAudio.maxActive") == 1  # never overlapping
