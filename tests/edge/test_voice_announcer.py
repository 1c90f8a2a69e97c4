"""The announcement queue: never blocks the caller, one whole announcement after another, merges and
cooldown, health, subscribers, and no network at all."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from civiq.contract import DeviceState
from civiq.edge.sim.speaker import SpeakerEmulator
from civiq.edge.voice.announcer import Announcer
from civiq.edge.voice.clips import ClipPack
from tests.conftest import wait_for
from tests.edge.voicepack import SHORT_TEMPLATE, book, copy_pack, needs_espeak, shared_pack

pytestmark = needs_espeak


@pytest.fixture
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_pack(tmp_path_factory)


def make(pack_dir: Path, **kw) -> tuple[Announcer, SpeakerEmulator]:  # noqa: ANN003
    spk = SpeakerEmulator()
    kw.setdefault("repeat", 1)
    ann = Announcer("speaker", book(SHORT_TEMPLATE), ClipPack(pack_dir), spk,
                    counter_names={"c1": "Quầy 1", "c2": "Quầy 2", "c3": "quầy số 3"}, **kw)
    return ann, spk


def test_merge_cooldown_and_recall(pack_dir: Path) -> None:
    ann, spk = make(pack_dir, speech=False, cooldown_s=30)  # chime only: 1 s per announcement
    got = []
    unsubscribe = ann.subscribe(got.append)
    try:
        ann.announce("A001", "c1")
        wait_for(lambda: spk.playing is not None, what="first chime playing")
        t0 = time.monotonic()
        ann.announce("A002", "c1")
        ann.announce("A002", "c2")  # still waiting: merged, said once for the latest counter
        ann.announce("A002", "c2", recall=True)  # merged too
        assert time.monotonic() - t0 < 0.5  # the caller (the engine's thread) never waits for a sound
        assert ann.wait_idle(10)
        assert [(h.ticket, h.counter) for h in spk.heard] == [("A001", "c1"), ("A002", "c2")]
        assert ann.merged == 2 and [a.ticket for a in got] == ["A001", "A002"]
        unsubscribe()
        ann.announce("A002", "c2")  # the same call again within the cooldown: skipped
        assert ann.skipped == 1 and ann.wait_idle(1)
        ann.announce("A002", "c2", recall=True)  # a recall is always said
        assert ann.wait_idle(10)
        assert [h.ticket for h in spk.heard] == ["A001", "A002", "A002"] and spk.heard[2].clips == ["chime"]
        assert len(got) == 2  # unsubscribed
        assert all(b.started >= a.ended for a, b in zip(spk.heard, spk.heard[1:], strict=False))
    finally:
        ann.stop()


def test_subscribers_get_each_announcement_with_its_wav(pack_dir: Path) -> None:
    ann, spk = make(pack_dir, chime=False)
    got = []
    ann.subscribe(got.append)
    try:
        ann.announce("B012", "c3", priority="elderly")
        wait_for(lambda: spk.playing is not None, what="B012 playing")  # subscribers are told as it starts
        a = got[0]
        assert (a.ticket, a.counter, a.counter_name, a.priority) == ("B012", "c3", "quầy số 3", "elderly")
        assert a.text == "Số B không một hai đến quầy số ba"
        assert a.clips == ["phrase-so", "letter-b", "digit-0", "digit-1", "digit-2", "phrase-den",
                           "phrase-quay-so", "digit-3"]
        assert ann.get(a.id) is a and spk.playing is a and a.wav[:4] == b"RIFF"
        assert a.duration_s == pytest.approx(sum(a.seconds), abs=1e-3)  # no chime, said once
    finally:
        ann.stop()


def test_health_follows_the_output_and_the_pack(pack_dir: Path, tmp_path: Path) -> None:
    changes = []
    ann, spk = make(pack_dir, speech=False, on_health=lambda a: changes.append(a.health()))
    try:
        assert ann.health().state == DeviceState.ok
        spk.fault = "ALSA device 'default' cannot play: no soundcards found"
        ann.announce("A001", "c1")
        wait_for(lambda: ann.health().state == DeviceState.failed, what="speaker failed")
        assert "no soundcards found" in ann.health().detail and changes[-1].state == DeviceState.failed
        assert ann.failures == 1
        spk.fault = None
        ann.announce("A002", "c1")
        wait_for(lambda: ann.health().state == DeviceState.ok, what="speaker recovered")
        assert changes[-1].state == DeviceState.ok
    finally:
        ann.stop()
    ann = Announcer("speaker", book(), ClipPack(tmp_path / "no-pack"), SpeakerEmulator())
    try:
        h = ann.poll()
        assert h.state == DeviceState.failed and "no-pack is missing: run `civiq edge voice-pack build`" in h.detail
    finally:
        ann.stop()
    d = copy_pack(pack_dir, tmp_path / "pack")
    (d / "letter-c.wav").unlink()
    ann = Announcer("speaker", book(), ClipPack(d), SpeakerEmulator())
    try:
        h = ann.poll()
        assert h.state == DeviceState.degraded and "1 clip(s) missing" in h.detail and "letter-c" in h.detail
    finally:
        ann.stop()


def test_no_socket_is_opened_during_an_announcement(pack_dir: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    d = copy_pack(pack_dir, tmp_path / "pack")
    (d / "phrase-den.wav").unlink()  # espeak-ng runs too (a local program)
    opened = []

    class NoNetwork(socket.socket):
        def __init__(self, *a, **kw) -> None:  # noqa: ANN002, ANN003
            opened.append(a)
            raise OSError("network access during an announcement")

    monkeypatch.setattr(socket, "socket", NoNetwork)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: opened.append(a) or NoNetwork())
    ann, spk = make(d)
    got = []
    ann.subscribe(got.append)
    try:
        ann.announce("A015", "c1")
        wait_for(lambda: spk.playing is not None, what="the announcement playing")
        a = got[0]
        assert a.text == "Số A không một năm đến Quầy một" and "phrase-den" in a.clips
        assert a.fallback == ["phrase-den"] and a.seconds[a.clips.index("phrase-den")] > 0.2
    finally:
        ann.stop()
    assert opened == []


SCRIPT = """
import sys
from pathlib import Path
from civiq.edge.voice.clips import ClipPack, build_pack
from civiq.edge.voice.phrase import Phrasebook
book = Phrasebook(counter_names={"c3": "quầy số 3"})
build_pack(sys.argv[1], "vi-vn-x-south", book.phrase_segments())
(Path(sys.argv[1]) / "digit-5.wav").unlink()  # said by espeak-ng
text, segs = book.sentence("A015", "c3")
r = ClipPack(sys.argv[1], "vi-vn-x-south").render(segs)
assert r.fallback == ["digit-5"] and r.duration_s > 3, (r.fallback, r.duration_s)
print(text, r.duration_s)
"""


def test_pack_and_call_work_with_the_network_cut(tmp_path: Path) -> None:
    """The whole path (build the pack with espeak-ng, make and play a call) in a network namespace that has
    no network at all (`unshare -rn`: not even loopback is up)."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (unshare -rn)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    r = subprocess.run([unshare, "-rn", sys.executable, "-c", SCRIPT, str(tmp_path / "pack")],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Mời công dân có số thứ tự A không một năm đến quầy số ba")
