// Operations dashboard: polls api/summary and redraws inline-SVG charts.
// All data reaches the page through textContent or SVG attributes, never innerHTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const STATES = ["new", "contacted", "engaged", "qualified", "appointment_set", "completed", "lost"];
  const STATUSES = ["sent", "skipped", "deferred", "failed", "unknown", "recorded", "claimed"];
  const COLORS = {
    sent: "#2e7d32", skipped: "#9aa5b1", deferred: "#e3a21a", failed: "#c62828",
    unknown: "#7b1fa2", recorded: "#1565c0", claimed: "#90caf9",
  };
  const FUNNEL_COLORS = {
    new: "#5b8def", contacted: "#3f73d9", engaged: "#2b5fc4", qualified: "#1f4fa8",
    appointment_set: "#17408b", completed: "#2e7d32", lost: "#b0413e",
  };
  const params = new URLSearchParams(window.location.search);
  const refreshSeconds = Math.max(1, Number(params.get("refresh")) || 5);
  const state = { tenant: params.get("tenant") || "all", window: params.get("window") || "60", last: 0, timer: null };

  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  // cents → "$1,234.56" (whole dollars from $10,000 on: the figure, not the change)
  const dollars = (cents) => {
    if (cents === null || cents === undefined) return "–";
    const d = Number(cents) / 100;
    const digits = Math.abs(d) >= 10000 ? 0 : 2;
    return "$" + d.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  };
  const pct = (r) => (r === null || r === undefined ? "–" : (r * 100).toFixed(1) + "%");
  const label = (s) => String(s).replace(/_/g, " ");
  const SHORT = { appointment_set: "appt set", completed: "completed" };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, parent, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (parent) parent.appendChild(node);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function empty(node, message) {
    clear(node).appendChild(el("div", { class: "empty" }, message));
  }

  // Axis top with four even, round ticks (whole numbers for counts).
  function niceMax(v, whole) {
    const raw = Math.max(v, 1e-9) / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    if (whole) step = Math.max(1, Math.ceil(step));
    return step * 4;
  }

  function clock(epochSeconds, bucketSeconds) {
    const d = new Date(epochSeconds * 1000);
    const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
    return bucketSeconds >= 3600 ? d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + hm : hm;
  }

  // charts --------------------------------------------------------------------------------
  function drawFunnel(node, funnel) {
    clear(node);
    const W = 520, rowH = 34, left = 130, right = 70;
    const H = STATES.length * rowH + 8;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Lead funnel" }, node);
    const max = Math.max(1, ...STATES.map((s) => funnel[s] || 0));
    STATES.forEach((s, i) => {
      const n = funnel[s] || 0;
      const y = i * rowH + 4;
      const w = n ? Math.max(3, ((W - left - right) * n) / max) : 0;
      svg("text", { x: left - 10, y: y + rowH / 2 + 4, "text-anchor": "end", class: "label" }, root, label(s));
      svg("rect", { x: left, y: y + 5, width: W - left - right, height: rowH - 10, rx: 4, fill: "#f0f3f7" }, root);
      svg("rect", { x: left, y: y + 5, width: w, height: rowH - 10, rx: 4, fill: FUNNEL_COLORS[s], "data-state": s }, root);
      svg("text", { x: left + w + 8, y: y + rowH / 2 + 4, class: "count", "data-testid": "funnel-count-" + s }, root, fmt(n));
    });
  }

  function drawStacked(node, buckets, bucketSeconds, series) {
    clear(node);
    const shown = STATUSES.filter((s) => (series[s] || []).some((v) => v > 0));
    const legend = clear($("tp-legend"));
    for (const s of shown.length ? shown : ["sent", "skipped", "deferred", "failed"]) {
      legend.appendChild(el("span", { class: "sw-" + s }, label(s)));
    }
    const W = 760, H = 260, L = 40, R = 10, T = 10, B = 26;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Touch points over time" }, node);
    const totals = buckets.map((_, i) => shown.reduce((a, s) => a + (series[s][i] || 0), 0));
    const max = niceMax(Math.max(1, ...totals), true);
    const plotW = W - L - R, plotH = H - T - B;
    for (let k = 0; k <= 4; k++) {
      const y = T + plotH - (plotH * k) / 4;
      svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid-line" }, root);
      svg("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, root, fmt((max * k) / 4));
    }
    const step = plotW / Math.max(1, buckets.length);
    const barW = Math.max(1, step * 0.78);
    buckets.forEach((t, i) => {
      let y = T + plotH;
      for (const s of shown) {
        const v = series[s][i] || 0;
        if (!v) continue;
        const h = (plotH * v) / max;
        y -= h;
        const r = svg("rect", { x: L + i * step + (step - barW) / 2, y: y, width: barW, height: h, fill: COLORS[s] }, root);
        svg("title", {}, r, `${clock(t, bucketSeconds)} · ${label(s)}: ${v}`);
      }
    });
    const every = Math.max(1, Math.ceil(buckets.length / 8));
    buckets.forEach((t, i) => {
      if (i % every) return;
      svg("text", { x: L + i * step + step / 2, y: H - 8, "text-anchor": "middle" }, root, clock(t, bucketSeconds));
    });
    if (!totals.some((v) => v > 0)) {
      svg("text", { x: L + plotW / 2, y: T + plotH / 2, "text-anchor": "middle", class: "label" }, root, "No touch points in this window");
    }
  }

  function sparkline(values, color) {
    const W = 110, H = 24;
    const root = document.createElementNS(SVG, "svg");
    root.setAttribute("viewBox", `0 0 ${W} ${H}`);
    root.setAttribute("width", W);
    root.setAttribute("height", H);
    const max = Math.max(1, ...values);
    const step = W / Math.max(1, values.length);
    values.forEach((v, i) => {
      if (!v) return;
      const h = Math.max(1.5, ((H - 2) * v) / max);
      svg("rect", { x: i * step, y: H - h, width: Math.max(1, step * 0.8), height: h, fill: color }, root);
    });
    return root;
  }

  function drawReasons(tbody, reasons) {
    clear(tbody);
    if (!reasons.length) {
      const tr = tbody.appendChild(el("tr"));
      tr.appendChild(el("td", { colspan: "4", class: "muted" }, "No decisions in this window"));
      return;
    }
    for (const r of reasons.slice(0, 14)) {
      const tr = tbody.appendChild(el("tr", { "data-reason": r.status + "/" + r.reason }));
      const badge = el("span", { class: "badge " + (STATUSES.includes(r.status) ? r.status : "claimed") }, r.status);
      tr.appendChild(el("td")).appendChild(badge);
      tr.appendChild(el("td", {}, label(r.reason)));
      tr.appendChild(el("td", { class: "num" }, fmt(r.count)));
      tr.appendChild(el("td")).appendChild(sparkline(r.series, COLORS[r.status] || "#888"));
    }
  }

  function drawWebhooks(node, hooks, windowMinutes) {
    clear(node);
    $("webhook-metric").textContent = hooks.metric || "";
    const chips = clear($("webhook-labels"));
    for (const [k, v] of Object.entries(hooks.by_label || {})) chips.appendChild(el("span", {}, `${k || "–"}: ${fmt(v)}`));
    if (!hooks.available) return empty(node, hooks.note ? "Webhook figures: " + hooks.note : "No webhook metrics in this process yet");
    const pts = hooks.series || [];
    if (pts.length < 2) return empty(node, "Collecting samples…");
    const W = 420, H = 200, L = 38, R = 40, T = 10, B = 24;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Webhook rate and latency" }, node);
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    const x = (t) => L + ((W - L - R) * (t - t0)) / Math.max(1, t1 - t0);
    const rateMax = niceMax(Math.max(1, ...pts.map((p) => p.rate)));
    const latMax = niceMax(Math.max(1, ...pts.map((p) => p.p95_ms || 0)), true);
    const plotH = H - T - B;
    for (let k = 0; k <= 4; k++) {
      const y = T + plotH - (plotH * k) / 4;
      svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid-line" }, root);
      svg("text", { x: L - 5, y: y + 4, "text-anchor": "end" }, root, String(Math.round((rateMax * k) / 4 * 100) / 100));
      svg("text", { x: W - R + 5, y: y + 4 }, root, Math.round((latMax * k) / 4) + "ms");
    }
    const line = (key, max, color, dash) => {
      const shown = pts.filter((p) => p[key] !== null);
      const y = (p) => (T + plotH - (plotH * p[key]) / max).toFixed(1);
      const d = shown.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p)}`).join(" ");
      if (d) svg("path", { d: d, fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": dash || "" }, root);
      // sparse series (a few webhooks): mark the points, a lone one would draw nothing
      if (shown.length <= 12) {
        for (const p of shown) svg("circle", { cx: x(p.t).toFixed(1), cy: y(p), r: 2.5, fill: color }, root);
      }
    };
    line("rate", rateMax, "#1f6feb");
    line("p95_ms", latMax, "#d29922", "4 3");
    svg("text", { x: L, y: H - 6 }, root, clock(t0, 60));
    svg("text", { x: W - R, y: H - 6, "text-anchor": "end" }, root, clock(t1, 60));
    svg("text", { x: W / 2, y: H - 6, "text-anchor": "middle" }, root, "— req/s   - - p95 latency");
  }

  function drawLag(node, lag) {
    clear(node);
    if (lag.error) node.appendChild(el("div", { class: "muted" }, "Kafka: " + lag.error));
    const groups = lag.groups || [];
    if (!groups.length) return lag.error ? undefined : empty(node, "No consumer group has committed offsets yet");
    const W = 420, rowH = 40, left = 130, right = 70;
    const root = svg("svg", { viewBox: `0 0 ${W} ${groups.length * rowH + 6}`, role: "img", "aria-label": "Consumer lag" }, node);
    const max = Math.max(1, ...groups.map((g) => g.lag));
    groups.forEach((g, i) => {
      const y = i * rowH + 4;
      const w = g.lag ? Math.max(3, ((W - left - right) * g.lag) / max) : 0;
      svg("text", { x: left - 10, y: y + 16, "text-anchor": "end", class: "label" }, root, g.group);
      svg("text", { x: left - 10, y: y + 30, "text-anchor": "end" }, root, `${g.behind}/${g.partitions} partitions behind`);
      svg("rect", { x: left, y: y + 6, width: W - left - right, height: 18, rx: 4, fill: "#f0f3f7" }, root);
      svg("rect", { x: left, y: y + 6, width: w, height: 18, rx: 4, fill: g.lag > 1000 ? "#c62828" : g.lag > 0 ? "#e3a21a" : "#2e7d32" }, root);
      svg("text", { x: left + w + 8, y: y + 20, class: "count", "data-testid": "lag-" + g.group }, root, fmt(g.lag));
    });
  }

  function drawLocations(head, tbody, locations) {
    clear(head);
    const hr = head.appendChild(el("tr"));
    hr.appendChild(el("th", {}, "Location"));
    hr.appendChild(el("th", { class: "num" }, "Leads"));
    for (const s of STATES) hr.appendChild(el("th", { class: "num", title: label(s) }, SHORT[s] || label(s)));
    for (const s of ["sent", "skipped", "deferred", "failed"]) hr.appendChild(el("th", { class: "num" }, s));
    hr.appendChild(el("th", { class: "num" }, "skip rate"));
    clear(tbody);
    for (const loc of locations) {
      const tr = tbody.appendChild(el("tr", { class: "clickable" + (loc.tenant_id === state.tenant ? " selected" : ""), "data-tenant": loc.tenant_id }));
      tr.appendChild(el("td", { class: "name" }, loc.name));
      tr.appendChild(el("td", { class: "num" }, fmt(loc.leads)));
      for (const s of STATES) tr.appendChild(el("td", { class: "num" }, fmt(loc.funnel[s])));
      for (const s of ["sent", "skipped", "deferred", "failed"]) tr.appendChild(el("td", { class: "num" }, fmt(loc.touchpoints[s])));
      tr.appendChild(el("td", { class: "num" }, pct(loc.skip_rate)));
      tr.addEventListener("click", () => select(state.tenant === loc.tenant_id ? "all" : loc.tenant_id));
    }
  }

  function drawDeclined(total, locations, scope) {
    if (!total) return;
    $("declined-scope").textContent = scope + " · every lead, not the window";
    const f = total.followed_up, b = total.brought_back;
    setKpi("declined-followed", fmt(f.services), dollars(f.cents) + " declined");
    setKpi("declined-back", fmt(b.services), dollars(b.cents) + " revived on a later order", "good");
    setKpi("declined-ratio", pct(total.value_ratio), `${dollars(b.cents)} of ${dollars(f.cents)}`);
    const tbody = clear($("declined-locations"));
    const rows = (locations || []).filter((loc) => loc.declined && loc.declined.followed_up.services);
    if (!rows.length) {
      tbody.appendChild(el("tr")).appendChild(el("td", { colspan: "6", class: "muted" }, "No declined work yet"));
      return;
    }
    for (const loc of rows) {
      const d = loc.declined;
      const tr = tbody.appendChild(el("tr", { "data-tenant": loc.tenant_id }));
      tr.appendChild(el("td", { class: "name" }, loc.name));
      tr.appendChild(el("td", { class: "num", "data-field": "followed" }, fmt(d.followed_up.services)));
      tr.appendChild(el("td", { class: "num", "data-field": "followed-value" }, dollars(d.followed_up.cents)));
      tr.appendChild(el("td", { class: "num", "data-field": "back" }, fmt(d.brought_back.services)));
      tr.appendChild(el("td", { class: "num", "data-field": "back-value" }, dollars(d.brought_back.cents)));
      tr.appendChild(el("td", { class: "num", "data-field": "ratio" }, pct(d.value_ratio)));
    }
  }

  function drawHealth(list, locations) {
    clear(list);
    const troubled = (locations || []).filter((loc) => loc.problems.length);
    if (!troubled.length) {
      list.appendChild(el("li", { class: "muted" }, "Nothing missing: every location can send"));
      return;
    }
    for (const loc of troubled) {
      const li = list.appendChild(el("li", { "data-tenant": loc.tenant_id }));
      li.appendChild(el("strong", {}, loc.name));
      const ul = li.appendChild(el("ul"));
      for (const p of loc.problems) ul.appendChild(el("li", { class: "problem", "data-code": p.code }, p.text));
    }
  }

  function drawDelivery(tbody, rows) {
    clear(tbody);
    if (!rows.length) {
      tbody.appendChild(el("tr")).appendChild(el("td", { colspan: "3", class: "muted" }, "Nothing sent in this window"));
      return;
    }
    for (const r of rows) {
      const tr = tbody.appendChild(el("tr"));
      tr.appendChild(el("td", {}, r.channel));
      tr.appendChild(el("td", {}, r.delivery_status === "-" ? "awaiting report" : label(r.delivery_status)));
      tr.appendChild(el("td", { class: "num" }, fmt(r.count)));
    }
  }

  function setKpi(id, value, note, tone) {
    const v = $(id);
    v.textContent = value;
    v.classList.remove("good", "warn", "bad");
    if (tone) v.classList.add(tone);
    $(id + "-note").textContent = note || "";
  }

  function windowText(minutes) {
    return minutes >= 1440 ? `${minutes / 1440} d` : minutes >= 60 ? `${minutes / 60} h` : `${minutes} min`;
  }

  function render(d) {
    const w = windowText(d.window_minutes);
    const tp = d.touchpoints.totals;
    const decided = d.skip_rate.decisions;
    setKpi("kpi-leads", fmt(d.leads_total), `${fmt(d.funnel.engaged + d.funnel.qualified + d.funnel.appointment_set)} engaged or further`);
    setKpi("kpi-ingested", fmt(d.ingestion.in_window), `last ${w} · ${d.ingestion.per_hour}/h`);
    setKpi("kpi-sent", fmt(tp.sent), `of ${fmt(decided)} decisions · ${fmt(tp.failed)} failed`, "good");
    setKpi("kpi-skip", pct(d.skip_rate.ratio), `${fmt(d.skip_rate.whitelist_skips)} whitelist skips / ${fmt(decided)}`);
    const wm = d.webhooks.last_minute;
    setKpi("kpi-webhooks", wm ? wm.rate_per_second.toFixed(2) + "/s" : "–", d.webhooks.available ? `${fmt(d.webhooks.requests_total)} since start` : d.webhooks.note || "no metrics yet");
    const ww = d.webhooks.window;
    setKpi("kpi-latency", ww && ww.p95_ms !== null ? ww.p95_ms.toFixed(0) + " ms" : "–", ww && ww.p50_ms !== null ? `p50 ${ww.p50_ms.toFixed(0)} ms · last ${w}` : "");
    const groups = d.lag.groups || [];
    const hqOnly = d.viewer && d.viewer.role !== "hq";
    setKpi("kpi-lag", d.lag.error && !groups.length ? (hqOnly ? "–" : "?") : fmt(d.lag.total), d.lag.error ? (hqOnly ? d.lag.error : "Kafka unreachable") : `${groups.length} consumer groups`, d.lag.error && !hqOnly ? "bad" : d.lag.total > 1000 ? "warn" : null);

    const scope = d.tenant === "all" ? "all locations" : (d.tenants.find((t) => t.id === d.tenant) || { name: d.tenant }).name;
    $("funnel-scope").textContent = scope;
    $("tp-scope").textContent = `${scope} · last ${w}, ${windowText(d.bucket_seconds / 60)} buckets`;
    drawFunnel($("funnel"), d.funnel);
    drawStacked($("tp-chart"), d.buckets, d.bucket_seconds, d.touchpoints.series);
    drawReasons($("reasons"), d.touchpoints.reasons);
    drawWebhooks($("webhook-chart"), d.webhooks, d.window_minutes);
    drawLag($("lag"), d.lag);
    drawLocations($("locations-head"), $("locations"), d.locations);
    drawDelivery($("delivery"), d.delivery);
    drawHealth($("health"), d.health);
    drawDeclined(d.declined, d.locations, scope);
    syncTenants(d.tenants);
    showViewer(d.viewer);
  }

  function showViewer(viewer) {
    if (viewer) $("viewer").textContent = `${viewer.email} · ${viewer.role === "hq" ? "all locations" : "your locations"}`;
  }

  function syncTenants(tenants) {
    const select = $("tenant");
    const wanted = ["all", ...tenants.map((t) => t.id)];
    const have = Array.from(select.options).map((o) => o.value);
    if (wanted.join() !== have.join()) {
      clear(select).appendChild(el("option", { value: "all" }, "All locations"));
      for (const t of tenants) select.appendChild(el("option", { value: t.id }, t.name));
    }
    select.value = state.tenant;
  }

  // polling -------------------------------------------------------------------------------
  function live(ok, text) {
    $("live").className = "live " + (ok ? "ok" : "err");
    $("live-text").textContent = text;
  }

  async function refresh() {
    clearTimeout(state.timer);
    const q = new URLSearchParams({ tenant: state.tenant, window: state.window });
    const ctrl = new AbortController();
    const abort = setTimeout(() => ctrl.abort(), 15000);
    try {
      const res = await fetch("api/summary?" + q.toString(), { signal: ctrl.signal, cache: "no-store" });
      if (res.status === 401) { window.location.assign("sign-in"); return; }
      const body = await res.json();
      if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
      render(body);
      state.last = Date.now();
      $("banner").hidden = true;
      document.body.dataset.updated = body.generated_at;
      live(true, "live · updated " + new Date().toLocaleTimeString([], { hour12: false }));
    } catch (err) {
      $("banner").hidden = false;
      $("banner").textContent = "Could not refresh: " + err.message + " (showing the last figures)";
      live(false, "stale");
    } finally {
      clearTimeout(abort);
      state.timer = setTimeout(refresh, refreshSeconds * 1000);
    }
  }

  function select(tenant) {
    state.tenant = tenant;
    const q = new URLSearchParams(window.location.search);
    q.set("tenant", state.tenant);
    q.set("window", state.window);
    history.replaceState(null, "", "?" + q.toString());
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("window").value = state.window;
    $("tenant").addEventListener("change", (e) => select(e.target.value));
    $("window").addEventListener("change", (e) => { state.window = e.target.value; select(state.tenant); });
    refresh();
  });
})();
