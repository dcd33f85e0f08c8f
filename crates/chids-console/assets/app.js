// chids console. Every piece of alert data reaches the page as text
// (textContent, attribute setters, SVG elements): alerts carry names an
// attacker chose (paths, process names), so nothing here parses markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 1000;
const TIME_SPANS = { "": 0, "5m": 5 * 60e3, "1h": 3600e3, "24h": 24 * 3600e3 };

// el("td", {class: "x"}, "text", child): a new element; strings become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function label(x, y, text, anchor) {
  const t = svg("text", { x, y, "text-anchor": anchor });
  t.textContent = text;
  return t;
}

// Scores run from below 1 to tens of thousands: a log scale from 0.1 to
// at least 10 keeps the threshold (1) and the largest score both in view.
function logScale(scores, H, P) {
  const known = scores.filter((x) => typeof x === "number" && x > 0);
  const lo = -1, hi = Math.max(1, ...known.map((x) => Math.log10(x)));
  return (sc) => {
    const v = Math.min(Math.max(Math.log10(typeof sc === "number" && sc > 0 ? sc : 1), lo), hi);
    return H - P - ((v - lo) / (hi - lo)) * (H - 2 * P);
  };
}

function fmtTime(ns) {
  if (!ns) return "-";
  return new Date(ns / 1e6).toISOString().replace("T", " ").slice(0, 19);
}

function fmtNum(x, digits) {
  if (typeof x !== "number") return "-";
  return Math.abs(x) >= 1000 ? x.toFixed(0) : x.toPrecision(digits || 3);
}

