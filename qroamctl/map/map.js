// qroam live map: polls /map.json once a second and redraws the SVG.
// Plain JavaScript, no framework; every element it draws carries a class
// and data-* attributes so that a person (or a test) can find it.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const W = 1000, H = 640, PAD = 60, TOP = 90;
const ENDED_SHOWN_MS = 120000;  // an ended handover's arrow stays this long
let polls = 0;

function el(name, attrs, parent, text) {
  const e = document.createElementNS(SVGNS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function title(e, text) { el("title", {}, e, text); return e; }

function clear(id) {
  const g = document.getElementById(id);
  while (g.firstChild) g.removeChild(g.firstChild);
  return g;
}

// Equirectangular projection fitted to the regions (and vehicles).
function projection(doc) {
  let la0 = 90, la1 = -90, lo0 = 180, lo1 = -180;
  const grow = (la, lo) => {
    la0 = Math.min(la0, la); la1 = Math.max(la1, la);
    lo0 = Math.min(lo0, lo); lo1 = Math.max(lo1, lo);
  };
  for (const r of doc.regions) for (const p of r.polygon) grow(p[0], p[1]);
  for (const v of doc.vehicles) if (v.lat !== undefined) grow(v.lat, v.lon);
  if (la0 > la1) { la0 = -1; la1 = 1; lo0 = -1; lo1 = 1; }
  const k = Math.cos((la0 + la1) / 2 * Math.PI / 180);
  const dx = Math.max((lo1 - lo0) * k, 1e-6), dy = Math.max(la1 - la0, 1e-6);
  const s = Math.min((W - 2 * PAD) / dx, (H - TOP - PAD) / dy);
  const ox = (W - dx * s) / 2, oy = TOP + (H - TOP - PAD - dy * s) / 2;
  return (la, lo) => [ox + (lo - lo0) * k * s, oy + (la1 - la) * s];
}

function centroid(poly, proj) {
  let x = 0, y = 0;
  for (const p of poly) { const q = proj(p[0], p[1]); x += q[0]; y += q[1]; }
  return [x / poly.length, y / poly.length];
}

function loadColour(load) {
  // green (idle) to orange (busiest region)
  const h = 130 - 100 * Math.min(1, load);
  return "hsl(" + h + ", 65%, 62%)";
}

function drawRegions(doc, proj, where) {
  const g = clear("regions"), lab = clear("labels");
  const most = Math.max(1, ...doc.regions.map(r => r.sessions));
  for (const r of doc.regions) {
    const pts = r.polygon.map(p => proj(p[0], p[1]).join(",")).join(" ");
    const pg = el("polygon", {points: pts, "class": "region" + (r.up ? "" : " down"),
      "data-tsp": r.tsp, fill: loadColour(r.sessions / most)}, g);
    title(pg, r.tsp + (r.up ? "" : " (down)") + ": " + r.sessions + " sessions, " +
      r.vehicles + " vehicles registered, " + r.handovers_in_flight + " handovers in flight");
    const c = centroid(r.polygon, proj);
    where[r.tsp] = c;
    el("text", {x: c[0], y: c[1] - 4, "class": "region-label"}, lab,
      r.tsp + (r.up ? "" : " (down)"));
    el("text", {x: c[0], y: c[1] + 13, "class": "region-load"}, lab,
      r.sessions + " sessions");
  }
}

function drawLinks(doc, where) {
  const g = clear("links"), body = document.querySelector("#linktable tbody");
  while (body.firstChild) body.removeChild(body.firstChild);
  const node = [W / 2, 36];
  where.sched = where.sched || node;
  for (const l of doc.links) {
    const a = where[l.sae_a] || node, b = where[l.sae_b] || node;
    const cls = "link" + (l.alarm ? " alarm" : "");
    const ln = el("line", {x1: a[0], y1: a[1], x2: b[0], y2: b[1], "class": cls,
      "data-link": l.link}, g);
    const q = (100 * l.qber).toFixed(1) + " %";
    const bound = l.qber_bound == null ? "–" : (100 * l.qber_bound).toFixed(1) + " %";
    const state = l.state || (l.aborting ? "aborting" : "up");
    ln.dataset.state = state;
    const text = l.link + ": " + state + ", pool " + l.keys + "/" + l.capacity + ", " +
      Math.round(l.key_rate_bps) + " bit/s, QBER " + q + " (bound " + bound + ")" +
      (l.eavesdropper ? ", eavesdropper on" : "") + (l.alarm ? " (above the abort threshold)" : "");
    title(ln, text);
    const m = [(a[0] * 2 + b[0]) / 3, (a[1] * 2 + b[1]) / 3];
    el("text", {x: m[0] + 6, y: m[1], "class": "link-label" + (l.alarm ? " alarm" : "")}, g,
      l.keys + "/" + l.capacity + " · Q " + q + " ≤ " + bound + " · " + state);
    const tr = document.createElement("tr");
    if (l.alarm) tr.className = "alarm";
    for (const v of [l.link, l.keys + "/" + l.capacity, Math.round(l.key_rate_bps) + " b/s",
                     q, bound, state]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  if (doc.links.length) {
    el("circle", {cx: node[0], cy: node[1], r: 22, "class": "node"}, g);
    el("text", {x: node[0], y: node[1] + 4, "class": "node-label"}, g, "sched");
  }
}

// One arrow per (from, to): in flight if one is, else the last one ended.
function drawHandovers(doc, where) {
  const g = clear("handovers"), pairs = {};
  const now = doc.now_ms;
  for (const h of doc.handovers.ended) {
    if (now - h.ended_ms > ENDED_SHOWN_MS) continue;
    const k = h.from + ">" + h.to, p = pairs[k];
    if (!p || (p.state !== "inflight" && p.at < h.ended_ms))
      pairs[k] = {from: h.from, to: h.to, state: h.result === "done" ? "done" : "failed",
        at: h.ended_ms, why: h.reason, vid: h.vehicle_id};
  }
  for (const h of doc.handovers.in_flight)
    pairs[h.from + ">" + h.to] = {from: h.from, to: h.to, state: "inflight",
      at: h.started_ms, vid: h.vehicle_id, why: "waiting in " + h.state};
  for (const k in pairs) {
    const p = pairs[k], a = where[p.from], b = where[p.to];
    if (!a || !b) continue;
    const dx = b[0] - a[0], dy = b[1] - a[1], d = Math.hypot(dx, dy) || 1;
    const nx = -dy / d * 10, ny = dx / d * 10;       // A->B and B->A apart
    const x1 = a[0] + dx * 0.2 + nx, y1 = a[1] + dy * 0.2 + ny;
    const x2 = a[0] + dx * 0.8 + nx, y2 = a[1] + dy * 0.8 + ny;
    const ln = el("line", {x1: x1, y1: y1, x2: x2, y2: y2, "class": "handover " + p.state,
      "data-from": p.from, "data-to": p.to, "data-state": p.state,
      "marker-end": "url(#arrow-" + p.state + ")"}, g);
    title(ln, "handover " + p.from + " -> " + p.to + " (vehicle " + p.vid + "): " +
      (p.state === "inflight" ? "in flight, " + p.why : p.state) +
      (p.state === "failed" && p.why ? ": " + p.why : ""));
  }
}

function drawVehicles(doc, proj) {
  const gt = clear("traces"), gv = clear("vehicles"), gx = clear("crossings");
  for (const v of doc.vehicles) {
    if (v.trace && v.trace.length > 1)
      el("polyline", {points: v.trace.map(p => proj(p[0], p[1]).join(",")).join(" "),
        "class": "trace", "data-vid": v.vehicle_id}, gt);
    for (const c of v.crossings || []) {
      const q = proj(c.lat, c.lon);
      const gap = c.gap_ms === null ? "gap not measured" : "gap " + c.gap_ms.toFixed(1) + " ms";
      const d = el("rect", {x: q[0] - 4, y: q[1] - 4, width: 8, height: 8,
        transform: "rotate(45 " + q[0] + " " + q[1] + ")", "class": "crossing",
        "data-vid": v.vehicle_id}, gx);
      title(d, v.vehicle_id + " crossed " + c.from + " -> " + c.to + ": " + gap);
      if (c.gap_ms !== null)
        el("text", {x: q[0] + 7, y: q[1] - 6, "class": "crossing-label"}, gx,
          c.gap_ms.toFixed(0) + " ms");
    }
    if (v.lat === undefined) continue;
    const p = proj(v.lat, v.lon);
    const m = el("circle", {cx: p[0], cy: p[1], r: 7, "class": "vehicle " + v.state,
      "data-vid": v.vehicle_id, "data-state": v.state}, gv);
    title(m, v.vehicle_id + ": " + v.state.replace("_", " ") + (v.region ? " with " + v.region : "") +
      ", " + v.telemetry_acked + " records acknowledged");
  }
}

function drawPanel(doc) {
  const c = doc.counters, t = document.getElementById("counters");
  while (t.firstChild) t.removeChild(t.firstChild);
  const rows = [["vehicles", c.vehicles], ["sessions", c.sessions],
    ["handovers ok", c.handovers_ok], ["handovers failed", c.handovers_failed],
    ["handovers declined", c.handovers_declined]];
  for (const r in c.refusals) rows.push(["refused: " + r, c.refusals[r]]);
  for (const r of rows) {
    const tr = document.createElement("tr");
    const a = document.createElement("td"), b = document.createElement("td");
    a.textContent = r[0]; b.textContent = r[1]; b.className = "n";
    tr.appendChild(a); tr.appendChild(b); t.appendChild(tr);
  }
  const ul = document.getElementById("daemons");
  while (ul.firstChild) ul.removeChild(ul.firstChild);
  for (const d of doc.daemons) {
    const li = document.createElement("li");
    li.className = d.up ? "up" : "down";
    li.dataset.name = d.name;
    li.textContent = d.name + (d.up ? " up" : " down (" + d.error + ")");
    ul.appendChild(li);
  }
  document.getElementById("clock").textContent =
    new Date(doc.now_ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function draw(doc) {
  const proj = projection(doc), where = {};
  drawRegions(doc, proj, where);
  drawLinks(doc, where);
  drawVehicles(doc, proj);
  drawHandovers(doc, where);
  drawPanel(doc);
}

async function poll() {
  const err = document.getElementById("error");
  try {
    const r = await fetch("/map.json", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    draw(await r.json());
    err.hidden = true;
    document.body.dataset.polls = String(++polls);
  } catch (e) {
    err.hidden = false;
    err.textContent = "map server: " + e.message;
  }
  setTimeout(poll, 1000);
}

poll();
