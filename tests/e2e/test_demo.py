"""``civiq demo`` as a new user runs it: one command, then the dashboard in a browser, then Ctrl-C.

The demo runs as a subprocess (``python -m civiq demo``); the test reads the URL and the admin login from what
it prints, logs in with headless Chromium, checks the three centers are listed and that their numbers move,
screenshots the overview (into docs/img/demo-overview.png with ``CIVIQ_UPDATE_SCREENSHOTS=1``), then sends
SIGINT and expects a clean exit. A second run has no Mosquitto on its PATH and must fall back to the embedded
amqtt broker and still show the centers (checked through the JSON API).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from civiq.dev.broker import free_port
from civiq.dev.demo import gateway_settings
from civiq.dev.demo_centers import demo_centers
from civiq.dev.demo_people import arrival_factor
from civiq.edge.config import config_warnings, load_config
from tests.browser import HAVE_CHROMIUM, WHY_NOT, checked_page, chromium
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
DOCS_IMG = ROOT / "docs" / "img"
UPDATE = os.environ.get("CIVIQ_UPDATE_SCREENSHOTS") == "1"
CENTERS = {"hcm-xuanthoison": "Xã Xuân Thới Sơn", "hcm-saigon": "Phường Sài Gòn", "hcm-cholon": "Phường Chợ Lớn"}


class DemoProcess:
    """``python -m civiq demo ...`` with its output collected line by line."""

    def __init__(self, tmp: Path, port: int, env: dict[str, str] | None = None, via_make: bool = False) -> None:
        self.dir = tmp / "demo"
        full_env = {**os.environ, "CIVIQ_DEMO_DIR": str(self.dir), "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("DISPLAY", None)
        if "CIVIQ_DEMO_BROKER" not in (env or {}):
            full_env.pop("CIVIQ_DEMO_BROKER", None)  # auto: Mosquitto when it is on the PATH
        args = ["--no-browser", "--duration", "40", "--speed", "120", "--port", str(port)]
        cmd = [sys.executable, "-m", "civiq", "demo", *args]
        if via_make:  # the README's command, in the virtual environment `make test` made
            cmd = ["make", "--no-print-directory", "demo", f"VENV={sys.prefix}", f"DEMO_ARGS={' '.join(args)}"]
        # its own process group, so Ctrl-C reaches every process of it, as from a terminal
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, encoding="utf-8", start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 30.0) -> tuple[str, str]:
        """The dashboard URL and the admin password, once the banner is out."""
        wait_for(lambda: "Ctrl-C stops everything" in self.output or self.proc.poll() is not None,
                 timeout=timeout, what="the demo's banner")
        assert self.proc.poll() is None, f"the demo exited early:\n{self.output}"
        url = re.search(r"Dashboard\s+(http://\S+)", self.output)
        admin = re.search(r"\badmin\s+/\s+(\S+)", self.output)
        assert url and admin, f"no URL or admin login in:\n{self.output}"
        return url.group(1).rstrip("/"), admin.group(1)

    def interrupt(self, timeout: float = 15.0) -> int:
        """Ctrl-C; the exit code (fails the test when it takes longer than ``timeout``)."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"the demo did not stop within {timeout} s of SIGINT:\n{self.output[-3000:]}")
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def assert_clean(self) -> None:
        out = self.output
        assert "Traceback" not in out, out[-4000:]
        assert "stopped cleanly" in out, out[-2000:]
        log = (self.dir / "demo.log").read_text(encoding="utf-8")
        assert "Traceback" not in log, log[-4000:]


@pytest.fixture
def demo_run(tmp_path: Path) -> Iterator[DemoProcess]:
    d = DemoProcess(tmp_path, free_port())
    yield d
    d.kill()