async function getJson(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

const view = () => document.getElementById("view");
let timer = null;
let generation = 0; // a newer view ends the older one's polling

function route() {
  clearTimeout(timer);
  generation += 1;
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  document.getElementById("nav-timeline").classList.toggle("active", path === "/");
  document.getElementById("nav-workloads").classList.toggle("active", path === "/workloads");
  const m = path.match(/^\/alert\/(\d+)$/);
  if (m) return alertPage(m[1], generation);
  if (path === "/workloads") return workloadsPage(generation);
  return timelinePage(params, generation);
}

function poll(gen, fn, ms) {
  if (gen !== generation) return;
  timer = setTimeout(async () => {
    if (gen !== generation) return;
    try { await fn(); } catch (e) { showSource(false, String(e)); }
    poll(gen, fn, ms);
  }, ms);
}

function showSource(ok, note) {
  const s = document.getElementById("source");
  s.textContent = note || "";
  s.className = "source " + (ok ? "ok" : "bad");
}

// ---- timeline ----

const FILTERS = ["node", "workload", "container", "kind", "time"];

function filterQuery(params, after) {
  const q = new URLSearchParams();
  for (const f of ["node", "workload", "container", "kind"]) {
    if (params.get(f)) q.set(f, params.get(f));
  }
  const span = TIME_SPANS[params.get("time") || ""];
  if (span) q.set("since_ns", (BigInt(Date.now() - span) * 1000000n).toString());
  if (after) q.set("after", String(after));
  return q.toString();
}

function filterBar(params, facets) {
  const bar = el("form", { class: "filters", id: "filters" });
  const menus = {
    node: facets.nodes, workload: facets.workloads, container: facets.containers,
    kind: facets.kinds, time: ["5m", "1h", "24h"],
  };
  for (const f of FILTERS) {
    const sel = el("select", { id: "f-" + f, name: f });
    sel.append(el("option", { value: "" }, f === "time" ? "any time" : "any " + f));
    const values = new Set(menus[f] || []);
    if (params.get(f)) values.add(params.get(f));
    for (const v of values) sel.append(el("option", { value: v }, f === "time" ? "last " + v : v));
    sel.value = params.get(f) || "";
    sel.addEventListener("change", () => {
      const q = new URLSearchParams();
      for (const g of FILTERS) {
        const v = document.getElementById("f-" + g).value;
        if (v) q.set(g, v);
      }
      location.hash = "#/?" + q.toString();
    });
    bar.append(el("label", {}, sel));
  }
  return bar;
}

function scoreCell(a) {
  const td = el("td", { class: "score" }, fmtNum(a.score));
  if (typeof a.score === "number" && a.score >= 1) td.classList.add("alarm");
  return td;
}

function alertRow(a) {
  const tr = el("tr", { class: "alert-row kind-" + a.kind, "data-seq": a.seq });
  const link = el("a", { href: "#/alert/" + a.seq }, fmtTime(a.time_ns));
  tr.append(
    el("td", {}, link), el("td", { class: "kind" }, a.kind), el("td", {}, a.node),
    el("td", { class: "workload" }, a.workload), el("td", { class: "container" }, a.container),
    scoreCell(a), el("td", { class: "summary" }, a.summary),
  );
  tr.addEventListener("click", (e) => { if (e.target.tagName !== "A") location.hash = "#/alert/" + a.seq; });
  return tr;
}

// A strip of dots, one per alert, time across, score up (capped at 5x).
function timelineChart(all) {
  const W = 900, H = 120, P = 24;
  const alerts = all.filter((a) => a.time_ns > 0);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", id: "timeline-chart", role: "img" });
  if (!alerts.length) return s;
  const ts = alerts.map((a) => a.time_ns / 1e6);
  const t0 = Math.min(...ts), t1 = Math.max(...ts), span = Math.max(t1 - t0, 1000);
  const y = logScale(alerts.map((a) => a.score), H, P);
  s.append(svg("line", { x1: P, x2: W - P, y1: y(1), y2: y(1), class: "threshold" }));
  s.append(label(W - P, y(1) - 4, "threshold (score 1); dots: alerts, score up (log scale)", "end"));
  for (const a of alerts) {
    const x = P + ((a.time_ns / 1e6 - t0) / span) * (W - 2 * P);
    const c = svg("circle", { cx: x, cy: y(a.score), r: 5, class: "dot kind-" + a.kind });
    const title = svg("title");
    title.textContent = `${fmtTime(a.time_ns)} ${a.container}: ${a.summary}`;
    c.append(title);
    c.addEventListener("click", () => { location.hash = "#/alert/" + a.seq; });
    s.append(c);
  }
  s.append(label(P, H - 4, fmtTime(t0 * 1e6), "start"), label(W - P, H - 4, fmtTime(t1 * 1e6), "end"));
  return s;
}

async function timelinePage(params, gen) {
  let alerts = [];
  let last = 0;
  const render = (data) => {
    const table = el("table", { class: "alerts", id: "alerts" },
      el("thead", {}, el("tr", {}, ...["time (UTC)", "kind", "node", "workload", "container", "score", "reasons"].map((h) => el("th", {}, h)))));
    const body = el("tbody");
    for (const a of alerts) body.append(alertRow(a));
    table.append(body);
    const counts = el("p", { class: "counts", id: "counts" },
      `${alerts.length} alert(s) shown; ${data.held} held` + (data.evicted ? `, ${data.evicted} older dropped` : "") +
      (data.refused ? `, ${data.refused} unreadable message(s) skipped` : ""));
    view().replaceChildren(filterBar(params, data.facets), timelineChart(alerts), counts, table);
  };
  const refresh = async () => {
    const data = await getJson("/api/alerts?" + filterQuery(params, last));
    if (gen !== generation) return;
    showSource(data.source.connected, data.source.note);
    if (data.alerts.length || !last) {
      alerts = data.alerts.concat(alerts).slice(0, 1000);
      last = Math.max(last, data.last_seq);
      // A time window moves: drop what slid out of it.
      const span = TIME_SPANS[params.get("time") || ""];
      if (span) alerts = alerts.filter((a) => a.time_ns / 1e6 >= Date.now() - span);
      render(data);
    } else {
      last = Math.max(last, data.last_seq);
    }
  };
  await refresh().catch((e) => showSource(false, String(e)));
  poll(gen, refresh, POLL_MS);
}

// ---- one alert ----

function fact(name, value) {
  return [el("dt", {}, name), el("dd", { class: "fact-" + name.replace(/\W+/g, "-") }, value || "-")];
}

function scoreBlock(a) {
  const box = el("div", { class: "scorebox", id: "score" });
  if (typeof a.score !== "number") {
    box.append("no score");
    return box;
  }
  const pct = Math.min(a.score / 3, 1) * 100;
  const bar = el("div", { class: "bar" }, el("div", { class: "fill" + (a.score >= 1 ? " alarm" : "") }));
  bar.firstChild.style.width = pct + "%";
  const mark = el("div", { class: "mark" });
  mark.style.left = (100 / 3) + "%";
  bar.append(mark);
  box.append(
    el("p", {}, `score ${fmtNum(a.score)} (1 or more is an alarm)`,
      typeof a.error === "number" ? ` = error ${fmtNum(a.error, 4)} / threshold ${fmtNum(a.threshold, 4)}` : ""),
    bar,
  );
  return box;
}

function reasonsTable(a) {
  const t = el("table", { class: "reasons", id: "reasons" },
    el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "kind"), el("th", {}, "what"), el("th", {}, "detail"))));
  const body = el("tbody");
  a.reasons.forEach((r, i) => body.append(el("tr", { class: "reason reason-" + r.kind },
    el("td", {}, i + 1), el("td", {}, r.kind), el("td", { class: "what" }, r.what), el("td", {}, r.detail))));
  if (!a.reasons.length) body.append(el("tr", {}, el("td", { colspan: 4 }, "the alert names no reason")));
  t.append(body);
  return t;
}

