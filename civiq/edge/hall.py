"""The hall feed: what the hall TV (``/board``) and the touch kiosk (``/kiosk``) show, kept from the queue
engine's events and pushed live to browsers (Server-Sent Events, ``/api/hall/stream``).

    feed = HallFeed(cfg, engine, announcer=agent.announcer)   # subscribes to the engine (and the announcer)
    feed.state()            # the full current state (a JSON-able dict with a ``rev`` number)
    feed.listen(cb)         # cb(None) on every change, cb({"type": "announce", ...}) for each announcement

Every change bumps ``rev``; a stream sends the full state (small: counters, the last N calls, waiting per
service) whenever ``rev`` moved, so a burst of calls never loses one (the last N are all in every state) and a
browser that (re)connects gets everything at once. Thread-safe: the engine calls in from any thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from civiq.contract import Event, EventType
from civiq.listeners import subscribe

log = logging.getLogger(__name__)

CALL_EVENTS = {EventType.ticket_called, EventType.ticket_recalled}
SEED_EVENTS = 5000  # events read back from the log at start-up to refill the recent calls after a restart
PING_S = 10.0  # a stream sends a ping this often; the page reconnects when it hears nothing for 25 s

Listener = Callable[[dict | None], None]


class HallFeed:
    def __init__(self, cfg: Any, engine: Any, *, announcer: Any = None, store: Any = None,
                 printer_status: Callable[[], tuple[bool, str]] | None = None) -> None:
        self.cfg = cfg
        self.engine = engine
        hall = getattr(cfg, "hall", None)
        self.recent_n: int = hall.recent_calls if hall else 8
        self.highlight_s: float = hall.highlight_s if hall else 6.0
        self.tz = ZoneInfo(cfg.center.timezone)
        self.counter_names = {c.id: c.name for c in cfg.counters}
        self.services = {s.prefix: s for s in cfg.services}
        self.classes = {c.id: c for c in cfg.priority.classes}
        self.printer_status = printer_status
        self._lock = threading.Lock()
        self._recent: deque[dict] = deque(maxlen=self.recent_n)
        self._rev = 0
        self._cache: dict | None = None
        self._listeners: list[Listener] = []
        self.closed = False
        if store is not None:
            self._seed(store)
        self._unsubs = [engine.subscribe(self.on_event)]
        if announcer is not None:
            self._unsubs.append(announcer.subscribe(self.on_announcement))

    # ------------------------------------------------------------------------------------ inputs
    def _seed(self, store: Any) -> None:
        """Refill the recent calls of today from the event log (an agent restart keeps the board's list)."""
        try:
            day = self.engine.snapshot().day
            for ev in store.events(after_seq=max(0, store.last_seq() - SEED_EVENTS)):
                if ev.type in CALL_EVENTS and ev.data.get("day", day) == day:
                    self._recent.appendleft(self._call(ev))
        except Exception:  # noqa: BLE001 - an empty list is fine: the next calls fill it
            log.exception("hall board: recent calls not read back from the event log")

    def _call(self, ev: Event) -> dict:
        d = ev.data
        counter, service, prio = str(d.get("counter", "")), str(d.get("service", "")), d.get("priority")
        svc, cls = self.services.get(service), self.classes.get(prio) if prio else None
        local = ev.ts.astimezone(self.tz)
        return {"id": f"{ev.seq}", "seq": ev.seq, "ticket": str(d.get("ticket", "")), "counter": counter,
                "counter_name": self.counter_names.get(counter, counter), "service": service,
                "service_vi": svc.name_vi if svc else service, "service_en": svc.name_en if svc else "",
                "time": local.strftime("%H:%M:%S"), "ts": ev.ts.isoformat(),
                "recall": ev.type == EventType.ticket_recalled, "priority": prio,
                "priority_vi": cls.name_vi if cls else None, "priority_en": cls.name_en if cls else None,
                "out_of_order": bool(d.get("out_of_order")), "from_hold": bool(d.get("from_hold"))}

    def on_event(self, ev: Event) -> None:
        """Engine subscriber: every event may change what the hall sees (a call, waiting counts, a counter
        closing, a printer fault for the kiosk)."""
        with self._lock:
            if ev.type in CALL_EVENTS:
                self._recent.appendleft(self._call(ev))
            self._rev += 1
            self._cache = None
        self._notify(None)

    def on_announcement(self, ann: Any) -> None:
        """Announcer subscriber: the board with ``?audio=1`` plays the WAV."""
        self._notify({"type": "announce", "id": ann.id, "url": f"/api/voice/{ann.id}.wav", "ticket": ann.ticket,
                      "counter": ann.counter, "counter_name": ann.counter_name, "text": ann.text})

    def changed(self) -> None:
        """Something outside the engine changed (e.g. a printer went down): streams send the state again."""
        with self._lock:
            self._rev += 1
            self._cache = None
        self._notify(None)

    # ------------------------------------------------------------------------------------ outputs
    def listen(self, cb: Listener) -> Callable[[], None]:
        return subscribe(self._lock, self._listeners, cb)

    def _notify(self, msg: dict | None) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb(msg)
            except Exception:  # noqa: BLE001 - a dead browser connection must not break the queue
                log.debug("hall listener failed", exc_info=True)

    def recent(self) -> list[dict]:
        with self._lock:
            return list(self._recent)

    def state(self) -> dict:
        """The full state, newest call first (cached until the next change)."""
        with self._lock:
            if self._cache is not None:
                return self._cache
            rev, recent = self._rev, list(self._recent)
        snap = self.engine.snapshot()
        counters = []
        for c in self.cfg.counters:
            cs = snap.counters.get(c.id)
            ticket = cs.ticket if cs else None
            prio = cs.priority if cs else None
            cls = self.classes.get(prio) if prio else None
            counters.append({"id": c.id, "name": c.name, "state": str(cs.state) if cs else "closed",
                             "ticket": ticket, "priority": prio, "priority_vi": cls.name_vi if cls else None})
        services = []
        for p, s in self.services.items():
            q = snap.services.get(p)
            services.append({"prefix": p, "name_vi": s.name_vi, "name_en": s.name_en,
                             "waiting": q.waiting if q else 0, "priority_waiting": q.priority_waiting if q else 0,
                             "eta_s": q.eta_s if q else None})
        printer_ok, printer_detail = self.printer_status() if self.printer_status else (True, "")
        hall = getattr(self.cfg, "hall", None)
        st = {"type": "state", "rev": rev, "center": self.cfg.center.name, "timezone": self.cfg.center.timezone,
              "recent_n": self.recent_n, "highlight_s": self.highlight_s, "counters": counters,
              "recent": recent, "services": services,
              "classes": [{"id": c.id, "name_vi": c.name_vi, "name_en": c.name_en}
                          for c in self.cfg.priority.classes if c.enabled],
              "kiosk": {"enabled": bool(hall.kiosk) if hall else True, "printer_ok": printer_ok,
                        "printer_detail": printer_detail}}
        with self._lock:
            if self._rev == rev:
                self._cache = st
        return st

    def close(self) -> None:
        """Stop listening and end every open stream (the browsers reconnect to the next agent)."""
        self.closed = True
        for u in self._unsubs:
            u()
        self._notify(None)


# ---------------------------------------------------------------------------------------------- HTTP
def _sse(msg: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(msg, ensure_ascii=False, default=str)}\n\n".encode()


async def stream(feed: HallFeed, request: web.Request) -> web.StreamResponse:
    """``GET /api/hall/stream``: the full state at once, then again on each change; announcements as they
    are made; a ping every 10 s. Ends when the feed closes (agent stopping): the page reconnects."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    pending: list[dict] = []

    def on_loop(msg: dict | None) -> None:
        if msg is not None:
            pending.append(msg)
        wake.set()

    def notify(msg: dict | None) -> None:  # any thread
        try:
            loop.call_soon_threadsafe(on_loop, msg)
        except RuntimeError:  # the server's loop is closed
            pass

    unsubscribe = feed.listen(notify)
    last_rev = -1
    try:
        await resp.write(b"retry: 1000\n\n")
        while not feed.closed:
            st = await asyncio.to_thread(feed.state)
            if st["rev"] != last_rev:
                await resp.write(_sse(st))
                last_rev = st["rev"]
            while pending:
                await resp.write(_sse(pending.pop(0), "announce"))
            try:
                await asyncio.wait_for(wake.wait(), PING_S)
            except TimeoutError:
                await resp.write(_sse({"rev": last_rev}, "ping"))
            wake.clear()
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        unsubscribe()
    return resp


def hall_routes(agent: Any) -> list[web.RouteDef]:
    """``/board``, ``/kiosk``, ``/api/hall`` (state), ``/api/hall/stream`` (SSE), ``POST /api/kiosk/issue``."""
    from civiq.edge.hall_pages import board_html, kiosk_html
    from civiq.edge.kiosk import kiosk_issue_handler

    feed: HallFeed = agent.hall

    async def board(request: web.Request) -> web.Response:
        return web.Response(text=board_html(agent.cfg.center.name), content_type="text/html", charset="utf-8")

    async def kiosk(request: web.Request) -> web.Response:
        hall = getattr(agent.cfg, "hall", None)
        if hall is not None and not hall.kiosk:
            return web.Response(text="Kiosk tắt (hall.kiosk: false) / kiosk disabled", status=404)
        return web.Response(text=kiosk_html(agent.cfg.center.name), content_type="text/html", charset="utf-8")

    async def state(request: web.Request) -> web.Response:
        st = await asyncio.to_thread(feed.state)
        return web.Response(text=json.dumps(st, ensure_ascii=False, default=str), content_type="application/json")

    async def sse(request: web.Request) -> web.StreamResponse:
        return await stream(feed, request)

    return [web.get("/board", board), web.get("/kiosk", kiosk), web.get("/api/hall", state),
            web.get("/api/hall/stream", sse), web.post("/api/kiosk/issue", kiosk_issue_handler(agent, feed.printer_status))]