def _card_texts(page, states: set[str] | None = None) -> dict[str, str]:  # noqa: ANN001
    """Each center card's text; adds every card's state class (``st-ok``, ``st-offline``...) to ``states``."""
    cards = page.evaluate(
        "() => [...document.querySelectorAll('[data-center]')].map((e) => [e.dataset.center, e.textContent,"
        " [...e.classList].filter((c) => c.startsWith('st-')).join(' ')])")
    if states is not None:
        states.update(f"{cid} {cls}" for cid, _, cls in cards)
    return {cid: text for cid, text, _ in cards}


def _check_png(path: Path) -> None:
    assert path.stat().st_size > 15_000, "suspiciously small screenshot"
    with Image.open(path) as img:
        assert img.width >= 1000 and img.height >= 500
        colors = img.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colors is not None and len(colors) > 200, "the screenshot is nearly uniform"


@pytest.mark.skipif(not HAVE_CHROMIUM, reason=WHY_NOT)
def test_demo_dashboard_is_alive_and_ctrl_c_stops_it(demo_run: DemoProcess, tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api")
    url, password = demo_run.wait_ready()
    with chromium() as browser, checked_page(browser, timeout_ms=10_000) as page:
        page.goto(f"{url}/login?next=/")
        page.fill("#user", "admin")
        page.fill("#password", password)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(f"{url}/")
        page.wait_for_function("() => document.querySelectorAll('[data-center]').length === 3")
        texts = _card_texts(page)
        assert set(texts) == set(CENTERS)
        for cid, name in CENTERS.items():  # the name from the center's config, sent in its birth
            assert name in texts[cid]
        # moving: the cards change in place (live updates) within a few seconds
        first, seen = texts, set()
        wait_for(lambda: all(_card_texts(page, seen)[c] != first[c] for c in CENTERS), timeout=12,
                 interval=0.2, what="every center's numbers to change")
        # every center has served citizens by now (the gateway got the edges' events)
        wait_for(lambda: all(int(page.text_content(f'[data-center="{c}"] [data-field="served_today"]')
                                 or 0) > 0 for c in CENTERS), timeout=12, interval=0.2,
                 what="served citizens")
        page.wait_for_selector('#conn[data-state="live"]')
        # every node stayed online all along (the gateway's heartbeat timeout follows the clock's speed)
        assert not [s for s in seen if "offline" in s or "unknown" in s], seen
        assert "hcm-saigon st-ok" in seen and "hcm-xuanthoison st-ok" in seen, seen
        if UPDATE:  # the docs picture: a morning with a problem (Chợ Lớn's printer runs out at 08:10)
            wait_for(lambda: page.text_content('[data-center="hcm-cholon"] [data-field="offline_devices"]')
                     == "1", timeout=30, interval=0.2, what="the printer at Chợ Lớn to run out of paper")
        shot = tmp_path / "demo-overview.png"
        page.screenshot(path=str(shot), full_page=True)
        _check_png(shot)
        if UPDATE:
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, DOCS_IMG / "demo-overview.png")
        _check_hall_pages(demo_run, browser)
    assert demo_run.interrupt() == 0
    demo_run.assert_clean()


def _check_hall_pages(demo: DemoProcess, browser) -> None:  # noqa: ANN001
    """The banner links each center's hall TV board and touch kiosk; the board is live; nothing is spoken."""
    links = re.findall(r"hall TV (http://\S+/board)\s+touch kiosk (http://\S+/kiosk)", demo.output)
    assert len(links) == len(CENTERS), demo.output
    for board, kiosk in links:
        api = board.removesuffix("board")
        with urllib.request.urlopen(kiosk, timeout=5) as r:
            assert "Lấy số thứ tự" in r.read().decode("utf-8")
        with urllib.request.urlopen(f"{api}api/voice", timeout=5) as r:
            assert json.load(r) == []  # the demo centers have no speaker: the demo speaks nothing
    def rated(api: str) -> int:  # the demo's citizens rate their counters after their ticket
        with urllib.request.urlopen(f"{api}api/rating", timeout=5) as r:
            return sum(d["ratings"] for d in json.load(r)["devices"].values())

    apis = [board.removesuffix("board") for board, _ in links]
    wait_for(lambda: all(rated(api) > 0 for api in apis), timeout=30, interval=0.5, what="ratings at every center")
    with checked_page(browser, width=1280, height=720, timeout_ms=10_000) as page:
        page.goto(links[0][0])
        page.wait_for_selector("#recent li[data-ticket]")  # the demo's clerks are calling
        assert page.locator(".counter[data-counter]").count() >= 2
        assert any(name in page.inner_text("#center") for name in CENTERS.values())


