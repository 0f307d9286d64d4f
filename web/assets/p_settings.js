// p_settings.js - log level (/log_level), dashboard users (/users) and API
// keys (/api_key). Viewers see them read-only.
import { h, clear, field, table, toast, fmtTime, showError } from "./dom.js";
import { get, put, post, del, isAdmin, session } from "./api.js";

const LEVELS = ["debug", "info", "notice", "warning", "error", "none"]; // log.level's values

async function logLevel(box, admin) {
  const r = await get("/log_level");
  const levels = LEVELS.includes(r.level) ? LEVELS : [r.level, ...LEVELS];
  const sel = h("select", { name: "level", id: "log-level", disabled: !admin }, levels.map(l => h("option", { value: l, selected: l === r.level }, l)));
  box.append(h("form", { class: "inline", onsubmit: async e => {
    e.preventDefault();
    try { const x = await put("/log_level", { level: sel.value }); toast("Log level: " + (x && x.level || sel.value), "info"); } catch (err) { toast(err.message); }
  } }, h("span", {}, "Log level of this node: "), sel, admin ? h("button", { type: "submit", "data-action": "set-level" }, "Apply") : null));
}

async function users(box, admin) {
  const me = session.load().username;
  const list = await get("/users");
  const rows = Array.isArray(list) ? list : list.data || [];
  const reload = () => { clear(box); section(box, () => users(box, admin)); };
  box.append(table([
    { title: "user", get: u => u.username },
    { title: "role", get: u => u.role },
    { title: "description", get: u => u.description || "" },
    { title: "", get: u => admin && u.username !== me ? h("button", { class: "danger small", "data-action": "delete-user", onclick: async () => {
      if (!confirm("Delete user " + u.username + "?")) return;
      try { await del("/users/" + encodeURIComponent(u.username)); toast("User deleted.", "info"); reload(); } catch (e) { toast(e.message); }
    } }, "Delete") : "" },
  ], rows));
  if (!admin) return;
  const name = field("Username", { name: "username", required: true });
  const pw = field("Password", { name: "password", type: "password", required: true, autocomplete: "new-password" });
  const role = field("Role", { tag: "select", name: "role", options: ["viewer", "administrator"] });
  box.append(h("form", { class: "inline", id: "add-user", onsubmit: async e => {
    e.preventDefault();
    try {
      await post("/users", { username: name.input.value, password: pw.input.value, role: role.input.value });
      toast("User " + name.input.value + " added.", "info"); reload();
    } catch (err) { toast(err.message); }
  } }, name, pw, role, h("button", { type: "submit" }, "Add user")));
}

async function keys(box, admin) {
  const list = await get("/api_key");
  const rows = Array.isArray(list) ? list : list.data || [];
  const reload = () => { clear(box); section(box, () => keys(box, admin)); };
  box.append(table([
    { title: "name", get: k => k.name },
    { title: "key", get: k => k.api_key },
    { title: "enabled", get: k => String(k.enable) },
    { title: "expires", get: k => k.expired_at ? fmtTime(k.expired_at) : "never" },
    { title: "description", get: k => k.desc || "" },
    { title: "", get: k => admin ? h("span", {},
      h("button", { class: "small", onclick: async () => {
        try { await put("/api_key/" + encodeURIComponent(k.name), { enable: !k.enable }); reload(); } catch (e) { toast(e.message); }
      } }, k.enable ? "Disable" : "Enable"),
      h("button", { class: "danger small", "data-action": "delete-key", onclick: async () => {
        if (!confirm("Delete API key " + k.name + "?")) return;
        try { await del("/api_key/" + encodeURIComponent(k.name)); toast("API key deleted.", "info"); reload(); } catch (e) { toast(e.message); }
      } }, "Delete")) : "" },
  ], rows));
  if (!admin) return;
  const name = field("Name", { name: "name", required: true });
  const desc = field("Description", { name: "desc" });
  const secret = h("p", { class: "secret", id: "key-secret" });
  box.append(h("form", { class: "inline", id: "add-key", onsubmit: async e => {
    e.preventDefault();
    try {
      const k = await post("/api_key", { name: name.input.value, desc: desc.input.value, enable: true });
      reload();
      box.append(h("p", { class: "secret" }, "Key " + k.api_key + ", secret (shown once): ", h("code", {}, k.api_secret)));
    } catch (err) { toast(err.message); }
  } }, name, desc, h("button", { type: "submit" }, "Create API key")), secret);
}

// run a section's loader; an error is shown in the section, not thrown
async function section(box, fn) {
  try { await fn(); } catch (e) { showError(box, e); }
}

export default {
  title: "Settings",
  async render(main) {
    const admin = isAdmin();
    const lvl = h("section", { id: "log" }), us = h("section", { id: "users" }), ks = h("section", { id: "keys" });
    main.append(h("h2", {}, "Logging"), lvl, h("h2", {}, "Dashboard users"), us, h("h2", {}, "API keys"), ks);
    await Promise.all([section(lvl, () => logLevel(lvl, admin)), section(us, () => users(us, admin)), section(ks, () => keys(ks, admin))]);
  },
};
