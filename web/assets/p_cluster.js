// p_cluster.js - the cluster map: every member (/cluster) on a ring, links
// between running members, state colours; details from /nodes.
import { h, fmtDuration } from "./dom.js";
import { get } from "./api.js";
import { nodeList } from "./p_overview.js";

function ring(nodes) {
  const W = 520, H = 360, cx = W / 2, cy = H / 2, r = nodes.length > 1 ? 120 : 0;
  const pos = nodes.map((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
    return { n, x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) };
  });
  const svg = h("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "map", role: "img", "aria-label": "cluster map" });
  for (let i = 0; i < pos.length; i++)
    for (let j = i + 1; j < pos.length; j++) {
      const up = pos[i].n.status === "running" && pos[j].n.status === "running";
      svg.append(h("svg:line", { x1: pos[i].x, y1: pos[i].y, x2: pos[j].x, y2: pos[j].y, class: up ? "link up" : "link down" }));
    }
  for (const p of pos) {
    svg.append(h("svg:g", { class: "member " + (p.n.status || "unknown"), "data-node": p.n.node },
      h("svg:circle", { cx: p.x, cy: p.y, r: 30 }),
      h("svg:text", { x: p.x, y: p.y + 48, "text-anchor": "middle" }, p.n.node + (p.n.self ? " (this node)" : "")),
      h("svg:text", { x: p.x, y: p.y + 5, "text-anchor": "middle", class: "state" }, p.n.status || "?")));
  }
  return svg;
}

export default {
  title: "Cluster",
  async render(main) {
    const c = await get("/cluster");
    const members = c.nodes || [];
    main.append(h("p", {}, "Cluster ", h("b", {}, c.name || "–"), " · this node: ", h("b", {}, c.self || "–"),
      " · " + members.filter(m => m.status === "running").length + " of " + members.length + " running"),
    ring(members));
    const nodes = await nodeList();
    const by = Object.fromEntries(nodes.map(n => [n.node, n]));
    main.append(h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ["node", "address", "state", "connections", "version", "uptime"].map(t => h("th", {}, t)))),
      h("tbody", {}, members.map(m => {
        const d = by[m.node] || {};
        return h("tr", { "data-node": m.node }, h("td", {}, m.node), h("td", {}, m.addr || "–"),
          h("td", {}, h("span", { class: "badge " + m.status }, m.status)), h("td", {}, d.connections ?? "–"),
          h("td", {}, d.version || "–"), h("td", {}, typeof d.uptime === "number" ? fmtDuration(d.uptime) : "–"));
      }))));
  },
};
