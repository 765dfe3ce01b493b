// End-to-end tests of the console in a real browser against `flowscope standalone --demo`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import path from "node:path";
import { api, artifacts, drawnPairs, launchBrowser, minuteRange, shot, startStandalone, waitLoaded } from "./harness.mjs";

// The demo's scripted failure: its last workload starts refusing connections
// three minutes before the replayed history ends (internal/livedemo.ClusterConfig).
const failing = "shop/reviews";
const expectedWorkloads = ["shop/frontend", "shop/catalog", "payments/auth", "payments/ledger", "platform/orders", "network/payments-provider"];

let server, browser, failureAt;

before(async () => {
  [server, browser] = await Promise.all([startStandalone(), launchBrowser()]);
  const settings = await (await fetch(new URL("/console/settings.json", server.url))).json();
  failureAt = Date.parse(settings.events[0].at);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(query) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 850 } });
  page.on("pageerror", (e) => assert.fail(`page error: ${e.message}`));
  await page.goto(new URL(query, server.url).toString());
  return page;
}

function absQuery(r, extra = "") {
  return `?view=map&range=abs&from=${encodeURIComponent(r.from)}&to=${encodeURIComponent(r.to)}${extra}`;
}

test("the map renders the workloads and edges of the API", async () => {
  const r = minuteRange(12);
  const deps = await api(server.url, "deps", r);
  const page = await open(absQuery(r));
  await waitLoaded(page);
  const drawn = await page.evaluate(() => {
    const g = window.flowscope.map.graph;
    return { nodes: g.nodes(), edges: g.edges() };
  });
  assert.deepEqual(new Set(drawn.nodes), new Set(deps.nodes.map((n) => n.id)));
  assert.deepEqual(new Set(drawn.edges), drawnPairs(deps.edges));
  for (const w of expectedWorkloads) assert.ok(drawn.nodes.includes(w), `workload ${w} drawn`);
  // The layout is stable: a refresh moves nothing.
  const positions = () => page.evaluate(() => window.flowscope.map.graph.mapNodes((n, a) => `${n}@${a.x},${a.y}`).sort());
  const before = await positions();
  await page.evaluate(() => window.flowscope.refresh());
  assert.deepEqual(await positions(), before);
  await shot(page, "map");
  await page.close();
  // The README's picture: the last 15 minutes with the busiest edge selected.
  const top = deps.edges[0];
  const id = [top.src, top.dst, top.port, top.service ?? "", top.direction].join("|");
  const readme = await open(`?view=map&range=15m&edge=${encodeURIComponent(id)}`);
  await readme.locator('[data-testid="edge-details"]').waitFor();
  await shot(readme, "readme");
  if (process.env.FLOWSCOPE_DOCS_SCREENSHOT) copyFileSync(path.join(artifacts, "readme.png"), process.env.FLOWSCOPE_DOCS_SCREENSHOT);
  await readme.close();
});

test("while the camera moves the map renders cheaper frames, then full ones again", async () => {
  const page = await open("?view=map&range=15m");
  await waitLoaded(page);
  const state = () =>
    page.evaluate(() => {
      const m = window.flowscope.map;
      const c = m.sigma.getCanvases();
      return { moving: m.motion.moving, ratio: window.devicePixelRatio, edgesWidth: c.edges.width, hover: c.hoverNodes.style.visibility, edges: m.graph.size };
    });
  const rest = await state();
  assert.equal(rest.moving, false);
  const animation = page.evaluate(() => window.flowscope.map.sigma.getCamera().animate({ ratio: 0.5 }, { duration: 1500 }));
  await page.waitForFunction(() => window.flowscope.map.motion.moving);
  const moving = await state();
  assert.ok(moving.edgesWidth < rest.edgesWidth, `edges canvas ${moving.edgesWidth} px while moving, ${rest.edgesWidth} at rest`);
  assert.equal(moving.hover, "hidden");
  await animation;
  await page.waitForFunction(() => !window.flowscope.map.motion.moving);
  assert.deepEqual(await state(), rest);
  // Hit-testing (skipped while moving) works again: a click on a node in view selects it.
  const box = await page.locator("#graph").boundingBox();
  const [node, p] = await page.evaluate(({ width, height }) => {
    const m = window.flowscope.map;
    return m.graph
      .nodes()
      .filter((n) => !n.includes("/svc/"))
      .map((n) => [n, m.viewportOf(n)])
      .find(([, q]) => q.x > 20 && q.y > 20 && q.x < width - 20 && q.y < height - 20);
  }, box);
  await page.mouse.click(box.x + p.x, box.y + p.y);
  await page.waitForFunction((n) => window.flowscope.state().node === n, node);
  await page.close();
});

