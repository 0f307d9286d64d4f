// dom.js - building DOM without innerHTML: every string from the broker
// (client ids, topics, payloads) is untrusted and goes in as text.
import { ApiError } from "./api.js";

// h("button", {class: "x", onclick: fn, disabled: true}, "text", child, [more])
export function h(tag, attrs, ...kids) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "style") throw new Error("inline styles are refused by the CSP: use a class");
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k === undefined || k === null || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function toast(msg, kind = "error") {
  const box = document.getElementById("toasts");
  const t = h("div", { class: "toast " + kind, role: kind === "error" ? "alert" : "status" }, msg);
  box.append(t);
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
}

export function fmtBytes(n) {
  if (typeof n !== "number") return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

export function fmtDuration(ms) {
  if (typeof ms !== "number") return "–";
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (d ? d + "d " : "") + (d || hh ? hh + "h " : "") + m + "m " + s + "s";
}

export function fmtTime(v) {
  if (v === undefined || v === null || v === "") return "–";
  const d = typeof v === "number" ? new Date(v < 1e12 ? v * 1000 : v) : new Date(v);
  return isNaN(d) ? String(v) : d.toLocaleString();
}

export function fmt(v) {
  if (v === undefined || v === null) return "–";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// columns: [{title, get: row => string | Node}]
export function table(columns, rows, onRow) {
  const head = h("tr", {}, columns.map(c => h("th", {}, c.title)));
  const body = rows.map(r => {
    const tr = h("tr", onRow ? { class: "click", onclick: e => { if (!e.target.closest("button")) onRow(r); } } : {},
      columns.map(c => h("td", {}, c.get(r))));
    return tr;
  });
  if (!rows.length) body.push(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "nothing here")));
  return h("table", { class: "grid" }, h("thead", {}, head), h("tbody", {}, body));
}

// key/value details of an object
export function details(obj) {
  return h("dl", { class: "kv" }, Object.entries(obj || {}).map(([k, v]) => [h("dt", {}, k), h("dd", {}, fmt(v))]));
}

let openDrawer = null;
export function drawer(title, ...content) {
  closeDrawer();
  const d = h("aside", { class: "drawer", "data-testid": "drawer" },
    h("header", {}, h("h2", {}, title), h("button", { class: "ghost", onclick: closeDrawer, "aria-label": "close" }, "✕")),
    h("div", { class: "drawer-body" }, content));
  document.body.append(d);
  openDrawer = d;
  return d;
}
export function closeDrawer() {
  if (openDrawer) openDrawer.remove();
  openDrawer = null;
}

// A labelled input; returns the <label> with .input set
export function field(label, attrs) {
  const input = h(attrs && attrs.tag === "select" ? "select" : attrs && attrs.tag === "textarea" ? "textarea" : "input",
    Object.fromEntries(Object.entries(attrs || {}).filter(([k]) => k !== "tag" && k !== "options")),
    (attrs && attrs.options || []).map(o => h("option", { value: o }, o)));
  const l = h("label", {}, h("span", {}, label), input);
  l.input = input;
  return l;
}

// "previous / page N / next" for EMQX's {"meta": {page, limit, count, hasnext}}
export function pager(meta, go) {
  const page = meta && meta.page || 1;
  const count = meta && typeof meta.count === "number" ? meta.count : null;
  return h("div", { class: "pager" },
    h("button", { disabled: page <= 1, onclick: () => go(page - 1) }, "‹ previous"),
    h("span", {}, "page " + page + (count !== null ? " · " + count + " in all" : "")),
    h("button", { disabled: !(meta && meta.hasnext), onclick: () => go(page + 1) }, "next ›"));
}

// An error where the page's content would be: never a blank page.
export function showError(where, e) {
  if (e instanceof ApiError && (e.status === 401 || e.code === "PASSWORD_CHANGE_REQUIRED")) return;
  toast(e.message || String(e));
  where.append(h("p", { class: "unavailable" }, "Could not load: " + (e.message || e)));
}

