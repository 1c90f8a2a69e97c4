// civiq report page: renders the report in the boot document (tables, CSS bar charts, satisfaction).
// Data goes into the DOM through textContent only. Times are shown in minutes (one decimal), shares in %,
// one unit per column (the files keep seconds: docs/reports.md).
"use strict";
(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  if (boot.page !== "reports") return;
  const T = boot.i18n || {};
  const LANG = boot.lang === "en" ? "en-GB" : "vi-VN";
  const by = boot.data.by;
  const $ = (id) => document.getElementById(id);
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "width" || k === "height") el.style.setProperty(k, v);  // CSSOM: allowed by the CSP
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const has = (v) => v !== null && v !== undefined;
  const int = (v) => (has(v) ? Number(v).toLocaleString(LANG) : "–");
  const dec = (v, d) => Number(v).toLocaleString(LANG, { minimumFractionDigits: d, maximumFractionDigits: d });
  const mins = (s) => (has(s) ? dec(s / 60, 1) : "–");
  const pct = (x) => (has(x) ? `${dec(100 * x, 1)} %` : "–");
  const score = (x) => (has(x) ? dec(x, 2) : "–");

  function stat(label, value, field, cls) {
    return h("div", { class: `stat ${cls || ""}`, "data-field": field },
      h("span", { class: "label" }, label), h("span", { class: "value" }, value));
  }
  const render = (d) => (d.centers ? provincePage(d) : centerReport(d));
  render(boot.data.province || boot.data.report);
  // a period that holds today keeps itself up to date (every refresh_s, 60 s, from the same API)
  const per = (boot.data.province || boot.data.report).period;
  const today = new Date(boot.server_now || Date.now()).toLocaleDateString("en-CA", { timeZone: per.tz });
  if (per.first <= today && today <= per.last) {
    const q = new URLSearchParams(location.search);
    q.delete("by");
    q.set("lang", boot.lang);
    setInterval(() => {
      fetch(`/api/v1/reports?${q}`, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : null)).then((d) => { if (d) render(d); }).catch(() => {});
    }, 1000 * (boot.data.refresh_s || 60));
  }

  function centerReport(rep) {
    const sat = !!(rep.scope && rep.scope.satisfaction);
    // ------------------------------------------------------------------ heading and totals
    const p = rep.period;
    const kindWord = T[`p_${p.kind}`] || p.kind;
    const range = p.first === p.last ? p.first : `${p.first} → ${p.last}`;
    $("rep-where").textContent = [rep.center_name, `${kindWord} ${p.label}`, p.kind === "day" ? null : range,
      rep.clerk ? `${T.rep_own}: ${rep.clerk_name || rep.clerk}` : null].filter(Boolean).join(" · ");
    const t = rep.total;
    $("rep-totals").replaceChildren(...[
      has(t.issued) ? stat(T.rep_issued, int(t.issued), "issued") : null,
      stat(T.rep_served, int(t.served), "served", "accent"),
      stat(T.rep_no_show, int(t.no_show), "no_show"),
      stat(T.rep_mean_wait, has(t.wait_mean_s) ? `${mins(t.wait_mean_s)} ${T.unit_min}` : "–", "wait_mean"),
      stat(T.rep_over15, pct(t.wait_over_15m_share), "over15", t.wait_over_15m_share > 0.3 ? "warn" : ""),
      stat(T.rep_mean_service, has(t.service_mean_s) ? `${mins(t.service_mean_s)} ${T.unit_min}` : "–", "service_mean"),
      sat ? stat(T.rep_satisfied, pct(t.satisfied_share), "satisfied_share", "accent") : null,
    ].filter(Boolean));

    // ------------------------------------------------------------------ per hour / day (CSS bars)
    $("rep-chart-title").textContent = p.kind === "day" ? T.rep_chart_hour : T.rep_chart_day;
    const tl = rep.timeline || [];
    function bars(id, field, fmt) {
      const vals = tl.map((b) => (has(b[field]) ? b[field] : 0));
      const max = Math.max(1e-9, ...vals);
      return h("div", { class: "rep-bars", id }, tl.map((b, i) => {
        const label = p.kind === "day" ? `${b.bucket}h` : b.bucket.slice(8);
        return h("div", { class: "bar", "data-bucket": b.bucket, title: `${label}: ${fmt(b[field])}` },
          h("span", { class: "bar-value" }, fmt(b[field])),
          h("span", { class: "bar-fill", height: `${Math.round((100 * vals[i]) / max)}%` }),
          h("span", { class: "bar-label" }, label));
      }));
    }
    $("rep-chart").replaceChildren(...(tl.length ? [
      bars("rep-bars-served", "served", int),
      h("h3", {}, `${T.rep_wait_mean}`),
      bars("rep-bars-wait", "wait_mean_s", (v) => (has(v) ? dec(v / 60, 0) : "–")),
    ] : [h("p", { class: "muted" }, T.no_data)]));

    // ------------------------------------------------------------------ satisfaction
    if (!sat) {
      $("rep-sat-panel").hidden = true;
    } else if (!t.ratings) {
      $("rep-sat").replaceChildren(h("p", { class: "muted", id: "rep-no-ratings" }, T.rep_no_ratings));
    } else {
      const blocks = [h("div", { class: "sat-head" },
        stat(T.rep_satisfied, pct(t.satisfied_share), "sat_share", "accent"),
        stat(T.rep_ratings, int(t.ratings), "sat_ratings"),
        stat(T.rep_score, score(t.score_mean_5), "sat_score"),
        stat(T.rep_coverage, pct(t.coverage), "sat_coverage"))];
      for (const [scale, counts] of Object.entries(rep.scores || {}).sort((a, b) => b[0] - a[0])) {
        const n = Object.values(counts).reduce((a, b) => a + b, 0);
        blocks.push(h("h3", {}, `${T.rep_scores} (${T.rep_scale.replace("{n}", scale)})`),
          h("div", { class: "hbars", "data-scale": scale }, Object.entries(counts).sort((a, b) => b[0] - a[0]).map(([s, c]) =>
            h("div", { class: `hbar ${Number(s) >= Number(scale) - 1 ? "good" : "bad"}`, "data-score": s },
              h("span", { class: "hbar-label" }, `${s}★`),
              h("span", { class: "hbar-track" }, h("span", { class: "hbar-fill", width: `${n ? Math.round((100 * c) / n) : 0}%` })),
              h("span", { class: "hbar-value" }, int(c))))));
      }
      const reasons = Object.entries(t.reasons || {}).sort((a, b) => b[1] - a[1]);
      if (reasons.length) {
        const top = reasons[0][1];
        blocks.push(h("h3", {}, T.rep_reasons), h("div", { class: "hbars", id: "rep-reasons" }, reasons.map(([r, c]) =>
          h("div", { class: "hbar bad", "data-reason": r },
            h("span", { class: "hbar-label wide" }, (rep.reasons || {})[r] || r),
            h("span", { class: "hbar-track" }, h("span", { class: "hbar-fill", width: `${Math.round((100 * c) / top)}%` })),
            h("span", { class: "hbar-value" }, int(c))))));
      }
      $("rep-sat").replaceChildren(...blocks);
    }

    // ------------------------------------------------------------------ the table
    const group = { service: "services", counter: "counters", clerk: "clerks" }[by] || "services";
    $("rep-table-title").textContent = `${T.rep_by}: ${T[`by_${by}`] || by}`;
    const cols = [
      group === "services" ? ["issued", T.rep_issued, int] : null,
      ["served", T.rep_served, int], ["no_show", T.rep_no_show, int], ["transferred", T.rep_transferred, int],
      ["priority_served", T.rep_priority_served, int],
      ["wait_mean_s", T.rep_wait_mean, mins], ["wait_p50_s", T.rep_wait_p50, mins], ["wait_p90_s", T.rep_wait_p90, mins],
      ["wait_over_15m_share", T.rep_over15, pct], ["wait_over_30m_share", T.rep_over30, pct],
      ["service_mean_s", T.rep_service_mean, mins], ["service_p90_s", T.rep_service_p90, mins],
      sat ? ["ratings", T.rep_ratings, int] : null, sat ? ["satisfied_share", T.rep_satisfied, pct] : null,
      sat ? ["score_mean_5", T.rep_score, score] : null,
    ].filter(Boolean);
    const rows = rep[group] || [];
    const tr = (r, cls) => h("tr", { class: cls || "", "data-key": r.key === null ? "" : r.key },
      h("td", { class: "strong" }, r.name), cols.map(([k, , f]) => h("td", { class: "num", "data-col": k }, f(r[k]))));
    $("rep-table").replaceChildren(
      h("thead", {}, h("tr", {}, h("th", {}, T[`by_${by}`] || by), cols.map(([, label]) => h("th", { class: "num" }, label)))),
      h("tbody", {}, rows.length ? rows.map((r) => tr(r)) : h("tr", {}, h("td", { colspan: cols.length + 1, class: "muted" }, T.no_data))),
      h("tfoot", {}, tr({ ...t, key: "total", name: T.rep_total }, "total")));
  }

  // ------------------------------------------------------------------ every center (province)
  function provincePage(prov) {
    const p = prov.period;
    const sat = !!(prov.scope && prov.scope.satisfaction);
    const rows = prov.centers || [];
    const sum = (k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
    $("rep-where").textContent = [T.all_centers, `${T[`p_${p.kind}`] || p.kind} ${p.label}`,
      p.first === p.last ? null : `${p.first} → ${p.last}`].filter(Boolean).join(" · ");
    $("rep-totals").replaceChildren(
      stat(T.centers, int(rows.length), "centers"),
      stat(T.rep_issued, int(sum("issued")), "issued"),
      stat(T.rep_served, int(sum("served")), "served", "accent"),
      stat(T.rep_no_show, int(sum("no_show")), "no_show"),
      sat ? stat(T.rep_ratings, int(sum("ratings")), "ratings") : null,
      sat && sum("ratings") ? stat(T.rep_satisfied, pct(sum("satisfied") / sum("ratings")), "satisfied_share", "accent") : null);
    $("rep-chart-title").textContent = T.rep_chart_center;
    const hbars = (id, field, fmt, scale) => h("div", { class: "hbars", id }, rows.map((r) =>
      h("div", { class: "hbar", "data-center": r.key },
        h("span", { class: "hbar-label wide" }, r.name),
        h("span", { class: "hbar-track" }, h("span", { class: "hbar-fill", width: `${Math.round(100 * (r[field] || 0) / scale)}%` })),
        h("span", { class: "hbar-value" }, fmt(r[field])))));
    $("rep-chart").classList.add("by-center");
    $("rep-chart").replaceChildren(rows.length ? hbars("rep-bars-centers", "served", int, Math.max(1, ...rows.map((r) => r.served)))
      : h("p", { class: "muted" }, T.no_data));
    if (!sat) $("rep-sat-panel").hidden = true;
    else $("rep-sat").replaceChildren(rows.length ? hbars("rep-sat-centers", "satisfied_share", pct, 1) : h("p", { class: "muted" }, T.no_data));
    $("rep-table-title").textContent = `${T.rep_by}: ${T.rep_center}`;
    const cols = [["issued", T.rep_issued, int], ["served", T.rep_served, int], ["no_show", T.rep_no_show, int],
      ["transferred", T.rep_transferred, int], ["priority_served", T.rep_priority_served, int],
      ["wait_mean_s", T.rep_wait_mean, mins], ["wait_p90_s", T.rep_wait_p90, mins],
      ["wait_over_15m_share", T.rep_over15, pct], ["wait_over_30m_share", T.rep_over30, pct],
      ["service_mean_s", T.rep_service_mean, mins],
      sat ? ["ratings", T.rep_ratings, int] : null, sat ? ["satisfied_share", T.rep_satisfied, pct] : null,
      sat ? ["score_mean_5", T.rep_score, score] : null, sat ? ["coverage", T.rep_coverage, pct] : null].filter(Boolean);
    const link = (r) => `/reports?${new URLSearchParams({ center: r.key, period: p.kind, date: p.first })}`;
    $("rep-table").replaceChildren(
      h("thead", {}, h("tr", {}, h("th", {}, T.rep_center), cols.map(([, label]) => h("th", { class: "num" }, label)))),
      h("tbody", {}, rows.length ? rows.map((r) => h("tr", { "data-key": r.key },
        h("td", { class: "strong" }, h("a", { href: link(r) }, r.name)),
        cols.map(([k, , f]) => h("td", { class: "num", "data-col": k }, f(r[k])))))
        : h("tr", {}, h("td", { colspan: cols.length + 1, class: "muted" }, T.no_data))));
  }

  // changing a select shows the new report at once
  for (const id of ["rep-center", "rep-period", "rep-by"]) {
    const el = $(id);
    if (el) el.addEventListener("change", () => $("rep-form").requestSubmit());
  }
})();
