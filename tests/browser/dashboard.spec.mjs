// dashboard.spec.mjs - the dashboard in a real browser (Debian's headless
// Chromium, driven by playwright-core). A plain node script, no test runner:
//   node dashboard.spec.mjs CONFIG.json
// CONFIG: {base, ws_url, user, password, new_password, artifacts, nodes, kick_clientid,
//          sub_topic, retained_topic, retained_payload, publish_topic, publish_payload,
//          ws_topic, ws_payload, log_level, viewer, viewer_password, chromium,
//          timeout_ms, skip: [step names]}
// Prints one JSON object on its last line: {steps: {name: "ok" | "unavailable:
// why" | "fail: why"}, console_errors, failed_requests, first_paint_ms, ...}.
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
  if ((cfg.skip || []).includes(name)) { out.steps[name] = "skipped"; return; }
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

// a page whose route is missing on this node says so (never a blank page)
async function unavailable() {
  return await page.locator("main .unavailable", { hasText: "Not available on this node" }).count() > 0;
}

async function go(route) {
  await page.goto(cfg.base + "/#/" + route);
  await page.locator(`main[data-page="${route}"][data-ready]`).waitFor();
}

// wait until the page finished loading its list: a table, or the "not available" note
async function listLoaded() {
  await page.locator("main table.grid, main .unavailable").first().waitFor();
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
  await page.locator("#chart-conn .uplot").waitFor();
  await page.locator("#chart-msg .uplot").waitFor();
  const note = (await page.locator("main .hint").allTextContents()).join(" ");
  await shot("03-overview");
  if (/monitor_current is not available/.test(note)) return "unavailable: /api/v5/monitor_current";
  if (/\/api\/v5\/nodes\) are not available/.test(note)) return "unavailable: /api/v5/nodes";
  // live: the charts get new points every 5 s, without a reload
  const points = () => page.evaluate(() => Number(document.querySelector("#chart-conn").dataset.points || 0));
  const n0 = await points();
  await page.waitForFunction(n => Number(document.querySelector("#chart-conn").dataset.points || 0) >= n + 2, n0, { timeout: 20000 });
  await shot("03b-overview-later");
  out.notes.push("chart points " + n0 + " -> " + await points());
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
  if (await unavailable()) { await shot("05-clients"); return "unavailable: /api/v5/clients"; }
  await page.fill("form.filters input[name=like_clientid]", cfg.kick_clientid);
  await page.click("form.filters button[type=submit]");
  const link = page.locator("main table.grid a.cid", { hasText: cfg.kick_clientid });
  await link.first().waitFor();
  await link.first().click();
  await page.locator("aside.drawer dl.kv").waitFor();
  await shot("05-clients-detail");
  await page.click('aside.drawer button[data-action="kick"]');
  await page.locator(".toast.info", { hasText: "kicked" }).waitFor();
  await shot("05b-clients-kicked");
});

await step("subscriptions", async () => {
  await go("subscriptions");
  await listLoaded();
  await shot("06-subscriptions");
  if (await unavailable()) return "unavailable: /api/v5/subscriptions";
  await page.locator("main table.grid td", { hasText: cfg.sub_topic }).first().waitFor();
});

await step("topics", async () => {
  await go("topics");
  await listLoaded();
  await shot("07-topics");
  if (await unavailable()) return "unavailable: /api/v5/topics";
  await page.locator("main table.grid td", { hasText: cfg.sub_topic }).first().waitFor();
});

await step("retained", async () => {
  await go("retained");
  await listLoaded();
  if (await unavailable()) { await shot("08-retained"); return "unavailable: /api/v5/mqtt/retainer/messages"; }
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
  if (/Not available on this node/.test(text)) return "unavailable: /api/v5/publish";
  if (!/^Published/.test(text)) throw new Error(text);
});

await step("alarms", async () => {
  await go("alarms");
  await listLoaded();
  await shot("10-alarms");
  if (await unavailable()) return "unavailable: /api/v5/alarms";
});

await step("settings_log_level", async () => {
  await go("settings");
  await page.locator("#users table.grid, #users .unavailable").first().waitFor();
  await page.locator("#keys table.grid, #keys .unavailable").first().waitFor();
  await page.locator("#log select, #log .unavailable").first().waitFor();
  if (await page.locator("#users td", { hasText: cfg.user }).count() < 1) throw new Error("no user row for " + cfg.user);
  await shot("11-settings");
  if (await page.locator("#log .unavailable").count()) return "unavailable: /api/v5/log_level";
  await page.selectOption("#log-level", cfg.log_level);
  await page.click('#log button[data-action="set-level"]');
  await page.locator(".toast.info", { hasText: "Log level" }).waitFor();
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
