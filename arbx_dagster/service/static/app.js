// ArbX dashboard: the live opportunities table (fed by /api/sse/updates), filters, and a
// price-history chart of the selected product. No build step, no third-party code: the
// CSP allows only scripts and styles served by the API itself.
"use strict";

const state = {
  key: null,
  currency: "CLP", // the market's, from /api/config
  rows: new Map(), // opportunity_id -> row
  cursor: null,
  lastEventId: null,
  stream: null, // AbortController of the SSE fetch
  loading: false,
  buffered: [], // events received while the list was (re)loading
  selected: null,
};
const $ = (id) => document.getElementById(id);
const COLORS = { falabella: "#15803d", ripley: "#7c3aed", paris: "#1d4ed8" };
const EXTRA_COLORS = ["#b45309", "#be123c", "#0e7490", "#4d7c0f"];

// Amounts are integers in the market currency's minor unit (whole pesos, cents): CLP reads
// "$1.299.990", the others "US$1,849.77" (the currency comes from /api/config).
function clp(n) {
  if (n === null || n === undefined) return "—";
  if (state.currency === "CLP") {
    return "$" + String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
  }
  const format = new Intl.NumberFormat("en-US", { style: "currency", currency: state.currency });
  return format.format(n / 10 ** format.resolvedOptions().maximumFractionDigits);
}

function setConnection(text, kind) {
  const badge = $("conn");
  badge.textContent = text;
  badge.className = "badge " + kind;
}

function filters() {
  const params = new URLSearchParams();
  const pairs = [
    ["kind", $("f-kind").value],
    ["retailer", $("f-retailer").value],
    ["category", $("f-category").value.trim()],
    ["min_margin", $("f-min-margin").value],
    ["min_roi", $("f-min-roi").value],
    ["review", $("f-review").value],
    ["sort", $("f-sort").value],
  ];
  for (const [name, value] of pairs) if (value) params.set(name, value);
  return params;
}