// Score over time of the points the server chose, threshold at 1.
function windowChart(chart) {
  const W = 700, H = 160, P = 28;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", id: "window-chart", role: "img" });
  const pts = chart.points || [];
  if (pts.length) {
    const ts = pts.map((p) => p.t / 1e6);
    const t0 = Math.min(...ts), span = Math.max(Math.max(...ts) - t0, 1000);
    const x = (t) => P + ((t / 1e6 - t0) / span) * (W - 2 * P);
    const y = logScale(pts.map((p) => p.score), H, P);
    s.append(svg("line", { x1: P, x2: W - P, y1: y(1), y2: y(1), class: "threshold" }));
    s.append(label(W - P, y(1) - 4, "threshold (score 1); score up, log scale", "end"));
    s.append(label(P, H - 6, fmtTime(t0 * 1e6), "start"), label(W - P, H - 6, fmtTime((t0 + span) * 1e6), "end"));
    s.append(svg("polyline", { points: pts.map((p) => `${x(p.t)},${y(p.score)}`).join(" "), class: "series" }));
    for (const p of pts) {
      const c = svg("circle", { cx: x(p.t), cy: y(p.score), r: p.current ? 6 : 4, class: p.current ? "dot current" : "dot" });
      const title = svg("title");
      title.textContent = `${fmtTime(p.t)} score ${fmtNum(p.score)}`;
      c.append(title);
      if (p.seq !== undefined && !p.current) c.addEventListener("click", () => { location.hash = "#/alert/" + p.seq; });
      s.append(c);
    }
  }
  return el("figure", {}, s, el("figcaption", { id: "chart-note" }, chart.note));
}

// ---- accepting an alert as normal ----

// What accepting a frequency-driven alert does (chids_detect::accept).
const RISING_NOTE = "This alert is (also) about frequency: counts rose above their training maxima. " +
  "Accepting raises the model's max_freq so that this window's frequency index is no larger than the " +
  "busiest training window's, and raises the training maxima of the counts listed to what this window " +
  "saw. That is an allowance for the whole workload, not for this one window: a later burst up to these " +
  "counts will score as the busiest normal window did. The autoencoder is not retrained.";

function reasonLine(r) {
  return el("li", {}, el("span", { class: "reason-kind" }, r.kind), " ", el("span", { class: "what" }, r.what),
    r.detail ? ": " + r.detail : "");
}

