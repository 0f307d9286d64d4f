// p_publish.js - POST /api/v5/publish (administrators only: a viewer sees the
// form disabled)
import { h, field, toast } from "./dom.js";
import { post, isAdmin } from "./api.js";

export default {
  title: "Publish",
  render(main) {
    const admin = isAdmin();
    const topic = field("Topic", { name: "topic", required: true, placeholder: "a/b/c" });
    const payload = field("Payload", { tag: "textarea", name: "payload", rows: 4 });
    const qos = field("QoS", { tag: "select", name: "qos", options: ["0", "1", "2"] });
    const retain = h("label", { class: "check" }, h("input", { type: "checkbox", name: "retain" }), " retain");
    const result = h("p", { class: "result", id: "publish-result" });
    const form = h("form", { class: "form", id: "publish", onsubmit: async e => {
      e.preventDefault();
      result.textContent = "";
      try {
        const r = await post("/publish", { topic: topic.input.value, payload: payload.input.value, qos: Number(qos.input.value),
          retain: retain.firstChild.checked, payload_encoding: "plain" });
        // 200 {"id"}; 202 {"reason_code": 16, "message": "no_matching_subscribers"}
        result.textContent = r && r.id ? "Published, message id " + r.id
          : r && r.reason_code === 16 ? "Published; no subscriber matched."
            : "Published.";
        toast(result.textContent, "info");
      } catch (err) {
        toast(err.message);
        result.textContent = "Not published: " + err.message;
      }
    } }, topic, payload, qos, retain, h("button", { type: "submit", class: "primary", disabled: !admin }, "Publish"), result);
    if (!admin) form.querySelectorAll("input,textarea,select").forEach(x => { x.disabled = true; });
    main.append(admin ? null : h("p", { class: "hint" }, "Viewers cannot publish."), form);
  },
};