function matches(o) {
  const f = Object.fromEntries(filters());
  if (o.status === "expired") return false;
  if (f.kind && o.kind !== f.kind) return false;
  if (f.retailer && o.buy_retailer !== f.retailer) return false;
  if (f.category && !(o.category || "").toLowerCase().includes(f.category.toLowerCase())) return false;
  if (f.min_margin && o.margin_clp < Number(f.min_margin)) return false;
  if (f.min_roi && o.roi_pct < Number(f.min_roi)) return false;
  if (f.review === "held" && !o.review) return false;
  if (f.review === "clear" && o.review) return false;
  return true;
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + state.key } });
  if (response.status === 401) {
    setConnection("invalid API key", "off");
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

// The retailers sources.yaml provides, from the server: any store, not a fixed list.
async function loadRetailers() {
  const { retailers } = await api("/api/retailers");
  state.currency = (await api("/api/config")).currency || "CLP";
  $("margin-unit").textContent = state.currency;
  const select = $("f-retailer");
  const chosen = select.value;
  for (const option of [...select.options]) if (option.value) option.remove();
  for (const retailer of retailers) {
    const option = document.createElement("option");
    option.value = option.textContent = retailer;
    select.append(option);
  }
  select.value = retailers.includes(chosen) ? chosen : "";
}

// --- the table -----------------------------------------------------------------------

const SORT_FIELD = { margin: "margin_clp", roi: "roi_pct", last_seen: "last_seen", confidence: "confidence" };

function sortedRows() {
  const field = SORT_FIELD[$("f-sort").value] || "margin_clp";
  return [...state.rows.values()].sort((a, b) => {
    if (a[field] === b[field]) return a.opportunity_id < b.opportunity_id ? -1 : 1;
    return a[field] < b[field] ? 1 : -1;
  });
}

// A glitch is read by how far below its reference it is (1 CLP vs $90.000: −99.9 %),
// never by its ROI, which a price of a few pesos makes absurd.
function depth(o) {
  if (!o.ref_price) return "—";
  const value = Math.trunc(1000 * (o.buy_price / o.ref_price - 1)) / 10; // 1 CLP is not free
  return (value < 0 ? "−" : "+") + Math.abs(value).toFixed(1) + " %";
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function render(freshId) {
  const body = document.querySelector("#opportunities tbody");
  body.replaceChildren();
  for (const o of sortedRows()) {
    const tr = document.createElement("tr");
    tr.dataset.id = o.opportunity_id;
    tr.dataset.testid = "opportunity";
    if (o.opportunity_id === freshId) tr.classList.add("fresh");
    if (state.selected === o.canonical_id) tr.classList.add("selected");
    const kind = cell(o.review ? o.kind + " · review" : o.kind, "kind-" + o.kind);
    if (o.review) {
      kind.classList.add("review");
      kind.title = o.review + " — label the pair to settle it";
      tr.dataset.review = "held";
    }
    tr.append(
      kind,
      cell(o.product_name || o.buy_sku, "product"),
      cell(o.buy_retailer),
      cell(clp(o.buy_price), "num"),
      cell(o.ref_retailer || "own history"),
      cell(clp(o.ref_price), "num"),
      cell(clp(o.margin_clp), "num"),
      cell(o.kind === "glitch" ? depth(o) : o.roi_pct.toFixed(1) + "%", "num"),
      cell(o.status),
    );
    tr.addEventListener("click", () => showProduct(o));
    body.append(tr);
  }
  const total = [...state.rows.values()].reduce((sum, o) => sum + o.margin_clp, 0);
  $("summary").textContent = `${state.rows.size} live opportunities · ${clp(total)} total margin`;
  $("more").hidden = !state.cursor;
}

async function loadOpportunities(reset) {
  state.loading = true;
  try {
    const params = filters();
    params.set("limit", "100");
    if (!reset && state.cursor) params.set("cursor", state.cursor);
    const page = await api("/api/opportunities?" + params);
    if (reset) state.rows.clear();
    for (const o of page.items) state.rows.set(o.opportunity_id, o);
    state.cursor = page.next_cursor;
  } finally {
    state.loading = false;
  }
  // Events that arrived during the load are newer than (or as new as) the page: replay.
  const pending = state.buffered.splice(0);
  for (const [type, data] of pending) apply(type, data, false);
  render();
}

// --- live events -----------------------------------------------------------------------

function apply(type, data, live) {
  if (state.loading && live) {
    state.buffered.push([type, data]);
    return;
  }
  if (type === "opportunity.new" || type === "opportunity.changed") {
    if (matches(data)) state.rows.set(data.opportunity_id, data);
    else state.rows.delete(data.opportunity_id);
    if (live) render(data.opportunity_id);
  } else if (type === "opportunity.expired") {
    state.rows.delete(data.opportunity_id);
    if (live) render();
  } else if (type === "opportunities.refreshed" || type === "reset") {
    loadOpportunities(true).catch(console.error);
  } else if (type === "run.status") {
    const item = document.createElement("li");
    item.textContent = `${data.job_name} ${data.status.toLowerCase()} (${data.run_id.slice(0, 8)})`;
    $("runs").prepend(item);
    while ($("runs").children.length > 8) $("runs").lastChild.remove();
  }
}

function parseEvent(block) {
  let id = null;
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = value;
    else if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { id, type, data: data.join("\n") } : null;
}

// EventSource cannot send an Authorization header, so the stream is read with fetch; the
// reconnection (with Last-Event-ID) that EventSource would do is done here.
async function openStream() {
  let backoff = 1000;
  const controller = new AbortController();
  state.stream = controller;
  while (!controller.signal.aborted) {
    try {
      const headers = { Authorization: "Bearer " + state.key, Accept: "text/event-stream" };
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const response = await fetch("/api/sse/updates", { headers, signal: controller.signal });
      if (response.status === 401) {
        setConnection("invalid API key", "off");
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      setConnection("live", "on");
      backoff = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (!event) continue;
          if (event.id) state.lastEventId = event.id;
          apply(event.type, JSON.parse(event.data), true);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      console.warn("event stream interrupted:", error);
    }
    setConnection("reconnecting…", "wait");
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, 15000);
  }
}

// --- product chart ---------------------------------------------------------------------

function svg(name, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function drawChart(detail) {
  const chart = $("chart");
  const legend = $("legend");
  chart.replaceChildren();
  legend.replaceChildren();
  const series = [];
  let extra = 0;
  for (const [retailer, listings] of Object.entries(detail.retailers)) {
    for (const listing of listings) {
      const points = listing.history
        .filter((h) => h.price_offer !== null)
        .map((h) => ({ day: h.day, price: h.price_offer }));
      if (!points.length && listing.price_offer !== null) {
        points.push({ day: (listing.last_seen || "").slice(0, 10), price: listing.price_offer });
      }
      const color = COLORS[retailer] || EXTRA_COLORS[extra++ % EXTRA_COLORS.length];
      series.push({ label: `${retailer} ${listing.sku}`, color, points });
    }
  }
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    chart.append(svg("text", { x: 20, y: 150 }, "No price history yet"));
    return;
  }
  const days = [...new Set(all.map((p) => p.day))].sort();
  const prices = all.map((p) => p.price);
  let low = Math.min(...prices);
  let high = Math.max(...prices);
  if (low === high) { low *= 0.9; high *= 1.1; }
  const [left, right, top, bottom] = [80, 620, 20, 270];
  const x = (day) => days.length === 1 ? (left + right) / 2
    : left + (days.indexOf(day) / (days.length - 1)) * (right - left);
  const y = (price) => bottom - ((price - low) / (high - low)) * (bottom - top);
  chart.append(
    svg("line", { x1: left, y1: bottom, x2: right, y2: bottom, stroke: "#9ca3af" }),
    svg("line", { x1: left, y1: top, x2: left, y2: bottom, stroke: "#9ca3af" }),
    svg("text", { x: 4, y: top + 10, "font-size": 11 }, clp(high)),
    svg("text", { x: 4, y: bottom, "font-size": 11 }, clp(low)),
    svg("text", { x: left, y: 292, "font-size": 11 }, days[0]),
    svg("text", { x: right - 62, y: 292, "font-size": 11 }, days[days.length - 1]),
  );
  for (const s of series) {
    if (!s.points.length) continue;
    const path = s.points.map((p, i) => `${i ? "L" : "M"}${x(p.day).toFixed(1)},${y(p.price).toFixed(1)}`);
    chart.append(svg("path", { d: path.join(" "), fill: "none", stroke: s.color, "stroke-width": 2, "data-series": s.label }));
    for (const p of s.points) {
      chart.append(svg("circle", { cx: x(p.day), cy: y(p.price), r: 3, fill: s.color }));
    }
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = s.color;
    item.append(swatch, document.createTextNode(s.label));
    legend.append(item);
  }
}

async function showProduct(o) {
  if (!o.canonical_id) return;
  state.selected = o.canonical_id;
  render();
  $("product-title").textContent = o.product_name || o.canonical_id;
  try {
    drawChart(await api("/api/products/" + encodeURIComponent(o.canonical_id) + "?days=90"));
  } catch (error) {
    $("product-title").textContent = "Could not load the product: " + error.message;
  }
}

// --- wiring ---------------------------------------------------------------------------

async function connect(event) {
  if (event) event.preventDefault();
  state.key = $("api-key").value.trim();
  if (!state.key) return;
  sessionStorage.setItem("arbx-key", state.key);
  if (state.stream) state.stream.abort();
  setConnection("connecting…", "wait");
  openStream();
  try {
    // A filter without choices is no reason not to list the opportunities.
    await loadRetailers().catch((error) => {
      if (error.message === "unauthorized") throw error;
      console.error(error);
    });
    await loadOpportunities(true);
  } catch (error) {
    console.error(error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("auth").addEventListener("submit", connect);
  for (const id of ["f-kind", "f-retailer", "f-review", "f-sort"]) {
    $(id).addEventListener("change", () => state.key && loadOpportunities(true));
  }
  for (const id of ["f-category", "f-min-margin", "f-min-roi"]) {
    $(id).addEventListener("change", () => state.key && loadOpportunities(true));
  }
  $("more").addEventListener("click", () => loadOpportunities(false));
  const saved = sessionStorage.getItem("arbx-key");
  if (saved) {
    $("api-key").value = saved;
    connect();
  }
});