// The confirmation: what goes into which model, and who says so.
function acceptDialog(a, target, done) {
  const who = el("input", { id: "accept-who", name: "who", required: "", maxlength: 200, autocomplete: "off" });
  const cancel = el("button", { id: "accept-cancel", type: "button" }, "Cancel");
  const confirm = el("button", { id: "accept-confirm", type: "submit", class: "accept" }, "Accept as normal");
  const rising = a.reasons.some((r) => r.kind === "rising");
  const form = el("form", { id: "accept-form" },
    el("h3", {}, "Accept this alert as normal?"),
    el("p", {}, "Workload ", el("strong", { id: "accept-workload" }, a.workload || "-"),
      ": what alert ", el("code", {}, a.id || "#" + a.seq), " names is folded into ", el("span", { id: "accept-target" }, target),
      ", and the model records who accepted it, when, and this alert's id."),
    el("p", {}, "Folded in as normal:"),
    el("ul", { id: "accept-reasons" }, ...a.reasons.map(reasonLine)),
    a.reasons.length ? null : el("p", {}, "The alert names no reason: only the audit entry is added."),
    a.more_reasons ? el("p", { class: "bad" }, `${a.more_reasons} more unseen name(s) were counted but not listed by the agent: they cannot be folded in and stay unseen.`) : null,
    rising ? el("p", { id: "accept-rising", class: "note" }, RISING_NOTE) : null,
    el("label", {}, "Your name, for the audit entry (required) ", who),
    el("p", { class: "buttons" }, cancel, " ", confirm));
  const dialog = el("dialog", { id: "accept-dialog" }, form);
  cancel.addEventListener("click", () => { dialog.close(); dialog.remove(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!who.value.trim()) return;
    confirm.disabled = true;
    const r = await fetch("/api/alerts/" + a.seq + "/accept", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ who: who.value.trim(), confirmed: true }),
    }).catch((err) => ({ ok: false, status: String(err), json: async () => ({}) }));
    const body = await r.json().catch(() => ({}));
    dialog.close();
    dialog.remove();
    done(r.ok ? body.ok : null, body.error || "HTTP " + r.status);
  });
  return dialog;
}

// The audit entry the model now holds for this alert.
function auditList(audit) {
  const dl = el("dl", { class: "facts", id: "accept-audit" });
  const add = (k, v) => { if (v !== undefined && v !== null && v !== "") dl.append(el("dt", {}, k), el("dd", { class: "audit-" + k.replace(/\W+/g, "-") }, v)); };
  add("alert id", audit.alert_id);
  add("accepted by", audit.accepted_by);
  add("accepted at", fmtTime(audit.accepted_at_ns) + " UTC");
  add("syscalls added", (audit.syscalls_added || []).join(", "));
  add("arguments added", (audit.args_added || []).join(", "));
  if (audit.max_freq_raised) add("max_freq", audit.max_freq_raised.join(" → "));
  add("maxima raised", (audit.maxima_raised || []).map((m) => `${m.what} ${m.training_max} → ${m.count}`).join(", "));
  if (typeof audit.score_after === "number") add("score after", fmtNum(audit.score_after) + (audit.score_after < 1 ? " (no longer alarms)" : " (still alarms)"));
  return dl;
}

function acceptResult(ok, error) {
  if (!ok) return el("div", { id: "accept-result", class: "bad" }, "Not accepted: " + error);
  return el("div", { id: "accept-result", class: "ok-box" },
    el("p", { class: "ok" }, "Accepted: " + ok.summary),
    el("p", {}, "Model: ", el("span", { id: "accept-model" }, ok.model)),
    ok.audit ? el("h4", {}, "Audit entry in the model") : null,
    ok.audit ? auditList(ok.audit) : null,
    ok.notes.length ? el("ul", { id: "accept-notes" }, ...ok.notes.map((n) => el("li", {}, n))) : null);
}

