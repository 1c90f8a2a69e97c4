"""The rating page of a counter (``/rate/<counter>``, for a small tablet or touch screen at the counter) and
the agent's rating API. See docs/technician.md, "Rating pads" and "The rating page".

    GET  /rate/{counter}              the page: idle, then (after the clerk ends a ticket) the faces, the
                                      reasons for a low score, "Cảm ơn"; live through its own stream
    GET  /api/rate/{counter}/stream   Server-Sent Events: the page's state on every change (+ a ping)
    POST /api/rate/{counter}          {"score": 4} | {"reason": "wait"} (toggle) | {"done": true} (send now)
                                      -> {"ok", "result", "ticket", "window"}; 409 when nothing can be rated
    GET  /api/rating                  scale, levels, reasons, every counter's window, every device's counts

A POST answers only to this Pi, the addresses in ``rating.allow`` (any counter) and those in the page
device's own ``allow`` (its counter only): a rating from any device of the LAN would be abused. The page, as the pads, goes through :class:`civiq.edge.rating.RatingDesk`.
"""

from __future__ import annotations

import asyncio
import html
import json
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from civiq.edge.webbase import LOOPBACK, json_response
from civiq.listeners import subscribe


def page_device(agent: Any, counter: str) -> str | None:
    """The id of the rating page device of ``counter`` (None: that counter has no rating page)."""
    for r in getattr(agent.cfg, "ratingpads", []):
        if r.kind == "page" and r.counter == counter:
            return r.id
    return None


def page_tap(agent: Any) -> Callable[[str, int, list[str]], object]:
    """What a citizen's taps on a page do, without the browser (the simulator's ``rate`` on a page device):
    the face, each reason, then "Gửi"."""

    def tap(pad_id: str, score: int, reasons: list[str]) -> object:
        desk = agent.rating
        out = desk.press(pad_id, score)
        if out.result == "reasons":
            for r in reasons:
                desk.reason(pad_id, r)
            out = desk.finish(pad_id)
        return out

    return tap


class CounterRatingFeed:
    """The state one counter's page shows, with a ``rev`` that moves on every change (for the stream)."""

    def __init__(self, agent: Any, counter: str) -> None:
        self.agent = agent
        self.counter = counter
        self._rev = 0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[dict | None], None]] = []
        self._unsubs = [agent.rating.listen(self._changed), agent.hall.listen(self._hall)]

    def _hall(self, msg: dict | None) -> None:
        """The agent is stopping (its hall feed closed): wake the streams so they end at once."""
        if self.closed:
            with self._lock:
                listeners = list(self._listeners)
            for cb in listeners:
                cb(None)

    @property
    def closed(self) -> bool:
        return bool(getattr(self.agent.hall, "closed", False))

    def _changed(self, counter: str, view: dict) -> None:
        if counter != self.counter:
            return
        with self._lock:
            self._rev += 1
            listeners = list(self._listeners)
        for cb in listeners:
            cb(None)

    def listen(self, cb: Callable[[dict | None], None]) -> Callable[[], None]:
        return subscribe(self._lock, self._listeners, cb)

    def state(self) -> dict:
        desk, cfg = self.agent.rating, self.agent.cfg
        with self._lock:
            rev = self._rev
        names = {c.id: c.name for c in cfg.counters}
        return {"type": "state", "rev": rev, "center": cfg.center.name, "counter": self.counter,
                "counter_name": names.get(self.counter, self.counter), "scale": desk.scale,
                "low_max": desk.low_max, "reasons_wait_s": desk.reasons_wait_s,
                "levels": [{"score": i + 1, "vi": t.vi, "en": t.en} for i, t in enumerate(cfg.rating.level_texts())],
                "reasons": [{"id": k, "vi": t.vi, "en": t.en} for k, t in cfg.rating.reasons.items()],
                "window": desk.window(self.counter)}

    def close(self) -> None:
        for u in self._unsubs:
            u()


