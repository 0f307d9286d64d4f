// dashboard.spec.mjs - the dashboard in a real browser (Debian's headless
// Chromium, driven by playwright-core). A plain node script, no test runner:
//   node dashboard.spec.mjs CONFIG.json
// CONFIG: {base, ws_url, user, password, new_password, artifacts, nodes, kick_clientid,
//          kick_node, client_nodes, sub_clientid, sub_node, sub_topic, retained_topic,
//          retained_payload, publish_topic, publish_payload, ws_topic, ws_payload,
//          log_level, viewer, viewer_password, chromium, timeout_ms}
// Prints one JSON object on its last line: {steps: {name: "ok" | "fail: why"},
// console_errors, failed_requests, bad_responses, first_paint_ms, notes, ...}.
// tests/integration/test_56_dashboard.py starts the cluster and the MQTT
// clients, runs this script and checks the result against the broker.
import { readFileSync, mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = { steps: {}, console_errors: [], failed_requests: [], bad_responses: [], first_paint_ms: null, notes: [] };
const TIMEOUT = cfg.timeout_ms || 10000;
mkdirSync(cfg.artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: cfg.chromium || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  timeout: 60000,
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
page.setDefaultTimeout(TIMEOUT);
page.on("console", m => { if (m.type() === "error") out.console_errors.push({ text: m.text(), url: m.location() && m.location().url }); });
page.on("pageerror", e => out.console_errors.push({ text: "pageerror: " + e.message }));
page.on("requestfailed", r => out.failed_requests.push({ url: r.url(), error: r.failure() && r.failure().errorText }));
page.on("response", r => { if (r.status() >= 400) out.bad_responses.push({ url: r.url(), method: r.request().method(), status: r.status() }); });
page.on("dialog", d => d.accept()); // confirm() before kick / delete

const shot = name => page.screenshot({ path: `${cfg.artifacts}/${name}.png`, fullPage: true });

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const r = await fn();
    out.steps[name] = r || "ok";
  } catch (e) {
    out.steps[name] = "fail: " + (e && e.message || e).split("\n")[0];
    try { await shot("FAILED-" + name); } catch { /* the browser may be gone */ }
  }
  (out.step_ms ||= {})[name] = Date.now() - t0;
  process.stderr.write(`step ${name}: ${out.steps[name]} (${Date.now() - t0} ms)\n`);
}

async function go(route) {
  await page.goto(cfg.base + "/#/" + route);
  await page.locator(`main[data-page="${route}"][data-ready]`).waitFor();
}

// wait until the page finished loading its list: a table; an API error shows
// "Could not load: ..." in its place, which fails the step at once
async function listLoaded() {
  await page.locator("main table.grid, main .unavailable").first().waitFor();
  const err = page.locator("main .unavailable");
  if (await err.count()) throw new Error((await err.first().textContent()).trim());
}

// the texts of one column of the page's (first) table
async function column(title) {
  const heads = await page.locator("main table.grid").first().locator("thead th").allTextContents();
  const i = heads.indexOf(title);
  if (i < 0) throw new Error(`no column "${title}" in ${JSON.stringify(heads)}`);
  return page.locator("main table.grid").first().locator(`tbody tr td:nth-child(${i + 1})`).allTextContents();
}

await step("login_page", async () => {
  const t0 = Date.now();
  await page.goto(cfg.base + "/");
  await page.locator("form#login").waitFor();
  out.load_ms = Date.now() - t0;
  out.first_paint_ms = await page.evaluate(() => {
    const p = performance.getEntriesByType("paint").find(e => e.name === "first-contentful-paint")
      || performance.getEntriesByType("paint")[0];
    return p ? Math.round(p.startTime) : null;
  });
  await shot("01-login");
});

await step("login_wrong_password", async () => {
  await page.fill("form#login input[name=username]", cfg.user);
  await page.fill("form#login input[name=password]", "not-the-password");
  await page.click("form#login button[type=submit]");
  await page.locator("form#login .err", { hasText: "Wrong username or password" }).waitFor();
});

await step("login_and_change_password", async () => {
  await page.fill("form#login input[name=password]", cfg.password);
  await page.click("form#login button[type=submit]");
  await page.locator("form#change-pwd").waitFor();
  await shot("02-change-password");
  await page.fill("form#change-pwd input[name=old_pwd]", cfg.password);
  await page.fill("form#change-pwd input[name=new_pwd]", cfg.new_password);
  await page.fill("form#change-pwd input[name=new_pwd2]", cfg.new_password);
  await page.click("form#change-pwd button[type=submit]");
  await page.locator('main[data-page="overview"]').waitFor();
});

