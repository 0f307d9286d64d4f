// api.js - the management API (/api/v5) with the session's bearer token.
// A token lives in sessionStorage: gone when the tab closes, never in a cookie
// (so no CSRF: a request without the header is refused by the node).

const KEY = "hamqtt.session";

export const session = {
  load() {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch { return null; }
  },
  save(s) { sessionStorage.setItem(KEY, JSON.stringify(s)); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || "HTTP " + status);
    this.status = status;
    this.code = code;
  }
}

let onAuthLost = () => {};
export function setAuthLost(fn) { onAuthLost = fn; }

export async function api(method, path, body) {
  const s = session.load();
  const headers = { Accept: "application/json" };
  if (s && s.token) headers.Authorization = "Bearer " + s.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    // credentials "omit": a 401 carries WWW-Authenticate: Basic, and with the
    // default mode the browser would pop its own password dialog over the page
    r = await fetch("/api/v5" + path, { method, headers, credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "NETWORK", "the node does not answer (" + e.message + ")");
  }
  let doc = null;
  const text = await r.text();
  if (text) {
    try { doc = JSON.parse(text); } catch { doc = text; }
  }
  if (r.ok) return doc;
  const code = doc && doc.code, msg = doc && doc.message;
  if (r.status === 401 && path !== "/login") onAuthLost("expired");
  if (r.status === 403 && code === "PASSWORD_CHANGE_REQUIRED") onAuthLost("change");
  throw new ApiError(r.status, code, msg);
}

export const get = p => api("GET", p);
export const post = (p, b) => api("POST", p, b === undefined ? {} : b);
export const put = (p, b) => api("PUT", p, b);
export const del = p => api("DELETE", p);

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  const s = u.toString();
  return s ? "?" + s : "";
}

export function isAdmin() {
  const s = session.load();
  return !!s && s.role === "administrator";
}
