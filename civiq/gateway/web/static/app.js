// civiq gateway pages: render the boot data, keep it live over the WebSocket.
// Every piece of data goes into the DOM through textContent (the h() helper); never innerHTML.
"use strict";
(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const T = boot.i18n || {};
  const LANG = boot.lang === "en" ? "en-GB" : "vi-VN";
  const TZ = "Asia/Ho_Chi_Minh";
  const can = (boot.user && boot.user.can) || {};
  const $ = (id) => document.getElementById(id);
  // The data's clock: the server's time when the page was made, running at its rate (a demo runs faster).
  const T0 = Date.now();
  const SERVER_T0 = boot.server_now ? Date.parse(boot.server_now) : T0;
  const RATE = boot.clock_rate || 1;
  const now = () => SERVER_T0 + (Date.now() - T0) * RATE;

  // ------------------------------------------------------------------------------------ DOM helpers
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = String(v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const SVGNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, text) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = String(text);
    return el;
  }
  // the same rule as civiq/gateway/web/i18n.py duration_text: units in the page's language ("45 giây", "45 s")
  function fmtDur(sec) {
    if (sec === null || sec === undefined || !isFinite(sec)) return T.unknown;
    sec = Math.max(0, sec);
    if (sec < 59.5) return `${Math.round(sec)} ${T.unit_s}`;
    const m = Math.round(sec / 60);
    if (m < 60) return `${m} ${T.minutes_short}`;
    return `${Math.floor(m / 60)} ${T.hours_short} ${String(m % 60).padStart(2, "0")} ${T.minutes_short}`;
  }
  // a device's health detail in the page's language (i18n.py detail_text); unknown wording stays as it came
  const PHRASES = (boot.detail_phrases || []).map(([en, vi]) =>  // whole words: never inside an id ("display-1")
    [new RegExp(`(?<![\\w-])${en.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\w-])`, "g"), vi]);
  function detailText(s) {
    for (const [re, vi] of PHRASES) s = s.replace(re, () => vi);
    return s;
  }
  function fmtTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    if (isNaN(d)) return "–";
    return d.toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit", timeZone: TZ });
  }
  function fmtDateTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    if (isNaN(d)) return "–";
    return d.toLocaleString(LANG, { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", timeZone: TZ });
  }
  const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString(LANG));
  function badge(state, text) {
    return h("span", { class: `badge st-${state}`, "data-state": state }, text || T[state] || state);
  }
  function toast(msg, kind) {
    const el = $("toast");
    if (!el) return;
    el.textContent = msg;
    el.className = `toast ${kind || ""}`;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 3500);
  }
  async function api(method, path, body) {
    const r = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf || "" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
    return data;
  }
  function setConn(state) {
    const el = $("conn");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = state === "live" ? T.live : T.reconnecting;
  }
  function live(params, onmsg) {
    let delay = 500;
    function open() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${proto}//${location.host}/api/v1/live?${new URLSearchParams(params)}`);
      ws.onopen = () => { delay = 500; setConn("live"); };
      ws.onmessage = (ev) => {
        try { onmsg(JSON.parse(ev.data)); } catch (e) { console.error(e); }
      };
      ws.onclose = (ev) => {
        setConn("reconnecting");
        if (ev.code === 4401) { location.reload(); return; }
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      };
    }
    open();
  }
  function tickClock() {
    const el = $("clock");
    if (!el) return;
    const upd = () => { el.textContent = new Date(now()).toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit", timeZone: TZ }); };
    upd();
    setInterval(upd, 10000);
  }
  // Keep the query string (e.g. ?center=) when switching language.
  const toggle = $("lang-toggle");
  if (toggle) {
    const q = new URLSearchParams(location.search);
    q.set("lang", toggle.dataset.lang);
    toggle.href = `?${q}`;
  }

  // ------------------------------------------------------------------------------------ charts (SVG)
  function niceMax(v) {
    if (v <= 5) return 5;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function lineChart(points, x0, x1) {
    const W = 640, H = 230, L = 44, R = 14, TOP = 12, B = 30;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "svg-chart", role: "img" });
    if (!points.length) {
      svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, T.no_data));
      return svg;
    }
    const xs = points.map((p) => p[0]);
    const lo = Math.min(x0 ?? xs[0], ...xs), hi = Math.max(x1 ?? xs[xs.length - 1], ...xs, lo + 60000);
    const ymax = niceMax(Math.max(...points.map((p) => p[1]), 1));
    const X = (x) => L + ((x - lo) / (hi - lo)) * (W - L - R);
    const Y = (y) => TOP + (1 - y / ymax) * (H - TOP - B);
    for (const f of [0, 0.5, 1]) {
      const y = Y(ymax * f);
      svg.append(s("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid" }));
      svg.append(s("text", { x: L - 6, y: y + 4, "text-anchor": "end", class: "axis" }, num(ymax * f)));
    }
    for (let i = 0; i <= 4; i++) {
      const x = lo + ((hi - lo) * i) / 4;
      const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
      svg.append(s("text", { x: X(x), y: H - 8, "text-anchor": anchor, class: "axis" }, fmtTime(new Date(x).toISOString())));
    }
    const d = points.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    const last = points[points.length - 1];
    svg.append(s("path", { d: `${d} L${X(last[0]).toFixed(1)},${Y(0)} L${X(points[0][0]).toFixed(1)},${Y(0)} Z`, class: "area" }));
    svg.append(s("path", { d, class: "line" }));
    svg.append(s("circle", { cx: X(last[0]), cy: Y(last[1]), r: 4, class: "dot" }));
    return svg;
  }
  function barChart(items) {
    const W = 640, H = 230, L = 44, R = 14, TOP = 18, B = 30;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "svg-chart", role: "img" });
    if (!items.length) {
      svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, T.no_data));
      return svg;
    }
    const ymax = niceMax(Math.max(...items.map((i) => i.value), 1));
    const slot = (W - L - R) / items.length;
    const Y = (y) => TOP + (1 - y / ymax) * (H - TOP - B);
    for (const f of [0, 0.5, 1]) {
      svg.append(s("line", { x1: L, x2: W - R, y1: Y(ymax * f), y2: Y(ymax * f), class: "grid" }));
      svg.append(s("text", { x: L - 6, y: Y(ymax * f) + 4, "text-anchor": "end", class: "axis" }, num(ymax * f)));
    }
    items.forEach((it, i) => {
      const x = L + i * slot + slot * 0.18, w = slot * 0.64;
      svg.append(s("rect", { x, y: Y(it.value), width: w, height: Y(0) - Y(it.value), rx: 3, class: "bar" }));
      svg.append(s("text", { x: x + w / 2, y: Y(it.value) - 4, "text-anchor": "middle", class: "val" }, num(it.value)));
      svg.append(s("text", { x: x + w / 2, y: H - 8, "text-anchor": "middle", class: "axis" }, it.label));
    });
    return svg;
  }

  // ------------------------------------------------------------------------------------ overview
  function centerState(r) {
    if (r.stale || (r.nodes_unknown && !r.nodes_online)) return "unknown";
    if (r.nodes_offline) return "offline";
    if (r.devices_failing) return "failed";
    if (r.devices_degraded) return "degraded";
    return "ok";
  }
  function stat(label, value, field, cls) {
    return h("div", { class: `stat ${cls || ""}` }, h("span", { class: "label" }, label),
      h("span", { class: "value", "data-field": field }, value));
  }
  function renderOverview(rows) {
    const stale = $("stale");
    if (stale) stale.hidden = !rows.some((r) => r.stale);
    const problems = rows.filter((r) => centerState(r) !== "ok").length;
    $("totals").replaceChildren(
      stat(T.centers, num(rows.length), "centers"),
      stat(T.total_waiting, num(rows.reduce((a, r) => a + r.waiting, 0)), "total_waiting", "accent"),
      stat(T.centers_with_problems, num(problems), "problems", problems ? "warn" : ""),
      stat(T.served_today, num(rows.reduce((a, r) => a + r.served_today, 0)), "served_total"));
    if (!rows.length) {
      $("cards").replaceChildren(h("p", { class: "muted" }, T.no_centers));
      return;
    }
    $("cards").replaceChildren(...rows.map((r) => {
      const st = centerState(r);
      const bad = r.devices_failing + r.nodes_offline;
      return h("a", { class: `card st-${st}`, href: `/centers/${encodeURIComponent(r.center)}`, "data-center": r.center },
        h("div", { class: "card-head" },
          h("span", { class: "card-name" }, r.name || r.center),
          badge(st)),
        h("div", { class: "card-big" },
          h("span", { class: "big", "data-field": "waiting" }, num(r.waiting)),
          h("span", { class: "label" }, T.waiting)),
        h("dl", { class: "facts" },
          h("div", {}, h("dt", {}, T.longest_wait), h("dd", { "data-field": "longest_wait" }, r.waiting ? fmtDur(r.longest_wait_s) : "–")),
          h("div", {}, h("dt", {}, T.counters_open), h("dd", { "data-field": "counters_open" }, `${r.counters_open}/${r.counters_total}`)),
          h("div", { class: bad ? "warn" : "" }, h("dt", {}, T.offline_devices), h("dd", { "data-field": "offline_devices" }, num(bad))),
          h("div", {}, h("dt", {}, T.served_today), h("dd", { "data-field": "served_today" }, num(r.served_today)))));
    }));
  }
  function overviewPage() {
    tickClock();
    renderOverview(boot.data.centers);
    live({ watch: "overview" }, (m) => { if (m.type === "overview") renderOverview(m.centers); });
  }

  // ------------------------------------------------------------------------------------ center
  const ACTIONS = { open: ["next", "recall", "complete", "no_show", "hold", "break", "close"], closed: ["open"], break: ["open", "close"] };
  let history = [];
  const callDraft = {};  // counter id -> the number being typed in its "call number" box (survives live re-renders)
  // priority class name, in the page's language (the edge's birth names its classes; else the id)
  function prioName(c, id) {
    const p = (c.priority_classes || {})[id];
    return p ? (boot.lang === "en" ? p.name_en || p.name_vi : p.name_vi) : id;
  }
  function prioMark(c, id) {
    return id ? h("span", { class: "prio", "data-priority": id, title: prioName(c, id) }, `★ ${T.priority} · ${prioName(c, id)}`) : null;
  }
  // Send a counter command, then tell the clerk what the edge did with it (done, or refused and why).
  function counterCmd(cid, counter, action, body) {
    const base = `/api/v1/centers/${encodeURIComponent(cid)}`;
    return api("POST", `${base}/counters/${encodeURIComponent(counter)}/${action}`, body || {})
      .then((sent) => {
        toast(`${T.sent}: ${T[`act_${action}`] || action} — ${counter}`, "ok");
        let tries = 0;
        const poll = () => api("GET", `${base}/commands/${encodeURIComponent(sent.id)}`).then((r) => {
          if (r.pending) { if (++tries < 20) setTimeout(poll, 500); return; }
          const t = r.data && r.data.ticket ? ` ${r.data.ticket}` : "";
          if (r.ok) toast(`${T.cmd_done}: ${T[`act_${action}`] || action}${t} — ${counter}`, "ok");
          else toast(`${T.cmd_refused}: ${r.error}`, "error");
        }).catch(() => {});
        setTimeout(poll, 300);
      }).catch((e) => toast(e.message, "error"));
  }
  function renderRecent(c) {
    const rows = (c.recent || []).slice(0, 15);
    const tb = $("recent") && $("recent").tBodies[0];
    if (!tb) return;
    if (!rows.length) { tb.replaceChildren(h("tr", {}, h("td", { colspan: 5, class: "muted" }, T.no_recent))); return; }
    tb.replaceChildren(...rows.map((x) => {
      const ctr = x.counter ? (((c.counters || {})[x.counter] || {}).name || x.counter) : "";
      const who = x.clerk ? ((c.clerks || {})[x.clerk] || x.clerk) : "";
      const marks = [
        x.priority ? prioMark(c, x.priority) : null,
        x.out_of_order ? h("span", { class: "tag warn", "data-mark": "out_of_order" }, T.out_of_order) : null,
        x.from_hold ? h("span", { class: "tag", "data-mark": "from_hold" }, T.from_hold) : null,
      ].filter(Boolean);
      return h("tr", { "data-ticket": x.ticket, "data-type": x.type, class: x.out_of_order || x.from_hold ? "audited" : "" },
        h("td", {}, fmtTime(x.ts)),
        h("td", { class: "strong" }, x.ticket),
        h("td", {}, ctr, who ? h("span", { class: "muted", "data-field": "clerk" }, ` · ${who}`) : null),
        h("td", {}, T[`ev_${x.type}`] || x.type, " ", ...marks),
        h("td", { class: "muted" }, x.by ? `${T.by} ${x.by}` : ""));
    }));
  }
  function renderCenter(c, adv) {
    const cid = c.center;
    boot.data.center = c;
    $("center-name").textContent = c.name || cid;
    document.title = `${c.name || cid} · civiq`;
    const stale = $("stale");
    if (stale) stale.hidden = !c.stale;
    const svc = Object.entries(c.services || {}).sort((a, b) => a[0].localeCompare(b[0]));
    const ctr = Object.entries(c.counters || {}).sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }));
    const waiting = svc.reduce((a, [, q]) => a + q.waiting, 0);
    const longest = Math.max(0, ...svc.filter(([, q]) => q.waiting).map(([, q]) => q.oldest_wait_s));
    const failing = (c.devices || []).filter((d) => d.state === "failed" || d.state === "offline").length
      + (c.nodes || []).filter((n) => n.status === "offline").length;
    $("center-totals").replaceChildren(
      stat(T.waiting, num(waiting), "waiting", "accent"),
      stat(T.longest_wait, waiting ? fmtDur(longest) : "–", "longest_wait"),
      stat(T.counters_open, `${ctr.filter(([, x]) => x.state === "open").length}/${ctr.length}`, "counters_open"),
      stat(T.offline_devices, failing ? h("a", { href: `/devices?center=${encodeURIComponent(cid)}`, title: T.see_devices,
        "data-link": "devices" }, num(failing)) : num(failing), "offline_devices", failing ? "warn" : ""),
      stat(T.served_today, num(svc.reduce((a, [, q]) => a + (q.served_today || 0), 0)), "served_today"));
    $("services").tBodies[0].replaceChildren(...svc.map(([sid, q]) =>
      h("tr", { class: q.oldest_wait_s > 1200 && q.waiting ? "hot" : "", "data-service": sid },
        h("td", { class: "svc-name" }, q.name || sid),
        h("td", { class: "num big-cell" }, h("span", { "data-field": "waiting" }, num(q.waiting)),
          q.priority_waiting ? h("span", { class: "sub prio", "data-field": "priority_waiting",
            title: Object.entries(q.priority_by_class || {}).map(([k, n]) => `${prioName(c, k)}: ${n}`).join(", ") },
          `★ ${num(q.priority_waiting)} ${T.priority.toLowerCase()}`) : null,
          q.held ? h("span", { class: "sub", "data-field": "held" }, `${num(q.held)} ${T.held.toLowerCase()}`) : null),
        h("td", { class: "num" }, q.waiting ? fmtDur(q.oldest_wait_s) : "–"),
        h("td", { class: "num", "data-field": "eta" }, q.waiting ? fmtDur(q.eta_s) : "–"),
        h("td", { class: "num" }, num(q.served_today)))));
    if (!svc.length) $("services").tBodies[0].replaceChildren(h("tr", {}, h("td", { colspan: 5, class: "muted" }, T.no_data)));
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.counterInput : null;
    $("counters").replaceChildren(...ctr.map(([id, x]) => {
      const held = x.held || [];
      const actions = (can.command ? (ACTIONS[x.state] || []) : []).filter((a) => a !== "hold" || x.ticket);
      if (can.command && x.clerk) actions.push("sign_out");
      const hasClerks = Object.keys(c.clerks || {}).length > 0 || x.clerk;
      const callForm = can.command && x.state !== "closed" ? h("form", { class: "call-form", "data-form": "call",
        onsubmit: (ev) => {
          ev.preventDefault();
          const input = ev.target.querySelector("input");
          const ticket = input.value.trim().toUpperCase();
          delete callDraft[id];
          input.value = "";
          if (ticket) counterCmd(cid, id, "call", { ticket });
        } },
        h("input", { type: "text", name: "ticket", placeholder: T.call_ticket_ph, maxlength: 6, size: 8, autocomplete: "off",
          pattern: "[A-Za-z]{1,2}[0-9]{1,4}", value: callDraft[id] || null, "data-counter-input": id,
          oninput: (ev) => { callDraft[id] = ev.target.value; } }),
        h("button", { type: "submit", "data-action": "call" }, T.act_call)) : null;
      return h("div", { class: `counter st-${x.state}`, "data-counter": id },
        h("div", { class: "counter-head" }, h("span", { class: "counter-id" }, x.name || `${T.counter} ${id}`), badge(x.state, T[`st_${x.state}`])),
        h("div", { class: "counter-ticket", "data-field": "ticket" }, x.ticket || "—"),
        x.ticket && x.priority ? h("div", { class: "counter-prio" }, prioMark(c, x.priority)) : null,
        hasClerks ? h("div", { class: x.clerk ? "counter-clerk" : "counter-clerk muted", "data-field": "clerk",
          "data-clerk": x.clerk || "" }, x.clerk ? `${T.clerk}: ${x.clerk_name || x.clerk}` : T.no_clerk) : null,
        held.length ? h("div", { class: "counter-held", "data-field": "held" }, `${T.held_tickets}: `,
          ...held.map((tk) => can.command && x.state !== "closed"
            ? h("button", { type: "button", class: "chip", "data-action": "call_held", "data-ticket": tk,
              onclick: () => counterCmd(cid, id, "call_held", { ticket: tk }) }, tk)
            : h("span", { class: "chip" }, tk))) : null,
        h("div", { class: "counter-services muted" }, (x.services || []).map((sid) => (c.services[sid] && c.services[sid].name) || sid).join(" · ")),
        h("div", { class: "counter-rate" }, `${T.served}: ${num(x.served_today)}`,
          x.per_hour !== undefined && x.per_hour !== null ? ` · ${Number(x.per_hour).toFixed(1)}${T.per_hour}` : ""),
        actions.length ? h("div", { class: "actions" }, actions.map((a) =>
          h("button", { type: "button", class: a === "next" ? "primary" : "", "data-action": a,
            onclick: () => counterCmd(cid, id, a) },
          T[`act_${a}`] || a))) : null,
        callForm);
    }));
    if (focused) {  // a live update must not steal the clerk's typing
      const el = document.querySelector(`[data-counter-input="${CSS.escape(focused)}"]`);
      if (el) { el.focus(); el.setSelectionRange(el.value.length, el.value.length); }
    }
    renderRecent(c);
    renderAdvice(cid, adv);
    if (history.length) {
      history[history.length - 1] = [now(), waiting];
      drawToday();
    }
  }
  function renderAdvice(cid, adv) {
    const box = $("advice");
    if (!adv) { box.replaceChildren(h("p", { class: "muted" }, T.no_advice)); return; }
    const ex = adv.expected || {};
    const svcs = (boot.data.center && boot.data.center.services) || {};
    const name = (sid) => (svcs[sid] && svcs[sid].name) || sid;
    box.replaceChildren(...[  // replaceChildren turns a null into the text "null": drop them
      h("p", { class: "advice-summary" }, (boot.lang === "en" ? adv.summary_en : adv.summary_vi) || adv.summary || ""),
      adv.reason ? h("p", { class: "muted" }, (boot.lang === "en" ? adv.reason_en : adv.reason_vi) || adv.reason) : null,
      !(adv.actions || []).length ? null : h("div", { class: "staff-actions" }, h("strong", {}, T.staff_actions),
        h("ul", {}, adv.actions.map((a) => h("li", { "data-kind": a.kind },
          boot.lang === "en" ? a.text_en : a.text_vi)))),
      !(adv.changes || []).length ? null : h("table", { class: "data compact" },
        h("thead", {}, h("tr", {}, h("th", {}, T.counter), h("th", {}, T.before), h("th", {}, T.after))),
        h("tbody", {}, (adv.changes || []).map((ch) => h("tr", {},
          h("td", {}, ch.counter), h("td", { class: "muted" }, (ch.before || []).map(name).join(", ")),
          h("td", { class: "strong" }, (ch.after || []).map(name).join(", ")))))),
      h("div", { class: "expected", "data-field": "forecast" }, h("strong", {}, `${T.expected}: `),
        ex.mean_wait_before_s !== undefined ? `${T.mean_wait}: ${fmtDur(ex.mean_wait_before_s)} → ${fmtDur(ex.mean_wait_after_s)} · `
          : (ex.text ? `${ex.text} ` : ""),
        ex.longest_wait_before_s !== undefined ? h("span", { class: "delta" },
          `${T.longest_wait}: ${fmtDur(ex.longest_wait_before_s)} → ${fmtDur(ex.longest_wait_after_s)}`) : null),
      can.apply_advice && adv.change !== false ? h("button", { type: "button", class: "primary", id: "apply-advice",
        onclick: (ev) => {
          ev.target.disabled = true;
          api("POST", `/api/v1/centers/${encodeURIComponent(cid)}/advice/apply`, { advice_id: adv.id })
            .then((r) => toast(T.applied.replace("{v}", r.policy_version), "ok"))
            .catch((e) => { toast(e.message, "error"); ev.target.disabled = false; });
        } }, T.apply) : null].filter(Boolean));
  }
  function drawToday() {
    const d = boot.data;
    $("chart-today").replaceChildren(lineChart(history, undefined, now()));
  }
  async function refreshHistory(cid) {
    try {
      const r = await api("GET", `/api/v1/centers/${encodeURIComponent(cid)}/history?metric=waiting`);
      const last = history[history.length - 1];
      history = r.points.map(([t, v]) => [Date.parse(t), v]);
      if (last) history.push(last);
      drawToday();
    } catch (e) { console.warn(e); }
  }
  function centerPage() {
    tickClock();
    const d = boot.data;
    history = d.history.map(([t, v]) => [Date.parse(t), v]);
    const waiting = Object.values(d.center.services || {}).reduce((a, q) => a + q.waiting, 0);
    history.push([now(), waiting]);
    renderCenter(d.center, d.advice);
    drawToday();
    $("chart-days").replaceChildren(barChart((d.days || []).map((x) => ({ label: String(x.day).slice(5), value: x.served || 0 }))));
    live({ watch: "center", center: boot.center }, (m) => { if (m.type === "center" && m.center) renderCenter(m.center, m.advice); });
    setInterval(() => refreshHistory(boot.center), 60000);
  }

  // ------------------------------------------------------------------------------------ devices
  let nodesCache = [];
  function renderDevices(m) {
    nodesCache = m.nodes || [];
    const alerts = m.alerts || [];
    $("alerts").replaceChildren(alerts.length ? h("table", { class: "data" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, `${T.centers} / ${T.node}`), h("th", {}, T.detail), h("th", {}, T.since), h("th", {}, ""))),
      h("tbody", {}, alerts.map((a) => h("tr", { "data-alert": a.key, class: a.acked_by ? "acked" : "" },
        h("td", {}, badge(a.severity === "critical" ? "failed" : a.severity === "warning" ? "degraded" : "ok", T[`sev_${a.severity}`] || a.severity)),
        h("td", {}, [a.center, a.node, a.device].filter(Boolean).join(" / ")),
        h("td", { "data-field": "what", title: a.summary || null },
          (boot.lang === "en" ? a.title_en : a.title_vi) || a.summary || a.kind),
        h("td", {}, fmtDateTime(a.since)),
        h("td", {}, a.acked_by ? h("span", { class: "muted" }, `${T.acked_by} ${a.acked_by}`)
          : can.maintain ? h("button", { type: "button", "data-action": "ack",
            onclick: () => api("POST", `/api/v1/alerts/${encodeURIComponent(a.key)}/ack`).then(() => toast(T.ack, "ok")).catch((e) => toast(e.message, "error")) }, T.ack) : null)))))
      : h("p", { class: "muted", id: "no-alerts" }, T.no_alerts));
    const sil = m.silences || [];
    $("silences").replaceChildren(sil.length ? h("ul", { class: "plain" }, sil.map((x) => h("li", {},
      h("strong", {}, [x.center, x.node].filter(Boolean).join(" / ")), ` — ${T.until} ${fmtDateTime(x.until)} — `, x.reason, h("span", { class: "muted" }, ` (${x.user})`))))
      : h("p", { class: "muted" }, "–"));
    $("nodes").replaceChildren(...nodesCache.map((n) => {
      const host = n.host || {};
      const facts = [
        [T.cpu_temp, host.cpu_temp_c != null ? `${Number(host.cpu_temp_c).toFixed(0)} °C` : "–"],
        [T.load, host.load1 != null ? Number(host.load1).toLocaleString(LANG, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : "–"],
        [T.disk, host.disk_used_pct != null ? `${Number(host.disk_used_pct).toFixed(0)} %` : "–"],
        [T.outbox, num((n.outbox || {}).pending)],
        [T.last_seen, fmtTime(n.last_seen)],
      ];
      return h("div", { class: `node panel st-${n.status}`, "data-node": `${n.center}/${n.node}` },
        h("div", { class: "node-head" }, h("span", { class: "node-name" }, `${n.center} / ${n.node}`), badge(n.status === "online" ? "ok" : n.status, T[n.status] || n.status)),
        h("dl", { class: "facts small" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
        h("table", { class: "data compact devices" },
          h("thead", {}, h("tr", {}, h("th", { class: "c-device" }, T.device), h("th", { class: "c-kind" }, T.kind),
            h("th", { class: "c-state" }, T.state), h("th", {}, T.detail))),
          h("tbody", {}, (n.devices || []).map((d) => {
            const detail = detailText(d.detail || "");
            const full = detail === (d.detail || "") ? detail : `${detail}\n(${d.detail})`;
            return h("tr", { "data-device": d.id },
              h("td", { class: "c-device" }, h("span", { class: "dev-id" }, d.id),
                h("span", { class: "sub", "data-field": "counter" }, d.counter ? (d.counter_name || d.counter) : T.hall_device)),
              h("td", { class: "c-kind", "data-field": "kind" }, T[`kind_${d.kind}`] || d.kind,
                d.model ? h("span", { class: "sub" }, d.model) : null),
              h("td", { class: "c-state" }, badge(d.state)),
              h("td", { class: "detail", title: full || null, "data-field": "detail" }, h("span", { class: "clamp" }, detail)));
          }))));
    }));
    fillNodeSelect();
  }
  function fillNodeSelect() {
    const sel = $("silence-node");
    const center = $("silence-center").value;
    const cur = sel.value;
    sel.replaceChildren(h("option", { value: "" }, T.all_nodes),
      ...nodesCache.filter((n) => n.center === center).map((n) => h("option", { value: n.node }, n.node)));
    sel.value = cur;
  }
  function devicesPage() {
    const d = boot.data;
    const centers = d.centers || [];
    const filter = $("center-filter");
    const mine = boot.user && boot.user.center;
    filter.replaceChildren(...(mine ? [] : [h("option", { value: "" }, T.all_centers)]),
      ...centers.map((c) => h("option", { value: c }, c)));
    filter.value = boot.center || "";
    filter.addEventListener("change", () => { location.search = filter.value ? `?center=${encodeURIComponent(filter.value)}` : ""; });
    const sc = $("silence-center");
    const choices = boot.center ? [boot.center] : centers;
    sc.replaceChildren(...choices.map((c) => h("option", { value: c }, c)));
    sc.addEventListener("change", fillNodeSelect);
    if (!can.maintain) $("silence-panel").hidden = true;
    $("silence-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const body = { center: sc.value, minutes: Number($("silence-minutes").value), reason: $("silence-reason").value };
      if ($("silence-node").value) body.node = $("silence-node").value;
      api("POST", "/api/v1/silences", body).then(() => { toast(T.save, "ok"); $("silence-reason").value = ""; })
        .catch((e) => toast(e.message, "error"));
    });
    renderDevices(d);
    const params = { watch: "devices" };
    if (boot.center) params.center = boot.center;
    live(params, (m) => { if (m.type === "devices") renderDevices(m); });
  }

  // ------------------------------------------------------------------------------------ public ticket
  function renderTicket(t) {
    $("t-label").style.setProperty("--chars", $("t-label").textContent.trim().length);
    if (!t.found) {
      $("t-service").textContent = "";
      $("t-state").textContent = T.ticket_unknown;
      $("t-state").className = "ticket-state st-unknown";
      return;
    }
    $("t-label").textContent = t.ticket;
    $("t-label").style.setProperty("--chars", String(t.ticket).length);  // LD1128 fits a phone on one line
    $("t-service").textContent = t.service_name || t.service || "";
    $("t-center").textContent = t.center_name || "";
    const state = t.state || "unknown";
    let text = T[`t_${state}`] || T.t_unknown;
    const counter = $("t-counter");
    counter.hidden = true;
    if (state === "called" && t.counter_name) {  // the counter's name from the center ("Quầy 3 - Đất đai")
      text = T.t_go_to;
      counter.textContent = t.counter_name;
      counter.hidden = false;
    } else if (state === "called" && t.counter) {
      text = `${text} ${t.counter}`;
    }
    $("t-state").textContent = text;
    $("t-state").className = `ticket-state st-${state}`;
    const waiting = state === "waiting";
    $("t-ahead").textContent = waiting && t.ahead !== null && t.ahead !== undefined ? num(t.ahead) : "–";
    $("t-eta").textContent = waiting ? fmtDur(t.eta_s) : "–";
    $("t-updated").textContent = new Date(now()).toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: TZ });
  }
  function ticketPage() {
    renderTicket(boot.data.ticket);
    live({ watch: "ticket", token: boot.token }, (m) => { if (m.type === "ticket") renderTicket(m.ticket); });
  }

  const pages = { overview: overviewPage, center: centerPage, devices: devicesPage, ticket: ticketPage };
  if (boot.data && pages[boot.page]) pages[boot.page]();
})();
