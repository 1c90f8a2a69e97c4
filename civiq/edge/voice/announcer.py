"""The announcement queue: calls from every counter are said one after another, each one whole.

:meth:`Announcer.announce` only enqueues (the queue engine's thread never waits for a sound); one worker
thread renders each announcement (chime, the sentence ``repeat`` times) and plays it to the output, which
blocks for the sound's length. So when three counters call at once, three complete announcements follow in
the order of the calls: none is cut, none is lost.

Repeats and cooldown (the choice made here):

* a call for a ticket that is still waiting in the queue (not yet said) is **merged** into it: the
  announcement is said once, with the latest counter (a recall of a not-yet-said call adds nothing);
* a **call** (``ticket.called``) of the same ticket to the same counter within ``cooldown_s`` of the end of
  its last announcement is **skipped** (a duplicate, e.g. a keypad bounce or a replayed event);
* a **recall** is always said (the clerk asked for it: the citizen did not come), except when merged.

The announcer is also the speaker *device*: its health is ``ok``, ``degraded`` (clips missing from the pack:
espeak-ng says them) or ``failed`` (aplay fails, the pack directory is missing, aplay not installed).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from civiq.contract import DeviceState
from civiq.edge.devices.base import Device
from civiq.edge.voice import audio
from civiq.edge.voice.clips import ClipPack, Rendered
from civiq.edge.voice.phrase import Phrasebook
from civiq.edge.voice.speaker import Output, SpeakerError
from civiq.listeners import subscribe

log = logging.getLogger(__name__)

KEEP = 50  # announcements kept for /api/voice/<id>.wav
_ids = itertools.count(1)


@dataclass
class Announcement:
    """One announcement as made: what was said and the sound itself (chime + speech, repeats included)."""

    id: str
    ticket: str
    counter: str
    counter_name: str
    text: str
    clips: list[str]
    wav: bytes
    duration_s: float
    seconds: list[float] = field(default_factory=list)  # each clip's length, in ``clips`` order
    fallback: list[str] = field(default_factory=list)  # clips espeak-ng said (missing from the pack)
    recall: bool = False
    priority: str | None = None
    error: str | None = None  # why playing failed

    def json(self) -> dict:
        return {"id": self.id, "ticket": self.ticket, "counter": self.counter, "counter_name": self.counter_name,
                "text": self.text, "clips": self.clips, "duration_s": round(self.duration_s, 3),
                "fallback": self.fallback, "recall": self.recall, "priority": self.priority,
                "error": self.error, "wav": f"/api/voice/{self.id}.wav"}


@dataclass
class _Request:
    ticket: str
    counter: str
    recall: bool
    priority: str | None
    service: str | None
    text: str | None = None  # free text (say-test), said by espeak-ng
    done: threading.Event = field(default_factory=threading.Event)
    result: Announcement | None = None
    error: str | None = None


class Announcer(Device):
    kind = "speaker"

    def __init__(self, device_id: str, book: Phrasebook, pack: ClipPack, output: Output, *, speech: bool = True,
                 chime: bool = True, repeat: int = 1, cooldown_s: float = 10.0,
                 counter_names: dict[str, str] | None = None,
                 on_health: Callable[[Announcer], None] | None = None) -> None:
        super().__init__(device_id)
        self.model = f"{output.kind} output"
        self.book, self.pack, self.output = book, pack, output
        self.speech, self.chime, self.repeat, self.cooldown_s = speech, chime, repeat, cooldown_s
        self.counter_names = dict(counter_names or {})
        self.on_health = on_health
        self.announced = self.merged = self.skipped = self.failures = 0
        self.recent: OrderedDict[str, Announcement] = OrderedDict()
        self._pending: list[_Request] = []
        self._last_end: dict[tuple[str, str], float] = {}
        self._subs: list[Callable[[Announcement], None]] = []
        self._cond = threading.Condition()
        self._busy = False
        self._stopped = False
        self._play_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"announcer-{device_id}", daemon=True)
        self._thread.start()
        self.poll()

    # ------------------------------------------------------------------------------------ input
    def announce(self, ticket: str, counter: str, *, recall: bool = False, priority: str | None = None,
                 service: str | None = None) -> None:
        """Queue the call of ``ticket`` to ``counter``; returns at once."""
        if not (self.speech or self.chime):
            return
        with self._cond:
            if self._stopped:
                return
            for r in self._pending:
                if r.ticket == ticket and r.text is None:
                    r.counter, r.priority = counter, priority or r.priority
                    self.merged += 1
                    return
            last = self._last_end.get((ticket, counter))
            if not recall and last is not None and time.monotonic() - last < self.cooldown_s:
                self.skipped += 1
                log.info("call of %s to %s announced %.1f s ago: not repeated (cooldown %.0f s)", ticket,
                         counter, time.monotonic() - last, self.cooldown_s)
                return
            self._pending.append(_Request(ticket, counter, recall, priority, service))
            self._cond.notify_all()

    def say(self, ticket: str = "A015", counter: str | None = None, *, text: str | None = None,
            timeout: float = 60.0) -> Announcement:
        """Say a sample call (or free ``text``) now, after what is queued; returns when it was played."""
        counter = counter or next(iter(self.counter_names), "1")
        req = _Request(ticket, counter, False, None, None, text=text)
        with self._cond:
            self._pending.append(req)
            self._cond.notify_all()
        if not req.done.wait(timeout):
            raise SpeakerError(f"the announcement was not played within {timeout:.0f} s")
        if req.result is None:
            raise SpeakerError(req.error or "the speaker was stopped")
        return req.result

    def subscribe(self, cb: Callable[[Announcement], None]) -> Callable[[], None]:
        """``cb(announcement)`` for each announcement, when it starts playing; returns the unsubscribe."""
        return subscribe(self._cond, self._subs, cb)

    def get(self, ann_id: str) -> Announcement | None:
        with self._cond:
            return self.recent.get(ann_id)

    def recent_list(self) -> list[Announcement]:
        """The last announcements made (at most 50), oldest first."""
        with self._cond:
            return list(self.recent.values())

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    # ------------------------------------------------------------------------------------ worker
    def _render(self, req: _Request) -> Announcement:
        name = self.counter_names.get(req.counter, req.counter)
        if req.text is not None:
            r = self.pack.say_text(req.text, chime=self.chime)
            text = req.text
        else:
            text, segs = self.book.sentence(req.ticket, req.counter, recall=req.recall,
                                            priority=req.priority, service=req.service)
            if not self.speech:
                text, segs = "", []
            r: Rendered = self.pack.render(segs, chime=self.chime, repeat=self.repeat)
        return Announcement(id=f"{int(time.time() * 1000):x}-{next(_ids)}", ticket=req.ticket,
                            counter=req.counter, counter_name=name, text=text, clips=r.clips, wav=r.wav,
                            duration_s=r.duration_s, seconds=r.seconds, fallback=r.fallback, recall=req.recall,
                            priority=req.priority)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    for r in self._pending:
                        r.done.set()
                    return
                req = self._pending.pop(0)
                self._busy = True
            try:
                self._one(req)
            except Exception:  # noqa: BLE001 - the worker must survive anything
                log.exception("announcement of %s failed", req.ticket)
            finally:
                req.done.set()
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _one(self, req: _Request) -> None:
        try:
            ann = self._render(req)
        except audio.AudioError as e:
            req.error = f"cannot make the announcement: {e}"
            self._set_play_error(req.error)
            return
        req.result = ann
        with self._cond:
            self.recent[ann.id] = ann
            while len(self.recent) > KEEP:
                self.recent.popitem(last=False)
            subs = list(self._subs)
        for cb in subs:
            try:
                cb(ann)
            except Exception:  # noqa: BLE001 - a subscriber must not stop the speaker
                log.exception("announcement subscriber failed")
        try:
            self.output.play(ann)
        except SpeakerError as e:
            ann.error = str(e)
            self.failures += 1
            log.error("speaker %s: %s (announcement of %s lost)", self.id, e, ann.ticket)
            self._set_play_error(str(e))
            return
        with self._cond:
            self.announced += 1
            self._last_end[(req.ticket, req.counter)] = time.monotonic()
            if len(self._last_end) > 500:
                cutoff = time.monotonic() - self.cooldown_s
                self._last_end = {k: v for k, v in self._last_end.items() if v >= cutoff}
        self._set_play_error(None)

    # ------------------------------------------------------------------------------------ health
    def _set_play_error(self, error: str | None) -> None:
        before = self.health()
        self._play_error = error
        after = self.poll()
        if (before.state, before.detail) != (after.state, after.detail) and self.on_health is not None:
            try:
                self.on_health(self)
            except Exception:  # noqa: BLE001
                log.exception("speaker health callback")

    def wanted(self) -> list:
        from civiq.edge.voice.clips import catalog

        return catalog(self.book.phrase_segments()) if self.speech else []

    def poll(self):  # noqa: ANN201 - DeviceHealth
        state, detail = DeviceState.ok, f"{self.output.kind} output"
        if self._play_error:
            state, detail = DeviceState.failed, self._play_error
        elif (problem := self.output.check()) is not None:
            state, detail = DeviceState.failed, problem
        elif self.speech and not self.pack.exists():
            state, detail = DeviceState.failed, (f"clip pack {self.pack.dir} is missing: run `civiq edge "
                                                 "voice-pack build`" + ("; espeak-ng speaks meanwhile"
                                                                        if audio.espeak_available() else ""))
        elif self.speech and (missing := self.pack.missing(self.wanted())):
            state, detail = DeviceState.degraded, (f"{len(missing)} clip(s) missing from {self.pack.dir} "
                                                   f"(espeak-ng says them): {', '.join(missing[:5])}")
        elif self.speech and self.pack.problems:
            name, why = next(iter(self.pack.problems.items()))
            state, detail = DeviceState.degraded, f"clip {name} unusable (espeak-ng says it): {why}"
        self.set_health(state, detail)
        return self.health()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self.output.close()
        self._thread.join(5)

    close = stop


def counter_spoken_names(cfg) -> dict[str, str]:  # noqa: ANN001 - CenterConfig
    sp = cfg.speaker
    return {c.id: (sp.counter_names.get(c.id) if sp else None) or c.name for c in cfg.counters}


def phrasebook_from_config(cfg) -> Phrasebook:  # noqa: ANN001 - CenterConfig
    sp = cfg.speaker
    classes = getattr(getattr(cfg, "priority", None), "classes", None) or []
    return Phrasebook(sp.template, counter_names=counter_spoken_names(cfg),
                      service_names={s.prefix: s.name_vi for s in cfg.services}, numbers=sp.numbers,
                      linh=sp.linh, thousand=sp.thousand, recall_template=sp.recall_template,
                      priority_prefix=sp.priority_prefix, priority_names={c.id: c.name_vi for c in classes})


def announcer_from_config(cfg, state_dir=None, output: Output | None = None,  # noqa: ANN001
                          on_health: Callable[[Announcer], None] | None = None) -> Announcer:
    """The announcer of a center config (``cfg.speaker`` must be set); ``output`` overrides the configured
    one (the emulated speaker in simulation)."""
    from pathlib import Path

    from civiq.edge.voice.speaker import make_output

    sp = cfg.speaker
    pack = ClipPack(sp.pack_path(Path(state_dir or cfg.state_dir)), voice=sp.voice)
    return Announcer(sp.id, phrasebook_from_config(cfg), pack, output or make_output(sp.output, sp.device),
                     speech=sp.speech, chime=sp.chime, repeat=sp.repeat, cooldown_s=sp.cooldown_s,
                     counter_names=counter_spoken_names(cfg), on_health=on_health)
