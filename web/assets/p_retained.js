// p_retained.js - retained messages: list, view one (payload), delete
import { h, drawer, closeDrawer, details, toast, fmtTime, showError } from "./dom.js";
import { get, del, isAdmin } from "./api.js";
import { pagedList } from "./list.js";

const path = t => "/mqtt/retainer/message/" + encodeURIComponent(t);

// base64 -> text when it is UTF-8, else hex
export function payloadText(b64) {
  if (typeof b64 !== "string") return "";
  let bytes;
  try { bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0)); } catch { return b64; }
  try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch {
    return Array.from(bytes, b => b.toString(16).padStart(2, "0")).join(" ");
  }
}

async function remove(topic, list) {
  if (!confirm("Delete the retained message of " + topic + "?")) return;
  try {
    await del(path(topic));
    toast("Retained message of " + topic + " deleted.", "info");
    closeDrawer();
    list.reload();
  } catch (e) {
    toast(e.message);
  }
}

async function view(m, list) {
  const body = h("div", {});
  drawer("Retained: " + m.topic, body);
  try {
    const d = await get(path(m.topic));
    const { payload, ...rest } = d || {};
    body.append(isAdmin() ? h("button", { class: "danger", "data-action": "delete", onclick: () => remove(m.topic, list) }, "Delete") : null,
      details(rest), h("h3", {}, "Payload"), h("pre", { class: "payload", "data-testid": "payload" }, payloadText(payload)));
  } catch (e) {
    showError(body, e);
  }
}

export default {
  title: "Retained",
  render(main) {
    const admin = isAdmin();
    const list = pagedList(main, {
      path: "/mqtt/retainer/messages",
      columns: [
        { title: "topic", get: m => h("a", { href: "#/retained", class: "topic", onclick: e => { e.preventDefault(); view(m, list); } }, m.topic) },
        { title: "qos", get: m => m.qos ?? "–" },
        { title: "from", get: m => m.from_clientid || "–" },
        { title: "published", get: m => fmtTime(m.publish_at) },
        { title: "", get: m => h("span", {}, h("button", { class: "small", "data-action": "view", onclick: () => view(m, list) }, "View"),
          admin ? h("button", { class: "danger small", "data-action": "delete", onclick: () => remove(m.topic, list) }, "Delete") : null) },
      ],
      onRow: m => view(m, list),
    });
  },
};
