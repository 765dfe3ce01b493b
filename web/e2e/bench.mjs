// Console benchmark: load time of the service map with N workloads and M edges, and pan/zoom
// frame rate from Chromium's performance trace. The built console (web/dist) is served with a
// synthetic API answer of that size, so the figures are the browser's alone.
//   node web/e2e/bench.mjs [workloads=1000] [edges=5000]
import { createServer } from "node:http";
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { launchBrowser } from "./harness.mjs";

const workloads = Number(process.argv[2] ?? 1000);
const edgeCount = Number(process.argv[3] ?? 5000);
const dist = path.resolve(import.meta.dirname, "../dist");

// A deterministic synthetic graph: 25 namespaces, each workload calling a few others.
function graph() {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const nodes = [];
  for (let i = 0; i < workloads; i++) {
    const ns = `ns${i % 25}`;
    nodes.push({ id: `${ns}/app${i}`, kind: "pod", namespace: ns, name: `app${i}`, workload_kind: "Deployment" });
  }
  const edges = [];
  const seen = new Set();
  while (edges.length < edgeCount) {
    const s = nodes[Math.floor(rnd() * nodes.length)], d = nodes[Math.floor(rnd() * nodes.length)];
    const k = s.id + d.id;
    if (s === d || seen.has(k)) continue;
    seen.add(k);
    const opened = 10 + Math.floor(rnd() * 1000), failed = rnd() < 0.05 ? Math.floor(opened * rnd()) : 0;
    edges.push({
      src: s.id, dst: d.id, port: 8080, direction: "internal", flows: opened, bytes_client_to_server: Math.floor(rnd() * 1e8),
      bytes_server_to_client: Math.floor(rnd() * 1e9), opened, closed: opened, refused: failed, timeout: 0, reset: 0, retransmits: 0,
      peak_bytes_per_minute: 0, failure_rate: failed / opened, retransmit_rate: 0,
      health: failed / opened >= 0.2 ? "failing" : failed / opened >= 0.01 ? "degraded" : "healthy",
    });
  }
  return { nodes, edges };
}

const g = graph();
const answers = {
  "/api/v1/deps": { from: "2026-01-01T00:00:00Z", to: "2026-01-01T01:00:00Z", ...g },
  "/api/v1/nodes": { namespaces: [...new Set(g.nodes.map((n) => n.namespace))].sort(), nodes: g.nodes },
  "/console/settings.json": { mode: "live" },
};
const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
const server = createServer((req, res) => {
  const u = new URL(req.url, "http://x");
  if (answers[u.pathname]) {
    res.setHeader("Content-Type", "application/json");
    return res.end(JSON.stringify(answers[u.pathname]));
  }
  const f = path.join(dist, u.pathname === "/" ? "index.html" : u.pathname);
  if (!existsSync(f)) return res.writeHead(404).end();
  res.setHeader("Content-Type", types[path.extname(f)] ?? "application/octet-stream");
  res.end(readFileSync(f));
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${server.address().port}/?view=map&range=1h`;

const browser = await launchBrowser();
const loads = [];
for (let i = 0; i < 5; i++) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 850 } });
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.loaded, null, { timeout: 60_000 });
  // From navigation start to the map drawn with data (Sigma renders synchronously on refresh).
  loads.push(await page.evaluate(() => Number(document.body.dataset.loaded) - performance.timeOrigin));
  await page.close();
}
const page = await browser.newPage({ viewport: { width: 1400, height: 850 } });
await page.goto(url);
await page.waitForFunction(() => document.body.dataset.loaded);
const drawn = await page.evaluate(() => ({ nodes: window.flowscope.map.graph.order, edges: window.flowscope.map.graph.size }));
const box = await page.locator("#graph").boundingBox();
if (process.env.BENCH_SHOT) await page.screenshot({ path: process.env.BENCH_SHOT });
await browser.startTracing(page, { categories: process.env.BENCH_TOP ? ["devtools.timeline", "disabled-by-default-devtools.timeline.frame", "gpu", "cc", "viz"] : ["devtools.timeline", "disabled-by-default-devtools.timeline.frame"] });
if (process.env.BENCH_SETTINGS) await page.evaluate((js) => { const o = JSON.parse(js); for (const [k, v] of Object.entries(o)) window.flowscope.map.sigma.setSetting(k, v); }, process.env.BENCH_SETTINGS);
if (process.env.BENCH_THIN) await page.evaluate(() => window.flowscope.map.graph.updateEachEdgeAttributes((e, a) => ({ ...a, size: 0.5 })));
const renderMs = await page.evaluate(() => { const sg = window.flowscope.map.sigma; const t = performance.now(); for (let i = 0; i < 5; i++) sg.refresh({ skipIndexation: true }); return (performance.now() - t) / 5; });
console.log("render ms (refresh, no indexation):", renderMs.toFixed(1));
const t0 = Date.now();
// Zoom in, pan, zoom out, pan back: four one-second camera animations (as a wheel zoom or an
// inertial drag moves the camera); Sigma redraws on every frame it can.
await page.evaluate(async () => {
  const cam = window.flowscope.map.sigma.getCamera();
  for (const s of [{ ratio: 0.3 }, { x: 0.8, y: 0.3 }, { ratio: 1.2 }, { x: 0.5, y: 0.5, ratio: 1 }]) {
    await cam.animate(s, { duration: 1000, easing: "linear" });
  }
});
const elapsed = (Date.now() - t0) / 1000;
const trace = JSON.parse((await browser.stopTracing()).toString());
const events = trace.traceEvents ?? trace;
if (process.env.BENCH_TOP) { const tot = {}; for (const e of events) if (e.ph === "X" && e.dur) tot[e.name + "@" + e.pid + "/" + e.tid] = (tot[e.name + "@" + e.pid + "/" + e.tid] ?? 0) + e.dur / 1000; console.log(Object.entries(tot).sort((a, b) => b[1] - a[1]).slice(0, 15)); }
const frames = events.filter((e) => e.name === "DrawFrame" || (e.name === "Commit" && e.ph === "X"));
const draws = events.filter((e) => e.name === "DrawFrame");
const ts = (draws.length ? draws : frames).map((e) => e.ts).sort((a, b) => a - b);
const span = ts.length > 1 ? (ts[ts.length - 1] - ts[0]) / 1e6 : elapsed;
const gaps = ts.slice(1).map((t, i) => (t - ts[i]) / 1000).sort((a, b) => a - b);
const p95gap = gaps.length ? gaps[Math.floor(gaps.length * 0.95)] : NaN;
loads.sort((a, b) => a - b);
console.log(JSON.stringify({
  workloads, edges: edgeCount, drawn,
  load_ms: { median: Math.round(loads[2]), min: Math.round(loads[0]), max: Math.round(loads[4]) },
  panzoom: { seconds: Number(span.toFixed(2)), frames: ts.length, fps: Number(((ts.length - 1) / span).toFixed(1)), p95_frame_gap_ms: Number(p95gap.toFixed(1)), event: draws.length ? "DrawFrame" : "Commit" },
}, null, 1));
await browser.close();
server.close();
