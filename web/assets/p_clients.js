// p_clients.js - clients of the whole cluster: search, page, a detail drawer
// (GET /clients/{id} and its subscriptions), kick (DELETE /clients/{id}).
import { h, drawer, closeDrawer, details, table, toast, fmtTime, showError } from "./dom.js";
import { get, del, isAdmin } from "./api.js";
import { pagedList } from "./list.js";

const path = id => "/clients/" + encodeURIComponent(id);

async function kick(id, list) {
  if (!confirm("Disconnect client " + id + "?")) return;
  try {
    await del(path(id));
    toast("Client " + id + " kicked.", "info");
    closeDrawer();
    list.reload();
  } catch (e) {
    toast(e.message);
  }
}

async function show(c, list) {
  const body = h("div", {});
  drawer("Client " + c.clientid, body);
  try {
    const [d, subs] = await Promise.all([get(path(c.clientid)), get(path(c.clientid) + "/subscriptions").catch(() => [])]);
    body.append(
      isAdmin() ? h("button", { class: "danger", "data-action": "kick", onclick: () => kick(c.clientid, list) }, "Kick") : null,
      details(d), h("h3", {}, "Subscriptions"),
      table([{ title: "topic", get: s => s.topic }, { title: "qos", get: s => s.qos }], Array.isArray(subs) ? subs : subs.data || []));
  } catch (e) {
    showError(body, e);
  }
}

export default {
  title: "Clients",
  render(main) {
    const admin = isAdmin();
    const list = pagedList(main, {
      path: "/clients",
      filters: [{ name: "like_clientid", label: "client id contains" }, { name: "like_username", label: "username contains" },
        { name: "conn_state", label: "state", options: ["", "connected", "disconnected"] }],
      columns: [
        { title: "client id", get: c => h("a", { href: "#/clients", class: "cid", onclick: e => { e.preventDefault(); show(c, list); } }, c.clientid) },
        { title: "username", get: c => c.username ?? "–" },
        { title: "node", get: c => c.node || "–" },
        { title: "address", get: c => (c.ip_address || "–") + (c.port ? ":" + c.port : "") },
        { title: "MQTT", get: c => c.proto_ver ?? "–" },
        { title: "state", get: c => h("span", { class: "badge " + (c.connected ? "running" : "stopped") }, c.conn_state || (c.connected ? "connected" : "disconnected")) },
        { title: "connected at", get: c => fmtTime(c.connected_at) },
        { title: "subs", get: c => c.subscriptions_cnt ?? "–" },
        { title: "", get: c => admin ? h("button", { class: "danger small", "data-action": "kick", onclick: () => kick(c.clientid, list) }, "Kick") : "" },
      ],
      onRow: c => show(c, list),
    });
  },
};