test("edges are coloured by RTT too", async () => {
  const page = await open("?view=map&range=15m");
  // The demo's RTTs are all fast: make two edges slow in the API's answer.
  let slow;
  await page.route("**/api/v1/deps?*", async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    assert.equal(new URL(route.request().url()).searchParams.get("rtt"), "1");
    const healthy = body.edges.filter((e) => e.health === "healthy");
    Object.assign(healthy[0], { rtt_p50_us: 2_000, rtt_p99_us: 150_000 });
    Object.assign(healthy[1], { rtt_p50_us: 300_000, rtt_p99_us: 1_500_000 });
    slow = healthy.slice(0, 2).map((e) => `${e.src}\u2192${e.dst}`);
    await route.fulfill({ response: res, json: body });
  });
  await page.goto(page.url());
  await waitLoaded(page);
  const health = await page.evaluate((keys) => keys.map((k) => window.flowscope.map.graph.getEdgeAttribute(k, "health")), slow);
  assert.deepEqual(health, ["degraded", "failing"]);
  assert.match(await page.locator("#legend").textContent(), /RTT p99/);
  await page.close();
});

test("clicking an edge shows its numbers and they match the API", async () => {
  const r = minuteRange(12);
  const page = await open(absQuery(r));
  await waitLoaded(page);
  // Candidate edges: one API edge each, clicked at their middle.
  const points = await page.evaluate(() => {
    const m = window.flowscope.map;
    const out = [];
    for (const [key, d] of m.drawn) {
      if (d.edges.length !== 1) continue;
      const a = m.viewportOf(d.src), b = m.viewportOf(d.dst);
      out.push({ key, x: (a.x + b.x) / 2, y: (a.y + b.y) / 2, bytes: d.bytes });
    }
    return out.sort((p, q) => q.bytes - p.bytes);
  });
  const box = await page.locator("#graph").boundingBox();
  let details;
  for (const p of points) {
    await page.mouse.click(box.x + p.x, box.y + p.y);
    await page.waitForTimeout(400); // two quick clicks would be a double click (zoom)
    details = page.locator('[data-testid="edge-details"]');
    if (await details.count()) break;
  }
  await details.waitFor({ timeout: 10_000 });
  const id = await details.getAttribute("data-edge");
  const [src, dst, port, service, direction] = id.split("|");
  const want = await api(server.url, "edge", { src, dst, port, direction, ...(service ? { service } : {}), ...r });
  const shown = Object.fromEntries(
    await page.$$eval('[data-testid="edge-details"] [data-field]', (els) => els.map((e) => [e.dataset.field, Number(e.dataset.value)])),
  );
  for (const f of ["bytes_client_to_server", "bytes_server_to_client", "opened", "closed", "refused", "timeout", "reset", "retransmits", "port"]) {
    assert.equal(shown[f], want.edge[f], `${f} of ${id}`);
  }
  assert.equal(shown.rtt_p50_us, want.edge.rtt_p50_us ?? -1);
  assert.equal(shown.failed, want.edge.refused + want.edge.timeout + want.edge.reset);
  assert.equal(await page.locator('[data-testid="recent-flows"] tbody tr').count(), Math.min(20, want.flows.length));
  assert.ok(new URL(page.url()).searchParams.get("edge") === id, "the selection is in the URL");
  await shot(page, "edge-details");
  await page.close();
});

test("the time range changes what is shown", async () => {
  const page = await open("?view=map&range=abs&from=2020-01-01T00:00:00Z&to=2020-01-01T01:00:00Z");
  await waitLoaded(page);
  assert.equal(await page.locator('[data-testid="map-counts"]').getAttribute("data-edges"), "0");
  // Before the scripted failure nothing fails; in the last minutes the failing edges show.
  const iso = (ms) => new Date(ms).toISOString().replace(/\.000Z$/, "Z");
  const before = { from: iso(failureAt - 240_000), to: iso(failureAt) };
  await page.selectOption("#range", "abs"); // already absolute: the same range again
  await page.fill("#from", before.from.slice(0, 16));
  await page.fill("#to", before.to.slice(0, 16));
  const t0 = await page.evaluate(() => Number(document.body.dataset.loaded));
  await page.click("#apply-range");
  await waitLoaded(page, t0);
  assert.equal(new URL(page.url()).searchParams.get("from"), before.from);
  const early = await page.evaluate(() => window.flowscope.map.graph.filterEdges((e, a) => a.health === "failing"));
  const deps = await api(server.url, "deps", before);
  assert.equal(await page.locator('[data-testid="map-counts"]').getAttribute("data-edges"), String(deps.edges.length));
  assert.deepEqual(early.filter((e) => e.endsWith(failing)), [], "no failing edge into the failing workload before its failure");
  const t1 = await page.evaluate(() => Number(document.body.dataset.loaded));
  await page.selectOption("#range", "5m");
  await waitLoaded(page, t1);
  const late = await page.evaluate(() => window.flowscope.map.graph.filterEdges((e, a) => a.health === "failing"));
  assert.ok(late.some((e) => e.endsWith(failing)), `failing edges into ${failing} in the last 5 minutes: ${late}`);
  await shot(page, "range-5m");
  await page.close();
});