def rating_routes(agent: Any) -> list[web.RouteDef]:
    feeds: dict[str, CounterRatingFeed] = {}
    feeds_lock = threading.Lock()

    def feed(counter: str) -> CounterRatingFeed:
        with feeds_lock:
            if counter not in feeds:
                feeds[counter] = CounterRatingFeed(agent, counter)
            return feeds[counter]

    def no_rating() -> web.Response:
        return json_response({"ok": False, "error": "no rating at this center (no rating: section)"}, 404)

    async def api_state(request: web.Request) -> web.Response:
        if agent.rating is None:
            return no_rating()
        return json_response(await asyncio.to_thread(agent.rating.state))

    async def page(request: web.Request) -> web.Response:
        counter = request.match_info["counter"]
        if agent.rating is None or page_device(agent, counter) is None:
            return web.Response(text=f"Quầy {html.escape(counter)} không có trang đánh giá (ratingpads: kind: page) "
                                "/ no rating page for this counter", status=404, content_type="text/plain",
                                charset="utf-8")
        return web.Response(text=rating_html(agent.cfg.center.name, counter), content_type="text/html",
                            charset="utf-8")

    async def sse(request: web.Request) -> web.StreamResponse:
        counter = request.match_info["counter"]
        if agent.rating is None or page_device(agent, counter) is None:
            return no_rating()
        from civiq.edge.hall import stream

        return await stream(feed(counter), request)  # type: ignore[arg-type] - the same feed interface

    async def post(request: web.Request) -> web.Response:
        counter = request.match_info["counter"]
        if agent.rating is None:
            return no_rating()
        pad = page_device(agent, counter)
        if pad is None:
            return json_response({"ok": False, "error": f"counter {counter!r} has no rating page"}, 404)
        if request.remote not in (*LOOPBACK, *everywhere, *page_allow.get(counter, ())):
            return json_response({"ok": False, "error": f"this device may not rate at counter {counter}"}, 403)
        try:
            body = json.loads(await request.text() or "{}")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return json_response({"ok": False, "error": 'expected {"score": 4}, {"reason": "wait"} or '
                                  '{"done": true}'}, 400)
        desk = agent.rating
        if "score" in body:
            score = body["score"]
            if isinstance(score, bool) or not isinstance(score, int):
                return json_response({"ok": False, "error": f"score must be a whole number 1-{desk.scale}"}, 400)
            out = await asyncio.to_thread(desk.press, pad, score)
        elif "reason" in body:
            out = await asyncio.to_thread(desk.reason, pad, str(body["reason"]))
        elif body.get("done"):
            reasons = body.get("reasons")
            if reasons is not None and not (isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
                return json_response({"ok": False, "error": "reasons must be a list of reason ids"}, 400)
            out = await asyncio.to_thread(desk.finish, pad, reasons)
        else:
            return json_response({"ok": False, "error": 'expected {"score": 4}, {"reason": "wait"} or '
                                  '{"done": true}'}, 400)
        status = 200 if out.ok else 409 if out.result != "error" else 503 if out.ticket else 400
        return json_response({"ok": out.ok, "result": out.result, "ticket": out.ticket, "error": out.error or None,
                              "seq": out.event.seq if out.event is not None else None,
                              "window": desk.window(counter)}, status)

    # the middleware lets through the Pi, rating.allow and every page's own tablets; a tablet then rates only
    # at its own counter (checked above)
    everywhere = tuple(getattr(getattr(agent.cfg, "rating", None), "allow", ()) or ())
    page_allow = {r.counter: tuple(r.allow) for r in getattr(agent.cfg, "ratingpads", []) if r.kind == "page"}
    post.allow_from = everywhere + tuple(a for v in page_allow.values() for a in v)  # type: ignore[attr-defined]
    return [web.get("/api/rating", api_state), web.get("/rate/{counter}", page),
            web.get("/api/rate/{counter}/stream", sse), web.post("/api/rate/{counter}", post)]


# ------------------------------------------------------------------------------------------------ the page
_PAGE = r"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, user-scalable=no">
<title>Đánh giá mức độ hài lòng · __CENTER__</title>
<style>
* { box-sizing: border-box; -webkit-user-select: none; user-select: none; }
html, body { margin: 0; height: 100%; background: #f4f6fa; color: #0b2545; overflow: hidden;
  font-family: "Noto Sans", "DejaVu Sans", Roboto, Arial, sans-serif; touch-action: manipulation; }
body { display: flex; flex-direction: column; height: 100vh; }
header { background: #0b2545; color: #fff; padding: 1.2vh 3vw; display: flex; justify-content: space-between;
  align-items: baseline; gap: 2vw; }
header h1 { margin: 0; font-size: 3vw; } header .c { font-size: 3.4vw; font-weight: 800; color: #f9c74f; white-space: nowrap; }
main { flex: 1; min-height: 0; display: flex; flex-direction: column; align-items: center; justify-content: center;
  text-align: center; padding: 2vh 3vw; }
.big { font-size: 4.6vw; font-weight: 800; line-height: 1.2; }
.en { font-size: 2.4vw; color: #51607a; margin-top: .5vh; }
.ticket { font-size: 3.4vw; margin: 1.5vh 0; } .ticket b { font-size: 1.5em; color: #1d4e89; }
#faces { display: grid; grid-template-columns: repeat(var(--n, 5), minmax(0, 1fr)); gap: 1.5vw; width: 100%; margin-top: 2vh; }
.face { border: 0; border-radius: 2vw; background: #fff; box-shadow: 0 .6vh 1.2vh rgba(0,0,0,.15); padding: 2vh 1vw;
  color: #0b2545; font-family: inherit; }
.face svg { width: 11vw; height: 11vw; max-height: 30vh; }
.face .vi { display: block; font-size: 2.3vw; font-weight: 700; line-height: 1.2; margin-top: 1vh; }
.face .en { display: block; font-size: 1.6vw; margin: 0; } .face .words { display: block; }
.face:active { transform: scale(.97); }
#reasons { display: grid; grid-template-columns: repeat(auto-fill, minmax(28vw, 1fr)); gap: 1.5vw; width: 100%; margin: 2vh 0; }
.reason { font-family: inherit; font-size: 2.8vw; font-weight: 700; padding: 2.2vh 1.5vw; border-radius: 1.5vw;
  border: .5vw solid #1d4e89; background: #fff; color: #0b2545; }
.reason small { display: block; font-size: .6em; font-weight: 400; color: #51607a; }
.reason.on { background: #1d4e89; color: #fff; } .reason.on small { color: #d6e0ef; }
#send { font-family: inherit; font-size: 3.4vw; font-weight: 800; padding: 2vh 6vw; border: 0; border-radius: 1.5vw;
  background: #f9c74f; color: #0b2545; }
#send small { display: block; font-size: .55em; font-weight: 400; }
.bar { width: 60%; height: 1.2vh; background: #d6e0ef; border-radius: 1vh; overflow: hidden; margin-top: 2vh; }
.bar div { height: 100%; background: #1d4e89; width: 100%; }
.idle .big { color: #51607a; font-weight: 700; }
.thanks .big { font-size: 7vw; color: #2e7d32; }
.refused .big { color: #b71c1c; }
[hidden] { display: none !important; }
/* a tablet held upright: the faces one under the other, face and words side by side */
@media (orientation: portrait) {
  header h1 { font-size: 4vw; } header .c { font-size: 5.5vw; }
  .big { font-size: 6.5vw; } .en { font-size: 3.6vw; } .ticket { font-size: 5vw; margin: 1vh 0; }
  #faces { grid-template-columns: 1fr; gap: 1.2vh; margin-top: 1vh; }
  .face { display: flex; align-items: center; gap: 5vw; padding: .8vh 5vw; text-align: left; }
  .face svg { width: 9vh; height: 9vh; flex: none; }
  .face .vi { font-size: 5.5vw; margin: 0; } .face .en { font-size: 3.6vw; }
  #reasons { grid-template-columns: 1fr; gap: 1.2vh; } .reason { font-size: 5.5vw; padding: 1.6vh 3vw; }
  #send { font-size: 6.5vw; } .thanks .big { font-size: 11vw; }
}
__BADGE__
</style></head>
<body>
<header><h1 id="center">__CENTER__</h1><div class="c" id="counter"></div></header>
<main id="screen"></main>
<div id="offline" hidden>Mất kết nối – đang kết nối lại <small>(reconnecting)</small></div>
<script>
window.civiqStreamUrl = '/api/rate/__COUNTER_JS__/stream';
__STREAM__
var COUNTER = '__COUNTER_JS__';
var COLORS = {5: ['#d32f2f', '#f57c00', '#fbc02d', '#7cb342', '#2e7d32'], 4: ['#d32f2f', '#f57c00', '#7cb342', '#2e7d32']};
var st = null, mode = 'idle', thanked = null, hold = null, busy = false, chosen = [], deadline = 0, total = 1;
// window.civiqRating: what this page did (tests read it)
var log = window.civiqRating = {mode: 'idle', sent: []};
function face(score, scale) {
  var c = COLORS[scale][score - 1], k = (score - 1) / (scale - 1) * 2 - 1;  // -1 (worst) .. 1 (best)
  var y = 66 - 8 * k, cy = 66 + 14 * k;
  return '<svg viewBox="0 0 100 100" aria-hidden="true"><circle cx="50" cy="50" r="46" fill="' + c + '"/>' +
    '<circle cx="34" cy="40" r="6" fill="#fff"/><circle cx="66" cy="40" r="6" fill="#fff"/>' +
    '<path d="M28 ' + y + ' Q50 ' + cy + ' 72 ' + y + '" stroke="#fff" stroke-width="7" fill="none" stroke-linecap="round"/></svg>';
}
function show(m, html) {
  mode = log.mode = m;
  var s = document.getElementById('screen');
  s.className = m; s.innerHTML = html;
}
function idle() {
  show('idle', '<div class="big">Mời ông/bà đánh giá mức độ hài lòng sau khi được phục vụ</div>' +
    '<div class="en">After you are served, please rate our service here</div>');
}
function openScreen(w) {
  show('open', '<div class="big">Mời ông/bà đánh giá mức độ hài lòng</div>' +
    '<div class="en">Please rate your satisfaction with our service</div>' +
    '<div class="ticket">Số <b id="ticket">' + esc(w.ticket) + '</b></div>' +
    '<div id="faces" style="--n:' + st.scale + '">' + st.levels.map(function (l) {
      return '<button class="face" data-score="' + l.score + '">' + face(l.score, st.scale) +
        '<span class="words"><span class="vi">' + esc(l.vi) + '</span><span class="en">' + esc(l.en) +
        '</span></span></button>';
    }).join('') + '</div><div class="bar"><div id="left"></div></div>');
  countdown(w.seconds_left);
}
function reasonsScreen(w) {
  chosen = (w.reasons || []).slice();
  show('reasons', '<div class="big">Ông/bà chưa hài lòng về điều gì?</div>' +
    '<div class="en">What did not go well? (choose any)</div><div id="reasons">' + st.reasons.map(function (r) {
      return '<button class="reason' + (chosen.indexOf(r.id) >= 0 ? ' on' : '') + '" data-reason="' + esc(r.id) + '">' +
        esc(r.vi) + '<small>' + esc(r.en) + '</small></button>';
    }).join('') + '</div><button id="send">Gửi đánh giá<small>Send</small></button>' +
    '<div class="bar"><div id="left"></div></div>');
  countdown(w.reasons_left_s == null ? st.reasons_wait_s : w.reasons_left_s, st.reasons_wait_s);
}
function thanks(ticket) {
  thanked = ticket;
  show('thanks', '<div class="big">Cảm ơn ông/bà!</div><div class="en">Thank you for your rating</div>');
  later(4, idleOrCurrent);
}
function refused(text, en) {
  show('refused', '<div class="big">' + esc(text) + '</div><div class="en">' + esc(en) + '</div>');
  later(3, idleOrCurrent);
}
function later(s, fn) { clearTimeout(hold); hold = setTimeout(function () { hold = null; fn(); }, s * 1000); }
function idleOrCurrent() { if (st) render(st, true); else idle(); }
function countdown(left, of) {
  deadline = Date.now() + left * 1000; total = (of || left || 1) * 1000;
}
setInterval(function () {
  var bar = document.getElementById('left');
  if (bar) bar.style.width = Math.max(0, Math.min(100, 100 * (deadline - Date.now()) / total)) + '%';
}, 200);
function render(s, force) {
  st = s;
  document.getElementById('center').textContent = s.center;
  document.getElementById('counter').textContent = s.counter_name;
  var w = s.window;
  if (hold && !(w.state === 'open' && w.ticket !== thanked)) return;  // "thank you" / refusal stays a moment
  if (w.state === 'open') {
    if (mode !== 'open' || force || document.getElementById('ticket').textContent !== w.ticket) { clearTimeout(hold); hold = null; openScreen(w); }
    else countdown(w.seconds_left);
  } else if (w.state === 'reasons') {
    if (mode !== 'reasons') reasonsScreen(w);
    else countdown(w.reasons_left_s == null ? 0 : w.reasons_left_s, s.reasons_wait_s);
  } else if (w.state === 'done' || w.state === 'recording') {
    if (thanked !== w.ticket) thanks(w.ticket); else if (mode !== 'idle' && !hold) idle();
  } else if (mode !== 'idle') { idle(); }
}
function post(body) {
  log.sent.push(body);
  return fetch('/api/rate/' + encodeURIComponent(COUNTER), {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(body)}).then(function (r) { return r.json(); });
}
document.getElementById('screen').addEventListener('click', function (e) {
  var f = e.target.closest('button.face'), r = e.target.closest('button.reason'), send = e.target.closest('#send');
  if (f && !busy) {
    busy = true;
    var ticket = document.getElementById('ticket').textContent;
    post({score: +f.dataset.score}).then(function (res) {
      busy = false;
      if (res.result === 'recorded' || res.result === 'repeat') thanks(ticket);
      else if (res.result === 'reasons') reasonsScreen(res.window);
      else refused('Hiện chưa có lượt nào để đánh giá', 'Nothing to rate now: the rating opens when the clerk ends your ticket');
    }, function () { busy = false; refused('Mất kết nối, xin thử lại', 'Connection lost, please try again'); });
  } else if (r) {
    r.classList.toggle('on');
    post({reason: r.dataset.reason}).then(function (res) {
      if (res.window && res.window.reasons_left_s != null) countdown(res.window.reasons_left_s, st.reasons_wait_s);
    });
  } else if (send && !busy) {
    busy = true;
    var ids = [].map.call(document.querySelectorAll('button.reason.on'), function (b) { return b.dataset.reason; });
    post({done: true, reasons: ids}).then(function (res) {
      busy = false;
      thanks(res.ticket);
    }, function () { busy = false; });
  }
});
idle();
civiqStream(function (s) { render(s, false); }, null);
</script></body></html>
"""


def rating_html(center: str, counter: str) -> str:
    from civiq.edge.hall_pages import _BADGE_CSS, _STREAM_JS

    return (_PAGE.replace("__STREAM__", _STREAM_JS).replace("__BADGE__", _BADGE_CSS)
            .replace("__CENTER__", html.escape(center)).replace("__COUNTER_JS__", json.dumps(counter)[1:-1]))
