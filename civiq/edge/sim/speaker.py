"""The emulated speaker: what a citizen in the hall would hear, for tests and the simulator.

It is an output like ALSA (civiq/edge/voice/speaker.py): :meth:`SpeakerEmulator.play` lasts as long as the
WAV does (a 6 s call takes 6 s: the announcement queue behind it waits, as it does on a real speaker), and
records each sound with its sentence text and clip sequence.

    spk = SpeakerEmulator()
    ... agent calls A015 to counter c1 ...
    heard = spk.wait_heard(1)[0]
    heard.text, heard.clips, heard.wav
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from civiq.edge.voice.speaker import Output, SpeakerError


@dataclass
class Heard:
    id: str
    ticket: str
    counter: str
    text: str
    clips: list[str]
    wav: bytes
    duration_s: float
    started: float  # time.monotonic()
    ended: float

    def json(self) -> dict:
        return {"id": self.id, "ticket": self.ticket, "counter": self.counter, "text": self.text,
                "clips": self.clips, "duration_s": round(self.duration_s, 3),
                "wav": f"/api/voice/{self.id}.wav"}


class SpeakerEmulator(Output):
    kind = "emulated"

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[Heard] = []
        self.fault: str | None = None  # set to make playing fail (a dead sound card), None to heal
        self.playing: object | None = None
        self._cond = threading.Condition()

    def play(self, item) -> None:  # noqa: ANN001 - an Announcement
        if self.fault:
            raise SpeakerError(self.fault)
        start = time.monotonic()
        with self._cond:
            self.playing = item
        self._stop.wait(item.duration_s)  # physics: the sound takes its time
        end = time.monotonic()
        with self._cond:
            self.playing = None
            self.heard.append(Heard(id=item.id, ticket=item.ticket, counter=item.counter, text=item.text,
                                    clips=list(item.clips), wav=item.wav, duration_s=item.duration_s,
                                    started=start, ended=end))
            self._cond.notify_all()

    def check(self) -> str | None:
        return self.fault

    def wait_heard(self, n: int, timeout: float = 30.0) -> list[Heard]:
        """The first ``n`` sounds heard completely; AssertionError after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.heard) >= n, timeout):
                raise AssertionError(f"the speaker played {len(self.heard)} announcements, not {n}, "
                                     f"in {timeout} s: {[h.text for h in self.heard]}")
            return list(self.heard[:n])
