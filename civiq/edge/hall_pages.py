"""The hall TV page (``/board``) and the touch kiosk page (``/kiosk``): static HTML + a small script that
follows ``/api/hall/stream`` (Server-Sent Events). Sizes are in viewport units: readable from 5 m on a
1920x1080 TV, and still laid out on 1280x720. Vietnamese first, English small.
"""

from __future__ import annotations

import html

# The stream client shared by both pages: it reconnects by itself with a backoff (0.5 s doubling to 8 s),
# shows the "connection lost" badge meanwhile, and never reloads the page (window.civiqLoadedAt survives).
_STREAM_JS = r"""
window.civiqLoadedAt = window.civiqLoadedAt || (Date.now() + '-' + Math.random());
function civiqStream(onState, onAnnounce) {
  var es = null, backoff = 500, timer = null, watchdog = null;
  var badge = document.getElementById('offline');
  function lost() {
    if (es) { es.close(); es = null; }
    badge.hidden = false;
    clearTimeout(watchdog);
    clearTimeout(timer);
    timer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 8000);
  }
  function alive() {
    clearTimeout(watchdog);
    watchdog = setTimeout(lost, 25000);
  }
  function connect() {
    es = new EventSource(window.civiqStreamUrl || '/api/hall/stream');
    es.onmessage = function (e) {
      badge.hidden = true; backoff = 500; alive();
      onState(JSON.parse(e.data));
    };
    es.addEventListener('announce', function (e) { alive(); if (onAnnounce) onAnnounce(JSON.parse(e.data)); });
    es.addEventListener('ping', alive);
    es.onerror = lost;
  }
  connect();
}
// Largest size (scale `max` down to `min`) at which the box shows all it holds: nothing cut, nothing hidden.
function shrink(host, name, max, min, over) {
  var k = max;
  host.style.setProperty(name, k);
  while (k > min && over()) { k = Math.max(min, k * 0.95); host.style.setProperty(name, k.toFixed(3)); }
  return k;
}
function overflows(b) { return b.scrollHeight > b.clientHeight + 1 || b.scrollWidth > b.clientWidth + 1; }
function esc(s) {
  return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
    return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
  });
}
"""

_BADGE_CSS = """
#offline { position: fixed; right: 1.2vw; bottom: 1.2vw; background: #b71c1c; color: #fff; padding: .5vw 1vw;
  border-radius: .6vw; font-size: 1.3vw; font-weight: 700; z-index: 10; }
"""

_BOARD = r"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bảng gọi số · __CENTER__</title>
<style>
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; background: #0b2545; color: #fff; overflow: hidden;
  font-family: "Noto Sans", "DejaVu Sans", Roboto, Arial, sans-serif; }