await step("overview", async () => {
  await page.locator('main[data-page="overview"][data-ready]').waitFor();
  const cards = await page.locator("#node-cards .card.node").count();
  if (cards !== cfg.nodes.length) throw new Error(`${cards} node cards, expected ${cfg.nodes.length}`);
  for (const n of cfg.nodes) await page.locator(`#node-cards .card.node.running[data-node="${n}"]`).waitFor();
  await page.locator("#chart-conn .uplot").waitFor();
  await page.locator("#chart-msg .uplot").waitFor();
  await shot("03-overview");
  // live: every poll (5 s) adds a point with a later time stamp, without a reload
  const state = () => page.evaluate(() => {
    const d = document.querySelector("#chart-conn").dataset;
    return { points: Number(d.points || 0), last: Number(d.last || 0),
      polls: Number(document.querySelector("#node-cards").dataset.polls || 0) };
  });
  const s0 = await state();
  await page.waitForFunction(p => Number(document.querySelector("#node-cards").dataset.polls || 0) >= p + 2,
    s0.polls, { timeout: 30000 });
  const s1 = await state();
  await shot("03b-overview-later");
  out.notes.push("overview polls " + JSON.stringify(s0) + " -> " + JSON.stringify(s1));
  if (!(s1.last > s0.last)) throw new Error("the charts' newest point did not advance: " + JSON.stringify([s0, s1]));
  const note = (await page.locator("main .hint, main .unavailable").allTextContents()).join(" ").trim();
  if (note) throw new Error("overview says: " + note);
});

await step("cluster_map", async () => {
  await go("cluster");
  await page.locator("svg.map g.member").first().waitFor();
  const running = await page.locator("svg.map g.member.running").count();
  await shot("04-cluster");
  if (running !== cfg.nodes.length) throw new Error(`${running} running members on the map, expected ${cfg.nodes.length}`);
});

await step("clients", async () => {
  await go("clients");
  await listLoaded();
  // the whole cluster's clients, from the node the browser uses
  const nodesSeen = new Set(await column("node"));
  for (const n of cfg.client_nodes) if (!nodesSeen.has(n)) throw new Error(`no client of ${n} listed: ${[...nodesSeen]}`);
  await shot("05-clients");
  await page.fill("form.filters input[name=like_clientid]", cfg.kick_clientid);
  await page.click("form.filters button[type=submit]");
  const link = page.locator("main table.grid a.cid", { hasText: cfg.kick_clientid });
  await link.first().waitFor();
  await link.first().click();
  await page.locator("aside.drawer dl.kv").waitFor();
  await page.locator("aside.drawer dd", { hasText: cfg.kick_node }).first().waitFor();
  await shot("05-clients-detail");
  await page.click('aside.drawer button[data-action="kick"]');
  await page.locator(".toast.info", { hasText: "kicked" }).waitFor();
  // gone from the list (a clean-start v5 session ends with its connection; the
  // node that held it may take a moment: Refresh, a bounded number of times)
  const row = page.locator("main table.grid a.cid", { hasText: cfg.kick_clientid });
  for (let i = 0; await row.count(); i++) {
    if (i === 20) throw new Error("the kicked client is still listed");
    await page.waitForTimeout(500);
    await page.click('form.filters button:text-is("Refresh")');
    await listLoaded();
  }
  await shot("05b-clients-kicked");
});

await step("subscriptions", async () => {
  await go("subscriptions");
  await listLoaded();
  await page.fill("form.filters input[name=clientid]", cfg.sub_clientid);
  await page.click("form.filters button[type=submit]");
  await page.locator("main table.grid td", { hasText: cfg.sub_topic }).first().waitFor();
  await shot("06-subscriptions");
  const where = await column("node");
  if (where.length !== 1 || where[0] !== cfg.sub_node) throw new Error("subscription rows on " + JSON.stringify(where));
});

await step("topics", async () => {
  await go("topics");
  await listLoaded();
  await page.locator("main table.grid td", { hasText: cfg.sub_topic }).first().waitFor();
  await shot("07-topics");
});

await step("retained", async () => {
  await go("retained");
  await listLoaded();
  const link = page.locator("main table.grid a.topic", { hasText: cfg.retained_topic });
  await link.first().waitFor();
  await link.first().click();
  await page.locator('aside.drawer pre[data-testid="payload"]', { hasText: cfg.retained_payload }).waitFor();
  await shot("08-retained-view");
  await page.click('aside.drawer button[data-action="delete"]');
  await page.locator(".toast.info", { hasText: "deleted" }).waitFor();
  await page.locator("main table.grid a.topic", { hasText: cfg.retained_topic }).waitFor({ state: "detached" });
  await shot("08b-retained-deleted");
});

await step("publish", async () => {
  await go("publish");
  await page.fill("form#publish input[name=topic]", cfg.publish_topic);
  await page.fill("form#publish textarea[name=payload]", cfg.publish_payload);
  await page.click("form#publish button[type=submit]");
  const res = page.locator("#publish-result");
  await page.waitForFunction(() => document.querySelector("#publish-result").textContent !== "");
  const text = await res.textContent();
  await shot("09-publish");
  if (!/^Published/.test(text)) throw new Error(text);
});