def _three_live_centers(demo: DemoProcess) -> None:
    url, password = demo.wait_ready()
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = urllib.parse.urlencode({"user": "admin", "password": password, "next": "/"}).encode()
    opener.open(f"{url}/login", data=form, timeout=5).read()

    def overview() -> list[dict]:
        with opener.open(f"{url}/api/v1/overview", timeout=5) as r:
            return json.load(r)["centers"]

    wait_for(lambda: {c["center"] for c in overview()} == set(CENTERS) and
             all(c["issued_today"] > 0 and c["nodes_online"] == 1 for c in overview()), timeout=20,
             interval=0.5, what="three live centers with tickets")

    def clerks(cid: str) -> list[str]:  # the demo's clerks sign in at opening: the gateway shows their names
        with opener.open(f"{url}/api/v1/centers/{cid}", timeout=5) as r:
            return [x["clerk_name"] for x in json.load(r)["counters"].values() if x.get("clerk_name")]

    wait_for(lambda: all(clerks(c) for c in CENTERS), timeout=20, interval=0.5, what="clerks signed in")


def test_make_demo_brings_up_the_dashboard(tmp_path: Path) -> None:
    if not (Path(sys.prefix) / ".installed").exists() or shutil.which("make") is None:
        pytest.skip("runs in the virtual environment `make test` creates (as CI does)")
    demo = DemoProcess(tmp_path, free_port(), via_make=True)
    try:
        _three_live_centers(demo)
    finally:
        code = demo.interrupt() if demo.proc.poll() is None else demo.proc.returncode
        demo.kill()
    # make exits 0, or dies of the Ctrl-C it got too (2, or -2 as a signal), after the demo stopped cleanly
    assert code in (0, 2, -2), demo.output
    demo.assert_clean()