body { display: grid; grid-template-rows: auto 1fr auto; height: 100vh; }
header { display: flex; justify-content: space-between; align-items: center; padding: 1vh 2vw;
  background: #13315c; border-bottom: .4vh solid #f9c74f; }
header h1 { margin: 0; font-size: 2.6vw; line-height: 1.15; }
header .en { font-size: 1.4vw; color: #b8c4d6; }
#clock { font-size: 4vw; font-weight: 700; font-variant-numeric: tabular-nums; }
main { display: grid; grid-template-columns: 58fr 42fr; gap: 1.5vw; padding: 1.5vh 2vw; min-height: 0;
  overflow: hidden; }
main section { display: flex; flex-direction: column; min-height: 0; min-width: 0; }
h2 { margin: 0 0 1vh; font-size: 2.1vw; color: #f9c74f; }
h2 small { font-size: 1.2vw; color: #b8c4d6; font-weight: 400; }
/* Sizes scale with --k (counters), --rk (recent calls), --fk (waiting): fitBoard() shrinks them until
   every counter, every recent call and every service fit on the screen (a ward may have 8+ counters). */
#counters { flex: 1; min-height: 0; overflow: hidden; display: grid; gap: 1vw; align-content: start;
  grid-template-columns: repeat(var(--cols, 3), minmax(0, 1fr)); }
.counter { background: #1d4e89; border-radius: 1vw; padding: 1vh 1vw; text-align: center; min-width: 0;
  overflow: hidden; }
.counter .name { font-size: calc(var(--k, 1) * 2vw); font-weight: 700; line-height: 1.15; overflow: hidden;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
.counter .num { font-size: calc(var(--k, 1) * 5.6vw); font-weight: 800; line-height: 1.1; color: #fff;
  font-variant-numeric: tabular-nums; white-space: nowrap; }
.counter.idle .num { color: #7d8fa9; }
.counter .state { font-size: calc(var(--k, 1) * 1.3vw); color: #b8c4d6; min-height: 1.25em; }
.prio { display: inline-block; background: #f9c74f; color: #0b2545; font-weight: 800; border-radius: .5vw;
  padding: 0 .6vw; font-size: .57em; }
.counter .prio { font-size: 1em; }
#recent { list-style: none; margin: 0; padding: 0; flex: 1; min-height: 0; overflow: hidden; }
#recent li { display: grid; grid-template-columns: calc(var(--tw, 4) * .7em + .3em) minmax(0, 1fr) auto;
  align-items: center; gap: .3em; font-size: calc(var(--rk, 1) * 3.4vw); padding: .6vh 1vw; margin-bottom: .8vh;
  background: #13315c; border-radius: .8vw; }
#recent .t { font-size: 1em; font-weight: 800; font-variant-numeric: tabular-nums; white-space: nowrap; }
#recent .c { font-size: .68em; font-weight: 700; line-height: 1.15; min-width: 0; }
#recent .c .arrow { color: #f9c74f; }
#recent .tm { font-size: .41em; color: #b8c4d6; text-align: right; }
#recent .marks { font-size: .52em; color: #f9c74f; }
#recent li.new { box-shadow: inset .5vw 0 0 #f9c74f; }
#recent li.fresh { background: #f9c74f; color: #0b2545; animation: blink 1s ease-in-out 3; }
#recent li.fresh .tm, #recent li.fresh .marks, #recent li.fresh .c .arrow { color: #0b2545; }
#recent li.fresh .prio { background: #0b2545; color: #f9c74f; }
@keyframes blink { 50% { transform: scale(1.03); } }
footer { display: flex; flex-wrap: nowrap; gap: 1vw; padding: 1vh 2vw 1.5vh; background: #13315c;
  font-size: calc(var(--fk, 1) * 1vw); overflow: hidden; }
footer.wrap { flex-wrap: wrap; }
footer .svc { font-size: 1.9em; background: #1d4e89; border-radius: .8vw; padding: .4vh 1vw; white-space: nowrap; }
footer .svc b { color: #f9c74f; font-size: 1.26em; }
footer .svc small { font-size: .58em; color: #b8c4d6; }
#sound { position: fixed; left: 50%; top: 45%; transform: translate(-50%, -50%); font-size: 3vw; padding: 2vw 3vw;
  background: #f9c74f; color: #0b2545; border: 0; border-radius: 1vw; font-weight: 800; z-index: 9; }
__BADGE__
</style></head>
<body>
<header><div><h1 id="center">__CENTER__</h1><div class="en">Bảng gọi số · Calling board</div></div>
<div id="clock">--:--</div></header>
<main>
<section><h2>Quầy → Số đang phục vụ <small>Counter → now serving</small></h2><div id="counters"></div></section>
<section><h2>Vừa gọi <small>Recent calls</small></h2><ol id="recent"></ol></section>
</main>
<footer id="waiting"></footer>
<div id="offline" hidden>Mất kết nối – đang kết nối lại <small>(reconnecting)</small></div>
<button id="sound" hidden>🔊 Chạm để bật âm thanh / Tap to enable sound</button>
<script>
__STREAM__
var seen = null, tz = null, highlightS = 6;
var audioOn = new URLSearchParams(location.search).get('audio') === '1';
function tick() {
  var opts = {hour: '2-digit', minute: '2-digit', hour12: false};
  if (tz) opts.timeZone = tz;
  document.getElementById('clock').textContent = new Date().toLocaleTimeString('vi-VN', opts);
}
setInterval(tick, 1000); tick();
function prio(vi) { return vi ? '<span class="prio">ƯU TIÊN · ' + esc(vi) + '</span>' : ''; }
function fitBoard() {
  // the waiting line first (its height decides the rest): one row, smaller, or else two rows
  var foot = document.getElementById('waiting');
  foot.classList.remove('wrap');
  if (shrink(foot, '--fk', 1, 0.7, function () { return overflows(foot); }) <= 0.7 && overflows(foot)) {
    foot.classList.add('wrap');
    foot.style.setProperty('--fk', 0.85);
  }
  var grid = document.getElementById('counters'), n = grid.children.length;
  grid.style.setProperty('--cols', n <= 3 ? Math.max(n, 1) : n === 4 ? 2 : n <= 9 ? 3 : 4);
  shrink(grid, '--k', 2, 0.25, function () {
    return overflows(grid) || [].some.call(grid.querySelectorAll('.num'), function (e) {
      return e.scrollWidth > e.clientWidth + 1;  // a number wider than its counter's box
    });
  });
  var list = document.getElementById('recent'), tw = 4;
  list.querySelectorAll('.t').forEach(function (t) { tw = Math.max(tw, t.textContent.length); });
  list.style.setProperty('--tw', tw);
  shrink(list, '--rk', 1.3, 0.3, function () { return overflows(list); });
}
window.addEventListener('resize', fitBoard);
function render(st) {
  tz = st.timezone; highlightS = st.highlight_s; tick();
  document.getElementById('center').textContent = st.center;
  document.getElementById('counters').innerHTML = st.counters.map(function (c) {
    var state = c.state === 'closed' ? 'Đóng · closed' : c.state === 'break' ? 'Tạm nghỉ · break' : '';
    return '<div class="counter' + (c.ticket ? '' : ' idle') + '" data-counter="' + esc(c.id) + '">' +
      '<div class="name">' + esc(c.name) + '</div><div class="num">' + esc(c.ticket || '—') + '</div>' +
      '<div class="state">' + (c.ticket ? prio(c.priority_vi) : esc(state)) + '</div></div>';
  }).join('');
  var first = seen === null, now = Date.now();
  if (first) seen = {};
  var list = document.getElementById('recent');
  list.innerHTML = st.recent.map(function (r) {
    if (!(r.id in seen)) seen[r.id] = first ? 0 : now;
    var marks = [];
    if (r.recall) marks.push('Gọi lại · recall');
    if (r.from_hold) marks.push('Gọi lại từ chờ · from hold');
    if (r.out_of_order) marks.push('Gọi ngoài thứ tự · out of order');
    // the newest call is highlighted; others of the same burst keep a mark for the same few seconds
    var cls = now - seen[r.id] < highlightS * 1000 ? (r === st.recent[0] ? 'fresh' : 'new') : '';
    return '<li data-id="' + esc(r.id) + '" data-ticket="' + esc(r.ticket) + '"' + (cls ? ' class="' + cls + '"' : '') + '>' +
      '<span class="t">' + esc(r.ticket) + '</span>' +
      '<span class="c"><span class="arrow">→</span> ' + esc(r.counter_name) + ' ' + prio(r.priority_vi) +
      (marks.length ? '<div class="marks">' + esc(marks.join(' · ')) + '</div>' : '') + '</span>' +
      '<span class="tm">' + esc(r.time.slice(0, 5)) + '</span></li>';
  }).join('');
  document.getElementById('waiting').innerHTML = '<span class="svc">Đang chờ <small>waiting</small></span>' +
    st.services.map(function (s) {
      return '<span class="svc" data-service="' + esc(s.prefix) + '">' + esc(s.prefix) + ' · ' + esc(s.name_vi) +
        ': <b>' + s.waiting + '</b>' + (s.priority_waiting ? ' <small>(' + s.priority_waiting + ' ưu tiên)</small>' : '') +
        ' <small>' + esc(s.name_en) + '</small></span>';
    }).join('');
  fitBoard();
}
// un-highlight when the few seconds are over (the list keeps the call)
setInterval(function () {
  if (!seen) return;
  var now = Date.now();
  document.querySelectorAll('#recent li.fresh, #recent li.new').forEach(function (li) {
    if (now - (seen[li.dataset.id] || 0) >= highlightS * 1000) li.classList.remove('fresh', 'new');
  });
}, 500);
// voice: one announcement after another, never two at once
// window.civiqAudio: what was played, in order, and the most sounds ever playing at once (tests read it)
var queue = [], playing = false, sound = window.civiqAudio = {played: [], active: 0, maxActive: 0, refused: 0};
function playNext() {
  if (playing || !queue.length) return;
  var a = queue[0], audio = new Audio(a.url), started = false, finished = false;
  playing = true;
  audio.onplaying = function () {
    if (started) return;
    started = true; sound.active += 1; sound.maxActive = Math.max(sound.maxActive, sound.active);
    sound.played.push(a.url);
  };
  function done() {
    if (finished) return;
    finished = true;
    if (started) sound.active -= 1;
    playing = false; queue.shift(); playNext();
  }
  audio.onended = done;
  audio.onerror = done;
  var p = audio.play();
  if (p && p.catch) {
    p.catch(function (e) {
      if (e && e.name === 'NotAllowedError') {
        // autoplay refused (kiosk mode needs --autoplay-policy=no-user-gesture-required): wait for a tap
        playing = false; sound.refused += 1;
        document.getElementById('sound').hidden = false;
      } else { done(); }
    });
  }
}
document.getElementById('sound').onclick = function () { this.hidden = true; playNext(); };
civiqStream(render, function (a) { if (audioOn) { queue.push(a); playNext(); } });
</script></body></html>
"""

_KIOSK = r"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, user-scalable=no">
<title>Lấy số thứ tự · __CENTER__</title>
<style>
* { box-sizing: border-box; -webkit-user-select: none; user-select: none; }
html, body { margin: 0; height: 100%; background: #f4f6fa; color: #0b2545; overflow: hidden;
  font-family: "Noto Sans", "DejaVu Sans", Roboto, Arial, sans-serif; touch-action: manipulation; }
body { display: flex; flex-direction: column; height: 100vh; }
header { background: #0b2545; color: #fff; padding: 1.5vh 3vw; }
header h1 { margin: 0; font-size: 2.8vw; }
header .en { font-size: 1.6vw; color: #b8c4d6; }
/* sizes scale with --k: fitKiosk() shrinks them until every service button is wholly on the screen */
main { padding: 2vh 3vw; flex: 1; min-height: 0; overflow: hidden; font-size: calc(var(--k, 1) * 1vw); }
h2 { font-size: 2.4em; margin: 1vh 0; } h2 small { font-size: .58em; color: #51607a; font-weight: 400; }
#classes { display: flex; flex-wrap: wrap; gap: 1.2vw; margin-bottom: 2vh; }
#classes button { font-size: 2em; padding: 1.6vh 2vw; border-radius: 1vw; border: .4vw solid #f9c74f;
  background: #fff; color: #0b2545; font-weight: 700; min-height: calc(var(--k, 1) * 9vh); }
#classes button.on { background: #f9c74f; }
#classes button small { display: block; font-size: .65em; font-weight: 400; color: #51607a; }
#services { display: grid; grid-template-columns: repeat(auto-fill, minmax(28vw, 1fr)); gap: 2vw; }
.svc { font-size: 3em; font-weight: 800; min-height: calc(var(--k, 1) * 20vh); border: 0; border-radius: 1.4vw;
  background: #1d4e89; color: #fff; padding: 2vh 2vw; box-shadow: 0 .5vh 1vh rgba(0,0,0,.2); }
.svc small { display: block; font-weight: 400; color: #d6e0ef; font-size: .53em; }
.svc .w { display: block; font-size: .5em; font-weight: 400; color: #f9c74f; margin-top: 1vh; }
.svc:active { transform: scale(.98); }
button:disabled { opacity: .5; }
#result, #fault { position: fixed; inset: 0; display: flex; flex-direction: column; align-items: center;
  justify-content: center; text-align: center; z-index: 5; }
#result { background: #0b2545; color: #fff; }
#result .num { font-size: 16vw; font-weight: 800; line-height: 1; color: #f9c74f; }
#result .big { font-size: 4vw; font-weight: 700; } #result .mid { font-size: 3vw; }
#result small, #fault small { font-size: 1.8vw; color: #b8c4d6; }
#fault { background: #b71c1c; color: #fff; } #fault .big { font-size: 4.5vw; font-weight: 800; }
[hidden] { display: none !important; }
__BADGE__
</style></head>
<body>
<header><h1 id="center">__CENTER__</h1><div class="en">Chạm để lấy số thứ tự · Touch to take a number</div></header>
<main>
<div id="prio-box" hidden><h2>Ưu tiên <small>Priority (chọn nếu có · choose if it applies)</small></h2><div id="classes"></div></div>
<h2>Chọn dịch vụ <small>Choose a service</small></h2>
<div id="services"></div>
</main>
<div id="result" hidden></div>
<div id="fault" hidden><div class="big">Máy in hết giấy hoặc hỏng</div>
<div class="mid" style="font-size:3vw">Tạm thời không lấy số được. Vui lòng báo nhân viên.</div>
<small>The ticket printer is out of paper or down: no ticket can be issued now. Please ask the staff.</small>
<small id="fault-detail"></small></div>
<div id="offline" hidden>Mất kết nối – đang kết nối lại <small>(reconnecting)</small></div>
<script>
__STREAM__
var busy = false, chosen = null, last = null, RESULT_S = 6;
function eta(s) {
  if (s == null) return 'Chưa ước tính được · unknown';
  return '~' + Math.max(1, Math.round(s / 60)) + ' phút · min';
}
function render(st) {
  last = st;
  document.getElementById('center').textContent = st.center;
  var box = document.getElementById('prio-box');
  box.hidden = !st.classes.length;
  if (chosen && !st.classes.some(function (c) { return c.id === chosen; })) chosen = null;
  document.getElementById('classes').innerHTML = st.classes.map(function (c) {
    return '<button data-class="' + esc(c.id) + '"' + (c.id === chosen ? ' class="on"' : '') + '>' + esc(c.name_vi) +
      '<small>' + esc(c.name_en) + '</small></button>';
  }).join('');
  document.getElementById('services').innerHTML = st.services.map(function (s) {
    return '<button class="svc" data-service="' + esc(s.prefix) + '"' + (busy ? ' disabled' : '') + '>' + esc(s.name_vi) +
      '<small>' + esc(s.name_en) + '</small><span class="w">Đang chờ ' + s.waiting + ' người · ' + s.waiting + ' waiting</span></button>';
  }).join('');
  var f = document.getElementById('fault');
  f.hidden = st.kiosk.printer_ok;
  document.getElementById('fault-detail').textContent = st.kiosk.printer_detail || '';
  fitKiosk();
}
function fitKiosk() {
  var main = document.querySelector('main');
  shrink(main, '--k', 1.25, 0.4, function () { return overflows(main); });
}
window.addEventListener('resize', fitKiosk);
document.getElementById('classes').addEventListener('click', function (e) {
  var b = e.target.closest('button'); if (!b) return;
  chosen = chosen === b.dataset.class ? null : b.dataset.class;
  if (last) render(last);
});
function showResult(html, seconds) {
  var r = document.getElementById('result');
  r.innerHTML = html; r.hidden = false;
  setTimeout(function () { r.hidden = true; busy = false; chosen = null; if (last) render(last); }, seconds * 1000);
}
document.getElementById('services').addEventListener('click', function (e) {
  var b = e.target.closest('button.svc'); if (!b || busy) return;
  busy = true;  // a double tap is one press
  document.querySelectorAll('.svc').forEach(function (x) { x.disabled = true; });
  fetch('/api/kiosk/issue', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({service: b.dataset.service, priority: chosen})})
    .then(function (r) { return r.json(); })
    .then(function (t) {
      if (t.ok) {
        showResult('<div class="big">Vui lòng nhận phiếu</div><small>Please take your ticket</small>' +
          '<div class="num" id="issued">' + esc(t.ticket) + '</div>' +
          (t.priority_vi ? '<div class="mid">ƯU TIÊN · ' + esc(t.priority_vi) + '</div>' : '') +
          '<div class="mid">' + esc(t.service_vi) + '</div>' +
          '<div class="big">Trước bạn: ' + (t.ahead == null ? '?' : t.ahead) + ' người</div>' +
          '<small>People ahead: ' + (t.ahead == null ? '?' : t.ahead) + '</small>' +
          '<div class="mid">Thời gian chờ ước tính: ' + esc(eta(t.eta_s)) + '</div><small>Estimated wait</small>', RESULT_S);
      } else if (t.reason === 'double_tap') {
        busy = false; if (last) render(last);
      } else if (t.reason === 'printer') {
        document.getElementById('fault').hidden = false;
        document.getElementById('fault-detail').textContent = t.error || '';
        busy = false; if (last) render(last);
      } else {
        showResult('<div class="big">Không lấy được số</div><small>No ticket issued: ' + esc(t.error) + '</small>' +
          '<div class="mid">Vui lòng báo nhân viên · please ask the staff</div>', 4);
      }
    }, function () {
      showResult('<div class="big">Mất kết nối</div><small>Connection lost: no ticket issued. Try again.</small>', 3);
    });
});
civiqStream(render, null);
</script></body></html>
"""


def _page(template: str, center: str) -> str:
    return (template.replace("__STREAM__", _STREAM_JS).replace("__BADGE__", _BADGE_CSS)
            .replace("__CENTER__", html.escape(center)))


def board_html(center: str) -> str:
    return _page(_BOARD, center)


def kiosk_html(center: str) -> str:
    return _page(_KIOSK, center)
