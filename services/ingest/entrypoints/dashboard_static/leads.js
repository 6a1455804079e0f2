// Leads: search (api/leads), a lead's page (api/leads/<id>) and its actions (POST
// api/leads/<id>/actions). Keyboard first: the search is a form (Enter), each result a link
// (Tab, Enter), the page takes the focus, Escape closes it. Data only through textContent.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { q: "", page: 0, lead: null };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }
  const short = (iso) => (iso ? new Date(iso).toLocaleString([], { hour12: false }) : "–");
  const label = (s) => String(s === null || s === undefined ? "–" : s).replace(/_/g, " ");

  async function getJson(url, init) {
    const res = await fetch(url, { cache: "no-store", ...(init || {}) });
    if (res.status === 401) { window.location.assign("sign-in"); throw new Error("signed out"); }
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
    return body;
  }

  async function search(q, page) {
    state.q = q; state.page = page;
    const tbody = clear($("lead-results"));
    let found;
    try {
      found = await getJson("api/leads?" + new URLSearchParams({ q, page: String(page) }).toString());
    } catch (err) {
      tbody.appendChild(el("tr")).appendChild(el("td", { colspan: "7", class: "muted" }, err.message));
      return;
    }
    if (!found.leads.length) {
      tbody.appendChild(el("tr")).appendChild(el("td", { colspan: "7", class: "muted" }, "No lead matches"));
    }
    for (const lead of found.leads) {
      const tr = tbody.appendChild(el("tr", { "data-lead": lead.lead_id }));
      const link = el("a", { href: "#lead=" + lead.lead_id, "data-testid": "lead-link" }, lead.name || lead.lead_id);
      tr.appendChild(el("td")).appendChild(link);
      for (const v of [lead.location, lead.email, lead.phone, lead.order_number]) tr.appendChild(el("td", {}, v || "–"));
      tr.appendChild(el("td", {}, label(lead.state) + (lead.sequence_stopped ? " · stopped" : "")));
      tr.appendChild(el("td", {}, short(lead.updated_at)));
    }
    $("lead-page").textContent = `page ${page + 1}`;
    $("lead-prev").disabled = page === 0;
    $("lead-next").disabled = !found.more;
  }

  function facts(lead) {
    const dl = clear($("lead-facts"));
    const rows = [
      ["State", label(lead.state) + (lead.lost_reason ? ` (${lead.lost_reason})` : "")],
      ["Sequence", lead.sequence_stopped ? "stopped" : "running"],
      ["Customer", [lead.first_name, lead.last_name].filter(Boolean).join(" ") || "–"],
      ["Email", (lead.email || "–") + (lead.email_opted_out ? " · opted out" : "")],
      ["Phone", (lead.phone || "–") + (lead.sms_opted_out ? " · opted out" : "")],
      ["Order", lead.order_number || lead.shopmonkey_order_id || "–"],
      ["Vehicle", lead.vehicle || "–"],
      ["Location", lead.tenant_name || lead.tenant_id],
      ["Touch points sent", lead.touches_sent],
    ];
    for (const [k, v] of rows) {
      dl.appendChild(el("dt", {}, k));
      dl.appendChild(el("dd", { "data-fact": k.toLowerCase() }, v));
    }
  }

  async function open(leadId, focus) {
    let page;
    try {
      page = await getJson("api/leads/" + encodeURIComponent(leadId));
    } catch (err) {
      $("lead").hidden = false;
      $("lead-title").textContent = "Lead " + leadId + ": " + err.message;
      clear($("lead-facts")); clear($("lead-touchpoints")); clear($("lead-timeline"));
      return;
    }
    state.lead = leadId;
    const lead = page.lead || {};
    $("lead").hidden = false;
    $("lead-title").textContent = "Lead " + page.lead_id;
    facts(lead);
    const tp = clear($("lead-touchpoints"));
    if (!page.touchpoints.length) tp.appendChild(el("tr")).appendChild(el("td", { colspan: "6", class: "muted" }, "None yet"));
    for (const t of page.touchpoints) {
      const tr = tp.appendChild(el("tr"));
      for (const v of [t.step_index, t.channel, t.status, t.reason, t.delivery_status, short(t.decided_at)]) tr.appendChild(el("td", {}, v === null || v === undefined ? "–" : v));
    }
    const tl = clear($("lead-timeline"));
    for (const e of page.timeline) tl.appendChild(el("li", { "data-kind": e.kind }, `${short(e.at)} · ${e.kind} · ${e.summary}`));
    if (page.kafka && page.kafka.errors && page.kafka.errors.length) tl.appendChild(el("li", { class: "muted" }, "Kafka: " + page.kafka.errors.join("; ")));
    if (focus) $("lead").focus();
  }

  async function act(action) {
    const reason = $("lead-reason").value.trim();
    const out = $("lead-act-result");
    if (!reason) { out.textContent = "Say why first"; $("lead-reason").focus(); return; }
    try {
      const done = await getJson("api/leads/" + encodeURIComponent(state.lead) + "/actions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ action, reason }),
      });
      out.textContent = `${label(done.action)} sent by ${done.by} at ${short(done.at)}`;
      $("lead-reason").value = "";
      // the signal is in Kafka once acknowledged: the timeline shows it at the next read
      await open(state.lead, false);
    } catch (err) {
      out.textContent = "Refused: " + err.message;
    }
  }

  function route() {
    const m = /^#lead=([0-9a-fA-F-]{36})$/.exec(window.location.hash);
    if (m) open(m[1], true);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("lead-search").addEventListener("submit", (e) => { e.preventDefault(); search($("lead-q").value, 0); });
    $("lead-prev").addEventListener("click", () => search(state.q, Math.max(0, state.page - 1)));
    $("lead-next").addEventListener("click", () => search(state.q, state.page + 1));
    $("lead-act").addEventListener("submit", (e) => { e.preventDefault(); act((e.submitter || {}).value || "stop"); });
    $("lead").addEventListener("keydown", (e) => {
      if (e.key === "Escape") { $("lead").hidden = true; history.replaceState(null, "", window.location.pathname + window.location.search); $("lead-q").focus(); }
    });
    window.addEventListener("hashchange", route);
    route();
  });
})();
