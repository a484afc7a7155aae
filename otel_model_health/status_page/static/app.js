// The model health status page: polls the JSON document and keeps one table row per model.
// Every text comes from requests (model names are attacker-controlled), so it is set with textContent or
// as an attribute value through the DOM, never parsed as HTML. No inline code: the page's CSP forbids it.
"use strict";

(function () {
  const VERSION = 1;
  const SVG = "http://www.w3.org/2000/svg";
  const RANK = { unhealthy: 0, degraded: 1, stale: 2, unknown: 3, healthy: 4 };
  const STATUS_SIGN = { healthy: "✓", degraded: "◐", unhealthy: "✕", stale: "…", unknown: "?" };
  const KIND = {
    first_failure: "first failure",
    breaker_opened: "breaker opened",
    half_open: "trial started",
    half_open_failed: "trial failed",
    recovered: "recovered",
  };
  const BREAKER = { closed: "closed", open: "open", half_open: "half-open" };

  const body = document.body;
  const source = body.dataset.source;
  const pollMs = Math.max(250, Number(body.dataset.pollMs) || 2000);
  const main = document.getElementById("models");
  const overall = document.getElementById("overall");
  const connection = document.getElementById("connection");
  const filter = document.getElementById("filter");
  const shown = document.getElementById("shown");
  const updated = document.getElementById("updated");

  const rows = new Map(); // model key -> row record
  const groups = new Map(); // provider -> group record
  const rowOf = new WeakMap(); // <tr> -> row record
  let lastGood = null;
  let updates = 0;
  let withSlos = false;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setText(node, text) {
    const value = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function time(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d) ? "—" : d.toLocaleTimeString([], { hour12: false });
  }

  function percent(x) {
    return x === null || x === undefined ? "—" : (Math.round(x * 1000) / 10).toString() + "%";
  }

  function seconds(x) {
    if (x === null || x === undefined) return "—";
    return x < 1 ? Math.round(x * 1000) + " ms" : x.toFixed(2) + " s";
  }

  function rank(status) {
    return status in RANK ? RANK[status] : 5;
  }

  function badge(node, status, label) {
    node.className = "badge status-" + (status in RANK ? status : "unknown");
    node.dataset.status = status;
    const sign = el("span", "sign", STATUS_SIGN[status] || "?");
    sign.setAttribute("aria-hidden", "true");
    node.replaceChildren(sign, document.createTextNode(" " + (label || status)));
  }

  function safeLink(url, text, label) {
    // Only http(s) links: a template is the operator's, but a javascript: URL must never become a link.
    let parsed = null;
    try {
      parsed = new URL(url, document.baseURI);
    } catch (e) {
      parsed = null;
    }
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) return el("span", "", text);
    const a = el("a", "", text);
    a.href = parsed.href;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.setAttribute("aria-label", label);
    return a;
  }

  // --- one row ------------------------------------------------------------------------------------
  function newRow(model) {
    const tr = el("tr");
    const cells = {};
    const th = el("th");
    th.scope = "row";
    cells.name = el("span", "model-name");
    cells.gateway = el("span", "gateway");
    cells.error = el("div", "error");
    th.append(cells.name, cells.gateway, cells.error);
    tr.append(th);
    for (const name of ["status", "breaker", "rate", "latency", "incidents", "slo"]) {
      cells[name] = el("td", "col-" + name);
      tr.append(cells[name]);
    }
    cells.statusBadge = el("span");
    cells.status.append(cells.statusBadge);
    cells.spark = document.createElementNS(SVG, "svg");
    cells.spark.setAttribute("viewBox", "0 0 120 24");
    cells.spark.setAttribute("width", "120");
    cells.spark.setAttribute("height", "24");
    cells.spark.setAttribute("role", "img");
    cells.spark.setAttribute("class", "spark");
    cells.rateText = el("span", "rate-text");
    cells.rate.append(cells.spark, cells.rateText);
    const row = { tr: tr, cells: cells, json: "", search: "", model: model };
    rowOf.set(tr, row);
    return row;
  }

  function updateRow(row, m) {
    const json = JSON.stringify(m);
    row.model = m;
    if (json === row.json) return;
    row.json = json;
    const c = row.cells;
    const tr = row.tr;
    tr.dataset.model = m.model;
    tr.dataset.provider = m.provider;
    tr.dataset.status = m.status;
    tr.dataset.breaker = m.breaker_state;
    row.search = (m.provider + " " + m.model + " " + m.gateway).toLowerCase();
    setText(c.name, m.model);
    setText(c.gateway, m.gateway && m.gateway !== "direct" ? " via " + m.gateway : "");
    const err = m.last_error;
    setText(
      c.error,
      err && m.status !== "healthy"
        ? "last error " + (err.type || "") + (err.message ? ": " + err.message : "") + " at " + time(err.at)
        : ""
    );
    badge(c.statusBadge, m.status);
    const breaker = BREAKER[m.breaker_state] || m.breaker_state;
    setText(c.breaker, m.breaker_state === "open" && m.open_until ? breaker + " until " + time(m.open_until) : breaker);
    c.breaker.className = "col-breaker breaker-" + m.breaker_state;
    drawSpark(c.spark, m.history);
    setText(c.rateText, percent(m.success_rate) + " now");
    setText(c.latency, seconds(m.latency_p50_s) + " / " + seconds(m.latency_p95_s));
    drawIncidents(c.incidents, m);
    drawSlos(c.slo, m.slos || []);
  }

  function drawSpark(svg, history) {
    const good = (history && history.good) || [];
    const bad = (history && history.bad) || [];
    const n = good.length;
    const step = n ? 120 / n : 0;
    const minutes = Math.round((n * ((history && history.bucket_s) || 60)) / 60);
    const bars = [];
    let calls = 0;
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const total = good[i] + bad[i];
      if (!total) continue;
      calls += total;
      ok += good[i];
      const rate = good[i] / total;
      const h = Math.max(2, Math.round(rate * 22));
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(i * step));
      rect.setAttribute("y", String(24 - h));
      rect.setAttribute("width", String(step * 0.8));
      rect.setAttribute("height", String(h));
      rect.setAttribute("class", rate >= 0.95 ? "ok" : rate >= 0.5 ? "warn" : "bad");
      bars.push(rect);
    }
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("x1", "0");
    base.setAttribute("x2", "120");
    base.setAttribute("y1", "23.5");
    base.setAttribute("y2", "23.5");
    base.setAttribute("class", "axis");
    svg.replaceChildren(base, ...bars);
    svg.setAttribute(
      "aria-label",
      calls
        ? "Success rate over the last " + minutes + " minutes: " + percent(ok / calls) + " of " + calls + " calls"
        : "No calls in the last " + minutes + " minutes"
    );
  }

  function drawIncidents(cell, m) {
    const steps = m.incidents || [];
    if (!steps.length) {
      cell.replaceChildren(el("span", "none", "—"));
      return;
    }
    const open = cell.querySelector("details");
    const details = el("details");
    if (open && open.open) details.open = true;
    const last = steps[steps.length - 1];
    details.append(el("summary", "", (KIND[last.kind] || last.kind) + " at " + time(last.at) + " (" + steps.length + ")"));
    const list = el("ol", "timeline");
    list.reversed = true; // newest first, numbered in order of occurrence
    for (let i = steps.length - 1; i >= 0; i--) {
      const s = steps[i];
      const li = el("li", "step step-" + s.kind);
      li.append(el("time", "", time(s.at)), document.createTextNode(" " + (KIND[s.kind] || s.kind)));
      if (s.error_type) li.append(el("span", "etype", " (" + s.error_type + ")"));
      if (s.trace_url) li.append(document.createTextNode(" · "), safeLink(s.trace_url, "trace", "Trace of " + (KIND[s.kind] || s.kind)));
      else if (s.trace_id) li.append(el("span", "trace-id", " · trace " + s.trace_id.slice(0, 8)));
      if (s.sentry_url) li.append(document.createTextNode(" · "), safeLink(s.sentry_url, "Sentry event", "Sentry event of " + (KIND[s.kind] || s.kind)));
      else if (s.sentry_event_id) li.append(el("span", "event-id", " · Sentry " + s.sentry_event_id.slice(0, 8)));
      list.append(li);
    }
    details.append(list);
    cell.replaceChildren(details);
  }

  function drawSlos(cell, slos) {
    const items = [];
    for (const s of slos) {
      withSlos = true;
      const left = Math.max(0, Math.min(1, s.error_budget_remaining));
      const wrap = el("div", "slo");
      const label = el("span", "slo-name", s.name + ": " + percent(s.error_budget_remaining) + " budget left");
      const meter = el("meter");
      meter.min = 0;
      meter.max = 1;
      meter.low = 0.25;
      meter.high = 0.5;
      meter.optimum = 1;
      meter.value = left;
      meter.setAttribute("aria-label", "Error budget left for " + s.name);
      wrap.append(label, meter);
      if (s.active_alerts && s.active_alerts.length) wrap.append(el("span", "slo-alert", "alert: " + s.active_alerts.join(", ")));
      items.push(wrap);
    }
    cell.replaceChildren(...(items.length ? items : [el("span", "none", "—")]));
  }

  // --- groups -------------------------------------------------------------------------------------
  function newGroup(provider) {
    const section = el("section", "provider");
    section.dataset.provider = provider;
    const h2 = el("h2");
    const name = el("span", "provider-name", provider);
    const state = el("span");
    const counts = el("span", "counts");
    h2.append(name, state, counts);
    const table = el("table");
    const caption = el("caption", "visually-hidden", "Models of " + provider);
    const thead = el("thead");
    const head = el("tr");
    for (const [text, cls] of [
      ["Model", "col-model"],
      ["Status", "col-status"],
      ["Breaker", "col-breaker"],
      ["Success rate, last hour", "col-rate"],
      ["Latency p50 / p95", "col-latency"],
      ["Incidents", "col-incidents"],
      ["SLO budget", "col-slo"],
    ]) {
      const th = el("th", cls, text);
      th.scope = "col";
      head.append(th);
    }
    thead.append(head);
    const tbody = el("tbody");
    table.append(caption, thead, tbody);
    section.append(h2, table);
    section.setAttribute("aria-label", "Provider " + provider);
    return { section: section, state: state, counts: counts, tbody: tbody, rank: 5, name: provider };
  }

  function render(doc) {
    const seen = new Set();
    const byProvider = new Map();
    for (const m of doc.models) {
      const key = m.provider + "\u0000" + m.model + "\u0000" + m.gateway;
      seen.add(key);
      let row = rows.get(key);
      if (!row) {
        row = newRow(m);
        rows.set(key, row);
      }
      updateRow(row, m);
      if (!byProvider.has(m.provider)) byProvider.set(m.provider, []);
      byProvider.get(m.provider).push(row);
    }
    for (const [key, row] of rows) {
      if (!seen.has(key)) {
        row.tr.remove();
        rows.delete(key);
      }
    }
    const order = [];
    for (const [provider, list] of byProvider) {
      let group = groups.get(provider);
      if (!group) {
        group = newGroup(provider);
        groups.set(provider, group);
      }
      list.sort(
        (a, b) =>
          rank(a.model.status) - rank(b.model.status) ||
          (a.model.model < b.model.model ? -1 : a.model.model > b.model.model ? 1 : 0) ||
          (a.model.gateway < b.model.gateway ? -1 : a.model.gateway > b.model.gateway ? 1 : 0)
      );
      reorder(group.tbody, list.map((r) => r.tr));
      const info = (doc.providers && doc.providers[provider]) || { status: "healthy", models: list.length, unhealthy: 0 };
      const worst = Math.min(...list.map((r) => rank(r.model.status)));
      group.rank = info.status === "unhealthy" ? -1 : worst;
      badge(group.state, info.status, info.status === "unhealthy" ? "outage" : info.status);
      setText(group.counts, list.length + (list.length === 1 ? " model" : " models") + ", " + info.unhealthy + " unhealthy");
      order.push(group);
    }
    for (const [provider, group] of groups) {
      if (!byProvider.has(provider)) {
        group.section.remove();
        groups.delete(provider);
      }
    }
    order.sort((a, b) => a.rank - b.rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    reorder(main, order.map((g) => g.section));
    body.classList.toggle("no-slo", !withSlos);
    const c = doc.counts || {};
    const overallText =
      "Overall " + doc.status + ": " + (c.total || 0) + " models, " + (c.unhealthy || 0) + " unhealthy, " + (c.degraded || 0) + " degraded";
    setText(overall, overallText);
    overall.className = "overall status-" + doc.status;
    overall.dataset.status = doc.status;
    applyFilter();
  }

  function reorder(parent, wanted) {
    const current = parent.children;
    let same = current.length === wanted.length;
    for (let i = 0; same && i < wanted.length; i++) same = current[i] === wanted[i];
    if (!same) parent.replaceChildren(...wanted);
  }

  function applyFilter() {
    const q = filter.value.trim().toLowerCase();
    let visible = 0;
    for (const group of groups.values()) {
      let any = false;
      for (const tr of group.tbody.children) {
        const row = rowOf.get(tr);
        const match = !q || (row && row.search.indexOf(q) >= 0);
        tr.hidden = !match;
        if (match) {
          any = true;
          visible++;
        }
      }
      group.section.hidden = !any;
    }
    setText(shown, q ? visible + " of " + rows.size + " models shown" : rows.size + " models");
  }

  // --- polling ------------------------------------------------------------------------------------
  async function poll() {
    try {
      const response = await fetch(source, { cache: "no-store", credentials: "same-origin", headers: { accept: "application/json" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const doc = await response.json();
      if (doc.version !== VERSION) throw new Error("unsupported document version " + doc.version);
      render(doc);
      lastGood = doc.generated_at;
      updates++;
      if (updates === 1) body.dataset.firstRenderMs = String(Math.round(performance.now())); // since navigation
      body.dataset.updates = String(updates);
      body.dataset.generatedAt = doc.generated_at;
      setText(updated, "Updated " + time(doc.generated_at) + ", every " + pollMs / 1000 + " s");
      connection.hidden = true;
    } catch (e) {
      connection.hidden = false;
      setText(connection, "Cannot reach the health data (" + e.message + "); retrying. Last update: " + time(lastGood));
    } finally {
      setTimeout(poll, pollMs);
    }
  }

  filter.addEventListener("input", applyFilter);
  poll();
})();
