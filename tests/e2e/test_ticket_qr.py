"""The QR code on a printed ticket opens the citizen's ticket page at the gateway, in the demo.

The demo runs in-process (broker, gateway, one simulated center); a citizen presses a service button; the
printer emulator decodes the QR code's data from the ESC/POS bytes (GS ( k); that URL is fetched from the
demo gateway, which must answer with the ticket (found, waiting) in its page data."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from civiq.dev.demo import Demo
from tests.conftest import wait_for


def test_the_printed_qr_opens_the_ticket_page_of_the_demo_gateway(tmp_path: Path) -> None:
    demo = Demo(centers=1, speed=1, port=0, workdir=tmp_path / "demo").start()
    try:
        run = demo.runs[0]
        if run.people is not None:
            run.people.stop()  # only our citizen: the ticket number is known
        agent = run.agent
        before = len(agent.sim.printed("p1"))
        service = run.center.services[0].prefix
        agent.sim.press_button(service)
        wait_for(lambda: len(agent.sim.printed("p1")) > before, 10, what="the ticket printed")
        ticket = agent.sim.printed("p1")[-1]
        [qr] = ticket.qr
        url = urlparse(qr)
        assert f"{url.scheme}://{url.netloc}" == demo.url.rstrip("/")
        assert re.fullmatch(r"/t/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", url.path), qr
        label = next(line for line in ticket.text if re.fullmatch(rf"{service}\d{{3}}", line.strip())).strip()

        def page() -> dict:
            with urllib.request.urlopen(qr, timeout=5) as r:
                assert r.status == 200
                html = r.read().decode()
            boot = re.search(r'<script[^>]*id="boot"[^>]*>(.*?)</script>', html, re.S)
            assert boot, html[:500]
            return json.loads(boot.group(1))["data"]["ticket"]

        wait_for(lambda: page().get("found"), 15, what="the gateway knows the ticket")
        data = page()
        assert data["ticket"] == label and data["state"] == "waiting"
        token = url.path.removeprefix("/t/")
        with urllib.request.urlopen(f"{demo.url}api/v1/public/tickets/{token}", timeout=5) as r:
            assert json.loads(r.read())["ticket"] == label
    finally:
        demo.stop()
        demo.cleanup()
