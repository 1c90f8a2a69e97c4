"""The gateway killed with kill -9 at random moments and restarted, while centers keep working.

A real ``civiq gateway run`` process with a webhook channel, two simulated centers pressing and calling all
the while, a printer out of paper before the first kill. After every restart: the agents re-announce
themselves (a new birth on the same connection), the alert state is back from the gateway's own files and
nobody is told twice, no node is declared offline (no storm after an outage of our own), and in the end every
event of every center is in the gateway's store, once. 3 kills in CI, 30 under ``CIVIQ_SOAK=1``.
"""

from __future__ import annotations

import random
import re
import signal
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from civiq.contract import Status, parse_payload, topic
from civiq.dev.harness import GatewayProc
from tests.conftest import Recorder, wait_for
from tests.e2e.system import SimCenter, Webhook
from tests.reliability.faultkit import soak

pytestmark = pytest.mark.slow

CENTERS = ("xa-k1", "xa-k2")
PAPER_KEY = "xa-k1/pi-1/p1/printer_paper_out"
GRACE_S = 8  # the gateway's heartbeat timeout, which is also its node_offline grace after a start


def online_nodes(gw: GatewayProc) -> float:
    with urllib.request.urlopen(f"{gw.url}/metrics", timeout=5) as r:
        m = re.search(r'^civiq_gw_nodes\{status="online"\} (\S+)$', r.read().decode(), re.M)
    return float(m.group(1)) if m else 0.0


def stored(gw: GatewayProc, center: str) -> tuple[int, int]:
    """(rows, highest seq) of ``center``'s events in the gateway's store, read beside the running gateway."""
    db = sqlite3.connect(f"file:{gw.dir / 'data' / 'series.db'}?mode=ro", uri=True, timeout=10)
    try:
        n, top = db.execute("SELECT count(*), coalesce(max(seq), 0) FROM events WHERE center=?", (center,)).fetchone()
    finally:
        db.close()
    return int(n), int(top)


@pytest.mark.timeout(soak(180, 2400))
def test_gateway_kill9_again_and_again_loses_nothing_and_cries_no_wolf(tmp_path: Path, broker,  # noqa: ANN001
                                                                       hook: Webhook) -> None:
    gw = GatewayProc(broker.port, tmp_path / "gw", heartbeat_timeout_s=GRACE_S,
                     alerts={"webhooks": [hook.url], "mqtt": False}).start()
    births = Recorder(broker.host, broker.port, [topic(c, "pi-1", "status") for c in CENTERS])
    centers = []
    for c in CENTERS:
        (tmp_path / c).mkdir()
        centers.append(SimCenter(tmp_path / c, broker.port, c).start())
    stop = threading.Event()

    def work() -> None:  # a busy hour: a ticket every 0.1 s somewhere, calls in between
        i = 0
        while not stop.wait(0.1):
            c = centers[i % 2].agent.sim
            c.press_button("AB"[i // 2 % 2])
            if i % 5 == 4:
                c.press_key(f"k{1 + i // 5 % 2}", "next")
            i += 1

    worker = threading.Thread(target=work, daemon=True)
    rng = random.Random(6)
    kills = int(soak(3, 30))
    try:
        wait_for(lambda: online_nodes(gw) == 2, timeout=30, what="both nodes online")
        centers[0].agent.sim.set_printer("p1", paper_out=True)
        wait_for(lambda: hook.messages(key=PAPER_KEY, state="firing"), timeout=15, what="the paper-out alert")
        worker.start()
        for k in range(kills):
            time.sleep(rng.uniform(0.5, 3.0))  # anywhere: mid-batch, mid-commit, mid-delivery
            before = {c: len(births.on(f"{c}/pi-1/status")) for c in CENTERS}
            gw.proc.send_signal(signal.SIGKILL)
            gw.proc.wait(10)
            time.sleep(rng.uniform(0.0, 2.0))
            gw.start()  # the same data dir; the broker kept its persistent session
            wait_for(lambda before=before: all(len(births.on(f"{c}/pi-1/status")) > before[c] for c in CENTERS),
                     timeout=15, what=f"every agent re-announced itself after restart {k + 1}")
        stop.set()
        worker.join(5)
        t_last = time.monotonic()
        for c in centers:
            wait_for(lambda c=c: c.agent.store.pending_count() == 0, timeout=30, what=f"{c.center}'s outbox drained")
        for c in centers:
            last = c.agent.store.last_seq()
            wait_for(lambda c=c, last=last: stored(gw, c.center) == (last, last), timeout=30,
                     what=f"all {last} events of {c.center} in the gateway's store, once each")
        assert online_nodes(gw) == 2
        # past the grace that follows the last start: any false offline would be out by now
        time.sleep(max(0.0, t_last + GRACE_S + 3 - time.monotonic()))
        offline = hook.messages(kind="node_offline")
        assert not offline, f"the gateway's own outages raised node_offline: {hook.summary()}"
        paper = hook.messages(key=PAPER_KEY)
        assert {m["state"] for m in paper} == {"firing"}, hook.summary()
        assert len({m["notification_id"] for m in paper}) == 1, f"on-call was told twice: {hook.summary()}"
        for c in CENTERS:  # re-announced on the same connection: the birth's bdseq did not move
            seqs = {parse_payload(Status, p).bdseq for p in births.on(f"{c}/pi-1/status")}
            assert len(seqs) == 1, f"{c} reconnected instead of re-announcing: bdseqs {seqs}"
        total = sum(c.agent.store.last_seq() for c in centers)
    finally:
        stop.set()
        for c in centers:
            c.stop()
        births.close()
        gw.stop()
    print(f"\nRESULT gateway kill -9 x{kills}: {total} events, all stored once; agents re-announced after each "
          "restart; the paper alert stayed, told once; no node_offline")
