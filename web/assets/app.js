// app.js - the dashboard's shell: hash routes (#/clients ...), the layout,
// login and the forced password change. Each page is a module exporting
// {title, render(main) -> cleanup?}; a page's timers end in its cleanup.
import { h, clear, toast, closeDrawer, showError } from "./dom.js";
import { api, session, setAuthLost } from "./api.js";
import overview from "./p_overview.js";
import cluster from "./p_cluster.js";
import clients from "./p_clients.js";
import { subscriptions, topics } from "./p_subs.js";
import retained from "./p_retained.js";
import publish from "./p_publish.js";
import alarms from "./p_alarms.js";
import settings from "./p_settings.js";
import wsclient from "./p_ws.js";

const PAGES = { overview, cluster, clients, subscriptions, topics, retained, publish, alarms, settings, websocket: wsclient };
const app = document.getElementById("app");
let cleanup = null;

function route() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0];
  return name || "overview";
}

function leave() {
  closeDrawer();
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } }
  cleanup = null;
}

async function render() {
  leave();
  const s = session.load();
  if (!s || !s.token) return loginPage();
  if (s.mustChange) return changePage(s);
  const name = route();
  const page = PAGES[name];
  if (!page) { location.hash = "#/overview"; return; }
  const main = h("main", { id: "page", "data-page": name });
  clear(app).append(layout(name, s), main);
  main.append(h("h1", {}, page.title));
  try {
    cleanup = await page.render(main) || null;
  } catch (e) {
    showError(main, e);
  }
  main.dataset.ready = "1"; // the page's first load is done (the browser test waits for it)
}

function layout(active, s) {
  const nav = Object.entries(PAGES).map(([k, p]) =>
    h("a", { href: "#/" + k, class: k === active ? "active" : "", "data-nav": k }, p.title));
  return h("nav", { class: "side" },
    h("div", { class: "brand" }, h("img", { src: "/assets/favicon.svg", alt: "" }), "hamqtt"),
    nav,
    h("div", { class: "who" },
      h("span", {}, s.username, h("small", {}, s.role)),
      h("button", { class: "ghost", id: "logout", onclick: logout }, "Log out")));
}

async function logout() {
  try { await api("POST", "/logout", {}); } catch (e) { /* the token may be gone already */ }
  session.clear();
  location.hash = "#/overview";
  render();
}

setAuthLost(why => {
  const s = session.load();
  if (why === "change" && s) { s.mustChange = true; session.save(s); }
  else { session.clear(); toast("Your session ended: log in again.", "info"); }
  render();
});

function card(title, ...kids) {
  return h("div", { class: "login" }, h("div", { class: "card" },
    h("div", { class: "brand" }, h("img", { src: "/assets/favicon.svg", alt: "" }), "hamqtt"), h("h1", {}, title), kids));
}

async function login(username, password) {
  const r = await api("POST", "/login", { username, password });
  const s = { token: r.token, username, role: r.role || "administrator", mustChange: !!r.password_change_required, version: r.version };
  session.save(s);
  return s;
}

function loginPage() {
  const user = h("input", { name: "username", autocomplete: "username", required: true, value: "admin" });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const msg = h("p", { class: "err" });
  const form = h("form", { id: "login", onsubmit: async e => {
    e.preventDefault();
    msg.textContent = "";
    try {
      await login(user.value, pass.value);
      render();
    } catch (err) {
      msg.textContent = err.status === 401 ? "Wrong username or password." : err.message;
    }
  } }, h("label", {}, h("span", {}, "Username"), user), h("label", {}, h("span", {}, "Password"), pass),
  h("button", { type: "submit", class: "primary" }, "Log in"), msg);
  clear(app).append(card("Log in", form,
    h("p", { class: "hint" }, "A fresh node has admin / public; you will be asked to change it.")));
  pass.focus();
}

function changePage(s) {
  const old = h("input", { name: "old_pwd", type: "password", autocomplete: "current-password", required: true });
  const pw1 = h("input", { name: "new_pwd", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const pw2 = h("input", { name: "new_pwd2", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const msg = h("p", { class: "err" });
  const form = h("form", { id: "change-pwd", onsubmit: async e => {
    e.preventDefault();
    msg.textContent = "";
    if (pw1.value !== pw2.value) { msg.textContent = "The new passwords differ."; return; }
    try {
      await api("POST", "/users/" + encodeURIComponent(s.username) + "/change_pwd", { old_pwd: old.value, new_pwd: pw1.value });
      // a password change ends every token issued before it: log in again
      await login(s.username, pw1.value);
      toast("Password changed.", "info");
      render();
    } catch (err) {
      msg.textContent = err.message;
    }
  } }, h("label", {}, h("span", {}, "Current password"), old), h("label", {}, h("span", {}, "New password"), pw1),
  h("label", {}, h("span", {}, "New password again"), pw2), h("button", { type: "submit", class: "primary" }, "Change password"),
  h("button", { type: "button", class: "ghost", onclick: () => { session.clear(); render(); } }, "Cancel"), msg);
  clear(app).append(card("Change the default password", h("p", { class: "hint" },
    "User " + s.username + " must choose a new password before using the dashboard."), form));
  old.focus();
}

window.addEventListener("hashchange", render);
window.addEventListener("unhandledrejection", e => { toast(e.reason && e.reason.message || String(e.reason)); e.preventDefault(); });
render();