function acceptButton(a, target) {
  const b = el("button", { id: "accept", type: "button" }, "Accept as normal…");
  b.addEventListener("click", () => {
    const dialog = acceptDialog(a, target, (ok, error) => {
      const shown = acceptResult(ok, error);
      if (ok) b.replaceWith(shown); else { document.getElementById("accept-result")?.remove(); b.after(shown); }
      shown.scrollIntoView({ block: "center" });
    });
    document.body.append(dialog);
    dialog.showModal();
    document.getElementById("accept-who").focus();
  });
  return b;
}

async function alertPage(seq, gen) {
  let data;
  try {
    data = await getJson("/api/alerts/" + seq);
  } catch (e) {
    view().replaceChildren(el("p", { class: "bad" }, "alert " + seq + ": " + e.message), el("a", { href: "#/" }, "back to the alerts"));
    return;
  }
  if (gen !== generation) return;
  const a = data.alert;
  const facts = el("dl", { class: "facts" },
    ...fact("id", a.id), ...fact("kind", a.kind), ...fact("time", fmtTime(a.time_ns) + " UTC"),
    ...fact("node", a.node), ...fact("workload", a.workload), ...fact("container", a.container),
    ...fact("container id", a.container_id), ...fact("image", a.image),
    ...fact("processes", a.processes.join(", ")));
  const parts = [
    el("p", {}, el("a", { href: "#/" }, "← alerts")),
    el("h2", { id: "alert-title" }, `${a.kind} in ${a.container || "?"}`),
    facts, scoreBlock(a),
    el("h3", {}, "Reasons, most telling first"), reasonsTable(a),
    a.more_reasons ? el("p", {}, `${a.more_reasons} more unseen name(s) counted but not listed by the agent`) : null,
    el("h3", {}, "Around it"), windowChart(data.chart),
    data.can_accept && a.kind === "anomaly" ? acceptButton(a, data.accept_target) : null,
    el("details", {}, el("summary", {}, "the alert as sent"), el("pre", { id: "raw" }, JSON.stringify(data.raw, null, 2))),
  ];
  view().replaceChildren(...parts.filter((p) => p));
}

// ---- workloads ----

function completenessCell(r) {
  const td = el("td", { class: "completeness" });
  if (typeof r.completeness === "number") {
    const bar = el("div", { class: "bar small" }, el("div", { class: "fill" }));
    bar.firstChild.style.width = Math.round(r.completeness * 100) + "%";
    td.append(bar, Math.round(r.completeness * 100) + "% ");
  }
  td.append(r.completeness_note || "");
  return td;
}

async function workloadsPage(gen) {
  const refresh = async () => {
    const data = await getJson("/api/workloads");
    if (gen !== generation) return;
    const head = ["node", "workload", "state", "containers", "windows", "alerts", "baseline", "threshold", "model version", "model origin"];
    const body = el("tbody");
    for (const r of data.rows) {
      body.append(el("tr", { class: "workload-row state-" + r.state + (r.stale ? " stale" : "") },
        el("td", {}, r.node), el("td", { class: "workload" }, r.workload), el("td", { class: "state" }, r.state + (r.stale ? " (agent stopped)" : "")),
        el("td", {}, r.containers), el("td", {}, r.windows), el("td", {}, r.alerts), completenessCell(r),
        el("td", {}, fmtNum(r.threshold, 4) + (r.threshold_source ? " (" + r.threshold_source + ")" : "")),
        el("td", {}, r.model_version || "-"), el("td", {}, r.model_origin || "-")));
    }
    if (!data.rows.length) body.append(el("tr", {}, el("td", { colspan: head.length }, "no workloads: give `chids ui --state-dir DIR` for each agent")));
    const errors = el("ul", { class: "errors" }, ...data.errors.map((e) => el("li", {}, e)));
    view().replaceChildren(el("h2", {}, "Workloads"),
      el("table", { class: "workloads", id: "workloads" }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))), body), errors);
  };
  await refresh().catch((e) => view().replaceChildren(el("p", { class: "bad" }, String(e))));
  poll(gen, refresh, 2 * POLL_MS);
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
