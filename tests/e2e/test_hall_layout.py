"""The hall board of a large ward fits its TV: the demo's ward (8 counters with long names, 6 services, numbers
like ``TK012``) on a 1920x1080 and a 1280x720 screen in headless Chromium. Every counter card, every recent
call and every service's waiting count must be wholly on screen, not under the waiting line or cut, and the
numbers stay large. (Before the board sized itself, counters 7-8 and the last calls were hidden there.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civiq.dev.broker import free_port
from civiq.dev.demo_centers import demo_centers
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.web import agent_app, agent_routes
from civiq.webthread import WebThread
from tests.browser import HAVE_CHROMIUM, WHY_NOT, checked_page, chromium

if not HAVE_CHROMIUM:  # pragma: no cover - the machine's setup installs it (apt: chromium)
    pytest.skip(WHY_NOT, allow_module_level=True)
pytest.importorskip("playwright.sync_api")

# where each box is, and whether something inside is cut (wider than its box)
BOXES = """() => {
  const r = e => e.getBoundingClientRect();
  const foot = r(document.querySelector('footer')).top;
  const box = (sel, inFooter) => [...document.querySelectorAll(sel)].map(e => ({
    sel, text: e.textContent.trim().slice(0, 40), top: r(e).top, bottom: r(e).bottom, left: r(e).left,
    right: r(e).right, cut: e.scrollWidth > e.clientWidth + 1, limit: inFooter ? innerHeight : foot}));
  return [...box('.counter[data-counter]', false), ...box('.counter .num', false),
          ...box('#recent li[data-ticket]', false), ...box('footer .svc', true)];
}"""


@pytest.fixture
def ward(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    center = next(c for c in demo_centers(3) if c.kind == "ward")
    path = tmp_path / f"{center.id}.yaml"
    path.write_text(center.config_yaml(free_port(), str(tmp_path / "state")), encoding="utf-8")
    cfg = load_config(path, env={})
    assert len(cfg.counters) >= 8 and len(cfg.services) >= 6
    agent = make_agent(cfg, simulate=True)
    agent.start()
    server = WebThread(agent_app(agent_routes(agent))).start()
    try:
        yield agent, f"http://127.0.0.1:{server.port}"
    finally:
        agent.stop()
        server.stop()
        agent.sim.stop()


def test_a_large_ward_board_fits_1080p_and_720p(ward) -> None:  # noqa: ANN001
    agent, url = ward
    prefixes = [s.prefix for s in agent.cfg.services]
    assert max(len(p) for p in prefixes) >= 2  # numbers like TK012
    for _ in range(3):
        for p in prefixes:
            agent.on_dispenser_press(p)
    for c in agent.cfg.counters:  # every counter serves someone
        assert agent.counter_action(c.id, "next") is not None, c.id
    for c in agent.cfg.counters[:4]:
        agent.counter_action(c.id, "next")
    n = agent.hall.recent_n
    with chromium() as browser:
        for width, height, min_px in ((1920, 1080, 60), (1280, 720, 40)):
            with checked_page(browser, width=width, height=height) as page:
                page.goto(url + "/board")
                page.wait_for_function(f"document.querySelectorAll('#recent li[data-ticket]').length === {n}")
                boxes = page.evaluate(BOXES)
                assert len([b for b in boxes if b["sel"] == ".counter[data-counter]"]) == len(agent.cfg.counters)
                for b in boxes:
                    where = f"{width}x{height}: {b}"
                    assert b["top"] >= 0 and b["left"] >= 0 and b["right"] <= width + 0.5, where
                    assert b["bottom"] <= b["limit"] + 0.5, where  # not under the waiting line, not off screen
                    assert not b["cut"], where
                num = page.evaluate("Math.min(...[...document.querySelectorAll('.counter .num')]"
                                    ".map(e => parseFloat(getComputedStyle(e).fontSize)))")
                call = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#recent .t')).fontSize)")
                assert num >= min_px and call >= min_px * 0.7, (width, num, call)  # still read from 5 m


def test_a_large_ward_kiosk_fits_common_touch_screens(ward) -> None:  # noqa: ANN001
    """6 services and 4 priority classes: every button wholly on a 1080p touch monitor, a 7" 1024x600 screen
    and a portrait 1080x1920 kiosk, and still a target for a finger."""
    agent, url = ward
    assert len(agent.cfg.priority.enabled()) == 4
    with chromium() as browser:
        for width, height in ((1920, 1080), (1024, 600), (1080, 1920)):
            with checked_page(browser, width=width, height=height) as page:
                page.goto(url + "/kiosk")
                page.wait_for_selector("button.svc")
                buttons = page.evaluate("""() => [...document.querySelectorAll('button.svc, #classes button')]
                  .map(e => { const r = e.getBoundingClientRect();
                    return {text: e.textContent.slice(0, 30), top: r.top, bottom: r.bottom, right: r.right,
                            w: r.width, h: r.height, cut: e.scrollWidth > e.clientWidth + 1}; })""")
                assert len(buttons) == len(agent.cfg.services) + 4
                for b in buttons:
                    where = f"{width}x{height}: {b}"
                    assert b["top"] >= 0 and b["bottom"] <= height + 0.5 and b["right"] <= width + 0.5, where
                    assert b["h"] >= 44 and b["w"] >= 120 and not b["cut"], where  # a finger's target
