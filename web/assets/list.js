// list.js - a filtered, paged table over one of EMQX's paged routes
// ({"data": [...], "meta": {page, limit, count, hasnext}}).
import { h, clear, table, pager, showError } from "./dom.js";
import { get, qs } from "./api.js";

// opts: {path, filters: [{name, label, options?}], columns, onRow?, limit?, extra?}
// returns {reload()}
export function pagedList(main, opts) {
  const inputs = {};
  const bar = h("form", { class: "filters", onsubmit: e => { e.preventDefault(); load(1); } },
    (opts.filters || []).map(f => {
      const input = f.options
        ? h("select", { name: f.name }, f.options.map(o => h("option", { value: o }, o || "any")))
        : h("input", { name: f.name, placeholder: f.label, "aria-label": f.label });
      inputs[f.name] = input;
      return input;
    }),
    opts.filters && opts.filters.length ? h("button", { type: "submit" }, "Search") : null,
    h("button", { type: "button", class: "ghost", onclick: () => load(page) }, "Refresh"));
  const out = h("div", { class: "list" });
  main.append(bar, out);
  let page = 1;

  async function load(p) {
    const params = { page: p, limit: opts.limit || 20, ...(opts.extra || {}) };
    for (const [k, el] of Object.entries(inputs)) params[k] = el.value.trim();
    let r;
    try {
      r = await get(opts.path + qs(params));
    } catch (e) {
      clear(out);
      showError(out, e);
      return;
    }
    page = p;
    const rows = Array.isArray(r) ? r : r && r.data || [];
    clear(out).append(table(opts.columns, rows, opts.onRow), pager(r && r.meta || { page: p }, load));
  }
  load(1);
  return { reload: () => load(page) };
}
