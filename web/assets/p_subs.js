// p_subs.js - subscriptions (/subscriptions) and topics (/topics, the routes)
import { pagedList } from "./list.js";

export const subscriptions = {
  title: "Subscriptions",
  render(main) {
    pagedList(main, {
      path: "/subscriptions",
      filters: [{ name: "clientid", label: "client id" }, { name: "topic", label: "topic filter" },
        { name: "match_topic", label: "matches topic" }, { name: "qos", label: "qos", options: ["", "0", "1", "2"] }],
      columns: [
        { title: "client id", get: s => s.clientid },
        { title: "topic", get: s => s.topic },
        { title: "qos", get: s => s.qos ?? "–" },
        { title: "node", get: s => s.node || "–" },
        { title: "nl / rap / rh", get: s => [s.nl, s.rap, s.rh].map(x => x ?? "–").join(" / ") },
      ],
    });
  },
};

export const topics = {
  title: "Topics",
  render(main) {
    pagedList(main, {
      path: "/topics",
      filters: [{ name: "topic", label: "topic" }],
      columns: [{ title: "topic", get: t => t.topic }, { title: "node", get: t => t.node || "–" }],
    });
  },
};
