// p_overview.js - node cards (/nodes) and live uPlot charts of connections and
// messages in/out per node, polled every 5 s from /monitor_current?node=
// (seeded once from /monitor). The cards are refreshed by the same poll.
import { h, clear, fmtBytes, fmtDuration, showError } from "./dom.js";
import { get, qs } from "./api.js";

const POLL_MS = 5000, KEEP = 120; // 10 minutes of 5 s points
const COLORS = ["#1f6feb", "#d29922", "#2da44e", "#cf222e", "#8250df", "#0a7ea4"];

// The cluster's nodes, a stopped one included: [{node, node_status, ...}]
export async function nodeList() {
  const r = await get("/nodes");
  return Array.isArray(r) ? r : r.data || [];
}

const load = x => typeof x === "number" ? x.toFixed(2) : "–";

function nodeCard(n) {
  const st = n.node_status || "unknown";
  const mem = typeof n.memory_used === "number" ? fmtBytes(n.memory_used) + (n.memory_total ? " / " + fmtBytes(n.memory_total) : "") : "–";
  return h("div", { class: "card node " + st, "data-node": n.node },
    h("h3", {}, n.node), h("span", { class: "badge " + st }, st),
    h("dl", { class: "kv" },
      h("dt", {}, "version"), h("dd", {}, n.version || "–"),
      h("dt", {}, "uptime"), h("dd", { class: "uptime" }, typeof n.uptime === "number" ? fmtDuration(n.uptime) : "–"),
      h("dt", {}, "connections"), h("dd", {}, n.connections ?? "–"),
      h("dt", {}, "memory"), h("dd", {}, mem),
      h("dt", {}, "load"), h("dd", {}, [n.load1, n.load5, n.load15].map(load).join(" / "))));
}

// rate per second of a monitor sample: /monitor_current's *_msg_rate, or
// /monitor's count per 10 s point divided by its length
function rate(s, key, dt) {
  if (typeof s[key + "_msg_rate"] === "number") return s[key + "_msg_rate"];
  if (typeof s[key] === "number" && dt > 0) return s[key] / dt;
  return null;
}

function makeChart(el, title, names) {
  const series = [{}].concat(names.map((n, i) => ({ label: n, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true })));
  const data = [[]].concat(names.map(() => []));
  const width = Math.max(300, el.clientWidth || 600);
  const u = new window.uPlot({ title, width, height: 220, series, axes: [{}, { size: 60 }], scales: { x: { time: true } } }, data, el);
  return { u, data };
}

// /monitor's last minutes of node n as {t: {connections, in, out}} into hist;
// its last point is the 10 s still being counted (a partial count): left out
async function seed(n, hist) {
  const r = await get("/monitor" + qs({ node: n, latest: 600 }));
  const arr = (Array.isArray(r) ? r : r.data || []).slice(0, -1);
  arr.forEach((s, i) => {
    const t = Math.round((s.time_stamp || 0) / 1000);
    const dt = i ? t - Math.round((arr[i - 1].time_stamp || 0) / 1000) : 10;
    (hist[t] ||= {})[n] = { connections: s.connections, in: rate(s, "received", dt), out: rate(s, "sent", dt) };
  });
}

export default {
  title: "Overview",
  async render(main) {
    const cards = h("div", { class: "cards", id: "node-cards" });
    const connEl = h("div", { class: "chart", id: "chart-conn" }), msgEl = h("div", { class: "chart", id: "chart-msg" });
    const note = h("p", { class: "hint" });
    main.append(cards, h("section", { class: "charts" }, connEl, msgEl), note);
    let nodes = await nodeList();
    cards.append(...nodes.map(nodeCard));
    if (!window.uPlot) throw new Error("the chart library did not load");
    // the series are the members when the page opened (a joining node shows after a reload)
    const names = nodes.map(n => n.node);
    const conn = makeChart(connEl, "Connections", names);
    const msg = makeChart(msgEl, "Messages / s (in, out)", names.flatMap(n => [n + " in", n + " out"]));
    let stopped = false, timer = null, polls = 0;

    const push = (t, perNode) => {
      conn.data[0].push(t); msg.data[0].push(t);
      names.forEach((n, i) => {
        const s = perNode[n] || {};
        conn.data[i + 1].push(s.connections ?? null);
        msg.data[2 * i + 1].push(s.in ?? null);
        msg.data[2 * i + 2].push(s.out ?? null);
      });
      for (const d of [conn.data, msg.data]) if (d[0].length > KEEP) d.forEach(a => a.shift());
      conn.u.setData(conn.data); msg.u.setData(msg.data);
      // for the browser test: how many points, the newest one's time
      connEl.dataset.points = msgEl.dataset.points = String(conn.data[0].length);
      connEl.dataset.last = msgEl.dataset.last = String(t);
    };

    const hist = {};
    await Promise.all(nodes.filter(n => n.node_status === "running").map(n => seed(n.node, hist)));
    Object.keys(hist).map(Number).sort((a, b) => a - b).slice(-KEEP).forEach(t => push(t, hist[t]));

    // one poll: the cards from /nodes, then each running node's current rates;
    // a stopped node is not asked (it would only answer 503) and gets a gap
    const tick = async () => {
      const perNode = {};
      clear(note);
      try {
        nodes = await nodeList();
        clear(cards).append(...nodes.map(nodeCard));
        await Promise.all(nodes.filter(n => n.node_status === "running" && names.includes(n.node)).map(async n => {
          const s = await get("/monitor_current" + qs({ node: n.node }));
          perNode[n.node] = { connections: s.connections, in: rate(s, "received", 0), out: rate(s, "sent", 0) };
        }));
      } catch (e) {
        showError(note, e);
      }
      if (stopped) return;
      push(Math.round(Date.now() / 1000), perNode);
      cards.dataset.polls = String(++polls);
      timer = setTimeout(tick, POLL_MS);
    };
    await tick();
    const onResize = () => {
      for (const c of [conn, msg]) c.u.setSize({ width: Math.max(300, c.u.root.parentNode.clientWidth), height: 220 });
    };
    window.addEventListener("resize", onResize);
    return () => { stopped = true; clearTimeout(timer); window.removeEventListener("resize", onResize); conn.u.destroy(); msg.u.destroy(); };
  },
};