await step("alarms", async () => {
  await go("alarms");
  await listLoaded();
  await shot("10-alarms");
});

await step("settings_log_level", async () => {
  await go("settings");
  await page.locator("#users table.grid, #users .unavailable").first().waitFor();
  await page.locator("#keys table.grid, #keys .unavailable").first().waitFor();
  await page.locator("#log select, #log .unavailable").first().waitFor();
  const err = page.locator("main .unavailable");
  if (await err.count()) throw new Error((await err.first().textContent()).trim());
  if (await page.locator("#users td", { hasText: cfg.user }).count() < 1) throw new Error("no user row for " + cfg.user);
  await shot("11-settings");
  await page.selectOption("#log-level", cfg.log_level);
  await page.click('#log button[data-action="set-level"]');
  await page.locator(".toast.info", { hasText: "Log level: " + cfg.log_level }).waitFor();
  // a reload reads the node's level back
  await go("settings");
  await page.locator("#log select").waitFor();
  const now = await page.locator("#log-level").inputValue();
  if (now !== cfg.log_level) throw new Error("after a reload the page shows log level " + now);
});

await step("settings_api_key", async () => {
  await page.fill("form#add-key input[name=name]", "dash-test-key");
  await page.fill("form#add-key input[name=desc]", "made by the browser test");
  await page.click("form#add-key button[type=submit]");
  await page.locator("#keys p.secret code").waitFor();
  await page.locator("#keys td", { hasText: "dash-test-key" }).first().waitFor();
  await page.click('#keys tr:has(td:text-is("dash-test-key")) button[data-action="delete-key"]');
  await page.locator(".toast.info", { hasText: "API key deleted" }).waitFor();
});

await step("settings_add_viewer", async () => {
  await page.fill("form#add-user input[name=username]", cfg.viewer);
  await page.fill("form#add-user input[name=password]", cfg.viewer_password);
  await page.selectOption("form#add-user select[name=role]", "viewer");
  await page.click("form#add-user button[type=submit]");
  await page.locator(".toast.info", { hasText: "added" }).waitFor();
  await page.locator("#users td", { hasText: cfg.viewer }).first().waitFor();
});

await step("websocket_client", async () => {
  await go("websocket");
  await page.fill("form#ws-connect input[name=url]", cfg.ws_url);
  await page.click("form#ws-connect button[type=submit]");
  await page.locator("#ws-state", { hasText: /^connected$/ }).waitFor();
  await page.fill("form#ws-sub input[name=sub_topic]", cfg.ws_topic);
  await page.click("form#ws-sub button[type=submit]");
  await page.locator(".toast.info", { hasText: "Subscribed" }).waitFor();
  await page.fill("form#ws-pub input[name=pub_topic]", cfg.ws_topic);
  await page.fill("form#ws-pub input[name=pub_payload]", cfg.ws_payload);
  await page.click("form#ws-pub button[type=submit]");
  await page.locator("#ws-messages li", { hasText: cfg.ws_payload }).waitFor();
  await shot("12-websocket");
});

await step("logout", async () => {
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("hamqtt.session")).token);
  await page.click("#logout");
  await page.locator("form#login").waitFor();
  // the old token is refused now
  const st = await page.evaluate(async t => (await fetch("/api/v5/cluster",
    { credentials: "omit", headers: { Authorization: "Bearer " + t } })).status, token);
  if (st !== 401) throw new Error("after logout an unauthenticated call answered " + st);
});

await step("login_new_password", async () => {
  await page.fill("form#login input[name=username]", cfg.user);
  await page.fill("form#login input[name=password]", cfg.new_password);
  await page.click("form#login button[type=submit]");
  await page.locator('main[data-page="overview"]').waitFor();
});

// a viewer sees the same pages without a single destructive control
await step("viewer_readonly", async () => {
  await page.click("#logout");
  await page.locator("form#login").waitFor();
  await page.fill("form#login input[name=username]", cfg.viewer);
  await page.fill("form#login input[name=password]", cfg.viewer_password);
  await page.click("form#login button[type=submit]");
  await page.locator('main[data-page="overview"][data-ready]').waitFor();
  const destructive = ["kick", "delete", "delete-user", "delete-key", "set-level", "clear-alarms"]
    .map(a => `[data-action="${a}"]`).concat(["button.danger", "form#add-user", "form#add-key"]).join(", ");
  for (const route of ["clients", "retained", "alarms", "settings", "publish"]) {
    await go(route);
    if (route === "settings") await page.locator("#users table.grid, #users .unavailable").first().waitFor();
    else if (route !== "publish") await listLoaded();
    const n = await page.locator("main " + destructive).count();
    if (n) throw new Error(`${n} destructive control(s) on ${route} for a viewer`);
  }
  if (!await page.locator("form#publish button[type=submit]").isDisabled()) throw new Error("publish enabled for a viewer");
  await shot("13-viewer-settings");
});

await browser.close();
process.stdout.write(JSON.stringify(out) + "\n");
