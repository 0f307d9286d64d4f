// p_alarms.js - active and past alarms (/alarms?activated=), clear history
import { h, toast, fmtTime, fmtDuration } from "./dom.js";
import { del, isAdmin } from "./api.js";
import { pagedList } from "./list.js";

export default {
  title: "Alarms",
  render(main) {
    const columns = [
      { title: "name", get: a => a.name },
      { title: "node", get: a => a.node || "–" },
      { title: "message", get: a => a.message || "" },
      { title: "since", get: a => fmtTime(a.activate_at) },
      { title: "duration", get: a => typeof a.duration === "number" ? fmtDuration(a.duration) : "–" },
    ];
    main.append(h("h2", {}, "Active"));
    pagedList(main, { path: "/alarms", extra: { activated: "true" }, columns });
    main.append(h("h2", {}, "History"));
    const hist = pagedList(main, { path: "/alarms", extra: { activated: "false" }, columns });
    if (isAdmin())
      main.append(h("button", { class: "danger", "data-action": "clear-alarms", onclick: async () => {
        if (!confirm("Clear the history of deactivated alarms?")) return;
        try { await del("/alarms"); toast("Alarm history cleared.", "info"); hist.reload(); } catch (e) { toast(e.message); }
      } }, "Clear history"));
  },
};
