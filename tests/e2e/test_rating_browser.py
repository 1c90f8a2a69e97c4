"""The rating page of a counter in headless Chromium, on a simulated agent: idle, the window opening after
the clerk's "done" with the ticket number, a tap on a low score, a reason, "Gửi" — and the ``ticket.rated``
event holds them. A tap when nothing can be rated is refused on screen and counted. Screenshot:
docs/img/rating-page.png (with CIVIQ_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civiq.contract import EventType
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.web import agent_app, agent_routes
from civiq.webthread import WebThread
from tests.browser import HAVE_CHROMIUM, WHY_NOT, checked_page, chromium
from tests.conftest import wait_for
from tests.e2e.rating_center import write_rating_center

if not HAVE_CHROMIUM:  # pragma: no cover - the machine's setup installs it (apt: chromium)
    pytest.skip(WHY_NOT, allow_module_level=True)

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
UPDATE = os.environ.get("CIVIQ_UPDATE_SCREENSHOTS") == "1"


@pytest.fixture
def agent(tmp_path: Path, broker) -> Iterator[Any]:  # noqa: ANN001
    cfg = load_config(write_rating_center(tmp_path, broker.port))
    a = make_agent(cfg, simulate=True)
    a.start()
    server = WebThread(agent_app(agent_routes(a)), port=free_port()).start()
    a.test_url = f"http://127.0.0.1:{server.port}"
    try:
        yield a
    finally:
        a.stop()
        server.stop()
        a.sim.stop()


def rated(agent: Any) -> list[Any]:
    return [e for e in agent.store.events() if e.type == EventType.ticket_rated]


def fits(page: Any) -> bool:
    """Everything on the screen: nothing to scroll, nothing cut."""
    return page.evaluate("() => { const d = document.documentElement, s = document.getElementById('screen');"
                         " return d.scrollHeight <= innerHeight && d.scrollWidth <= innerWidth"
                         " && s.scrollHeight <= s.clientHeight + 1; }")


def serve(agent: Any, counter: str, service: str) -> str:
    agent.on_dispenser_press(service)
    t = agent.counter_action(counter, "next")
    agent.counter_action(counter, "done")
    return t.label


def test_the_page_shows_the_window_takes_a_low_score_and_a_reason(agent, tmp_path: Path) -> None:  # noqa: ANN001
    with chromium() as browser, checked_page(browser, width=1024, height=600) as page:
        page.goto(f"{agent.test_url}/rate/c1")
        page.wait_for_function("document.getElementById('counter').textContent === 'Quầy 1'")
        assert "Mời ông/bà đánh giá mức độ hài lòng sau khi được phục vụ" in page.inner_text("#screen")
        # a tap on nothing: the page never shows faces while idle; the API refuses and counts it
        req = urllib.request.Request(f"{agent.test_url}/api/rate/c1", method="POST", data=b'{"score": 5}')
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code == 409 and json.loads(refused.value.read())["result"] == "no_window"
        assert agent.rating.device_counts("rp1")["outside_window"] == 1

        label = serve(agent, "c1", "A")
        page.wait_for_selector("#ticket")
        assert page.inner_text("#ticket") == label
        assert "Mời ông/bà đánh giá mức độ hài lòng" in page.inner_text("#screen")
        faces = page.locator("button.face")
        assert faces.count() == 5
        assert [faces.nth(i).locator(".vi").inner_text() for i in range(5)] == [
            "Rất không hài lòng", "Không hài lòng", "Bình thường", "Hài lòng", "Rất hài lòng"]
        shot = tmp_path / "rating-page.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        if UPDATE:
            shutil.copy(shot, DOCS_IMG / "rating-page.png")

        assert fits(page)
        page.click("button.face[data-score='2']")
        page.wait_for_selector("button.reason[data-reason='wait']")
        assert "Ông/bà chưa hài lòng về điều gì?" in page.inner_text("#screen")
        page.click("button.reason[data-reason='wait']")
        wait_for(lambda: agent.rating.window("c1")["reasons"] == ["wait"], what="the reason taken by the agent")
        page.screenshot(path=str(tmp_path / "rating-reasons.png"))
        assert fits(page)
        page.click("#send")
        page.wait_for_function("document.getElementById('screen').className === 'thanks'")
        assert "Cảm ơn ông/bà!" in page.inner_text("#screen")
        (ev,) = wait_for(lambda: rated(agent), what="ticket.rated")
        assert (ev.data["ticket"], ev.data["score"], ev.data["reasons"], ev.data["by"], ev.data["counter"]) == (
            label, 2, ["wait"], "page", "c1")
        page.wait_for_function("document.getElementById('screen').className === 'idle'", timeout=8000)

        # the next citizen rates on the GPIO keys of the same counter: the page (and a tablet held upright
        # beside it) thanks them too
        with checked_page(browser, width=600, height=1024) as upright:
            upright.goto(f"{agent.test_url}/rate/c1")
            upright.wait_for_function("document.getElementById('counter').textContent === 'Quầy 1'")
            second = serve(agent, "c1", "B")
            for p in (page, upright):
                p.wait_for_function("t => document.getElementById('ticket')?.textContent === t", arg=second)
            assert fits(upright)
            upright.screenshot(path=str(tmp_path / "rating-upright.png"))
            agent.sim.rate("r1", 5)
            for p in (page, upright):
                p.wait_for_function("document.getElementById('screen').className === 'thanks'")
        assert [e.data["ticket"] for e in rated(agent)] == [label, second]