test("a view restored from its URL is the same view", async () => {
  const page = await open(absQuery(minuteRange(12)));
  await waitLoaded(page);
  const t0 = await page.evaluate(() => Number(document.body.dataset.loaded));
  await page.selectOption("#ns", "shop");
  await waitLoaded(page, t0);
  await page.locator('#groups input[data-group="payments"]').uncheck();
  await page.fill("#q", "shop");
  await page.waitForFunction(() => window.flowscope.state().q === "shop");
  const node = await page.evaluate(() => window.flowscope.map.graph.nodes().find((n) => n.startsWith("shop/") && !n.includes("/svc/")));
  const p = await page.evaluate((n) => window.flowscope.map.viewportOf(n), node);
  const box = await page.locator("#graph").boundingBox();
  await page.mouse.click(box.x + p.x, box.y + p.y);
  await page.locator('[data-testid="workload-details"]').waitFor();
  const url = page.url();
  const snapshot = async (pg) =>
    pg.evaluate(() => ({
      state: window.flowscope.state(),
      nodes: window.flowscope.map.graph.nodes().sort(),
      edges: window.flowscope.map.graph.edges().sort(),
      details: document.querySelector('[data-testid="workload-details"] h3')?.textContent,
      ns: document.querySelector("#ns").value,
      q: document.querySelector("#q").value,
    }));
  const want = await snapshot(page);
  assert.equal(want.state.node, node);
  assert.deepEqual(want.state.collapsed, ["payments"]);
  const restored = await open(new URL(url).search);
  await waitLoaded(restored);
  await restored.locator('[data-testid="workload-details"]').waitFor();
  assert.deepEqual(await snapshot(restored), want);
  await shot(restored, "restored");
  await page.close();
  await restored.close();
});

test("the pathway view lists the scripted failure", async () => {
  const page = await open("?view=pathways&range=15m");
  await page.locator('[data-testid="path-expected"]').waitFor({ timeout: 20_000 });
  // The header links the demo's scripted failure: its first two minutes, against the two before.
  await page.click('[data-testid="event"]');
  await page.waitForFunction((from) => new URL(location.href).searchParams.get("from") === from, new Date(failureAt).toISOString().replace(/\.000Z$/, "Z"));
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="path-changes"] tbody tr')].length > 0, null, { timeout: 20_000 });
  const rowsOf = (id) => page.locator(`[data-testid="${id}"] tbody tr`).evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  const expected = await rowsOf("path-expected");
  assert.ok(expected.some((r) => r[1] === failing && r[3] === "failing"), `an expected path to ${failing} is failing: ${JSON.stringify(expected)}`);
  assert.ok(expected.some((r) => r[3] === "healthy"), "other expected paths are healthy");
  assert.ok(expected.every((r) => r[1] === failing || r[3] !== "failing"), `only paths to ${failing} fail: ${JSON.stringify(expected)}`);
  const changes = await rowsOf("path-changes");
  assert.ok(changes.length > 0 && changes.every((r) => r[0].includes("\u2192 " + failing) && r[1] === "failing"), `changes are ${failing} failing: ${JSON.stringify(changes)}`);
  await shot(page, "pathways");
  await page.close();
});

test("the segmentation view lists the scripted violations", async () => {
  const page = await open("?view=segmentation&range=15m");
  const rows = page.locator('[data-testid="violations"] tbody tr');
  await rows.first().waitFor({ timeout: 20_000 });
  const vs = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  const egress = vs.filter((r) => r[1].startsWith("network/"));
  assert.ok(egress.length > 0, `violations reaching external networks: ${JSON.stringify(vs)}`);
  assert.ok(egress.every((r) => !r[0].startsWith("payments/")), "payments may leave the cluster");
  await page.click("#recommend");
  await page.waitForFunction(() => document.querySelector('[data-testid="recommended-yaml"]').textContent.includes("kind: NetworkPolicy"));
  await shot(page, "segmentation");
  await page.close();
});

test("unattributed traffic is shown with its reasons", async () => {
  const r = minuteRange(12);
  const want = await api(server.url, "unattributed", r);
  const page = await open(`?view=unattributed&range=abs&from=${encodeURIComponent(r.from)}&to=${encodeURIComponent(r.to)}`);
  const table = page.locator('[data-testid="unattributed-reasons"]');
  await table.waitFor({ timeout: 20_000 });
  const shown = await page.locator('[data-testid="unattributed-reasons"] tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].slice(0, 3).map((c) => c.textContent).join("/")));
  assert.deepEqual(shown, want.reasons.map((x) => `${x.reason}/${x.side}/${x.flows}`));
  await shot(page, "unattributed");
  await page.close();
});

test("API errors are shown as messages", async () => {
  const page = await open("?view=map&range=15m&ns=no-such-namespace");
  await page.locator("#error").waitFor({ state: "visible" });
  assert.match(await page.locator("#error").textContent(), /unknown namespace "no-such-namespace"/);
  await page.close();
});