def test_demo_without_mosquitto_uses_the_embedded_broker(tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    if shutil.which("mosquitto", path=bindir):  # pragma: no cover - depends on the machine
        pytest.skip(f"mosquitto is in {bindir}")
    demo = DemoProcess(tmp_path, free_port(), env={"PATH": bindir})
    try:
        demo.wait_ready()
        assert "embedded amqtt" in demo.output and "Mosquitto" not in demo.output
        _three_live_centers(demo)
    finally:
        code = demo.interrupt() if demo.proc.poll() is None else demo.proc.returncode
        demo.kill()
    assert code == 0
    demo.assert_clean()


# ------------------------------------------------------------------------------------------ the parts, fast
def test_demo_centers_are_valid_configs_with_distinct_ids(tmp_path: Path) -> None:
    centers = demo_centers(12)
    assert len({c.id for c in centers}) == 12
    assert [c.kind for c in centers[:3]] == ["commune", "ward", "printer"]
    for c in centers:
        path = tmp_path / f"{c.id}.yaml"
        path.write_text(c.config_yaml(broker_port=1883, state_dir=str(tmp_path / c.id)), encoding="utf-8")
        cfg = load_config(path, env={})  # the same check as `civiq config check`
        assert config_warnings(cfg) == []
        assert cfg.dispenser is not None and cfg.dispenser.debounce_ms == 50
        assert set(cfg.dispenser.buttons) == {s.prefix for s in c.services}
    # two failing printers never run out at the same minute
    outs = [c.printer_faults[0].out for c in centers if c.printer_faults]
    assert len(outs) == len(set(outs)) == 4
    with pytest.raises(ValueError, match="between 1 and"):
        demo_centers(0)


def _ratings_of(center, tmp_path: Path) -> list:  # noqa: ANN001 - DemoCenter -> list[Event]
    """40 citizens served at ``center``'s counters in turn, rating as the demo's people do."""
    from civiq.clock import FakeClock
    from civiq.dev.demo_people import CenterPeople
    from civiq.edge.cli import make_agent

    state = tmp_path / center.id
    path = tmp_path / f"{center.id}.yaml"
    path.write_text(center.config_yaml(1, str(state), rating_window_s=600, reasons_wait_s=2), encoding="utf-8")
    cfg = load_config(path, env={})
    assert cfg.rating is not None and {r.counter for r in cfg.ratingpads} == {k.id for k in center.counters}
    agent = make_agent(cfg, True, clock=FakeClock(), state_dir=state)
    agent.hw.start()  # the RS-485 pads are polled (no broker needed: the link is not started)
    people = CenterPeople(center, agent, agent.clock)

    def rated() -> list:
        return [e for e in agent.store.events() if e.type == "ticket.rated"]

    def all_in() -> bool:
        agent.clock.advance(3)
        agent.rating.tick()  # low scores with reasons: recorded after the reason wait
        return len(rated()) == people.ratings

    try:
        for i in range(40):
            counter = center.counters[i % len(center.counters)].id
            agent.clock.advance(60)  # a minute per citizen (a GPIO pad debounces on this clock)
            agent.engine.issue(agent.engine.profile(counter).services[0])
            agent.engine.call_next(counter)
            agent.engine.complete(counter)
            before = people.ratings
            people._rate()  # noqa: SLF001 - the step's rating part, without the clock's day
            if people.ratings > before:  # a polled pad takes its press a moment later
                wait_for(lambda c=counter: agent.rating.window(c)["state"] != "open", timeout=5,
                         what=f"the rating at {counter} taken")
        wait_for(all_in, timeout=15, interval=0.2, what="every citizen's rating recorded")
        return rated()
    finally:
        people.stop()
        agent.hw.close()
        agent.sim.stop()


def test_the_citizens_rate_on_every_kind_of_rating_device(tmp_path: Path) -> None:
    """After "done", most of the demo's citizens rate on their counter's device (a page, GPIO keys, an RS-485
    pad: the same paths as a real press), mostly satisfied, low scores with reasons."""
    commune, _ward, printer = demo_centers(3)
    by: list[str] = []
    for center in (commune, printer):
        events = _ratings_of(center, tmp_path)
        assert 24 <= len(events) <= 40  # ~80 % rate
        scores = [e.data["score"] for e in events]
        assert sum(s >= 4 for s in scores) > len(scores) / 2
        assert all(e.data["reasons"] for e in events if e.data["score"] <= 3 and e.data["by"] != "keys:r1")
        by += [e.data["by"] for e in events]
    assert {"page", "keys:r1", "pad:r2"} <= set(by)


def test_arrivals_follow_the_working_day() -> None:
    assert arrival_factor(7.0) == arrival_factor(17.0) == arrival_factor(22.0) == 0.0  # closed
    assert arrival_factor(7.5) > 1.5  # the crowd at the doors at opening
    assert arrival_factor(9.0) == arrival_factor(15.0) == 1.0  # peaks
    assert arrival_factor(12.0) < 0.2 < arrival_factor(11.0)  # quiet at lunch
    assert 0 < arrival_factor(16.75) < 1.0


def test_gateway_intervals_are_scaled_to_the_clock_speed(tmp_path: Path) -> None:
    # edges report health every 15 real seconds: at x120 that is 1800 clock seconds between reports
    s = gateway_settings(tmp_path, broker_port=1883, http_port=8080, speed=120)
    assert s.heartbeat_timeout_s == 3 * 15 * 120
    assert s.alerts.clear_after_s == 10 * 120 and s.alerts.flap_window_s == 600 * 120
    assert s.balance.interval_s == 10 * 120
    assert s.alerts.thresholds.outbox_oldest_s_max == 300 * 120
