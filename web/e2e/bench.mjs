// Console benchmark: load time of the service map with N workloads and M edges, and pan/zoom
// frame rate from Chromium's performance trace. The built console (web/dist) is served with a
// synthetic API answer of that size, so the figures are the browser's alone.
//   node web/e2e/bench.mjs [workloads=1000] [edges=5000] [--baseline GIT-REF] [--rounds 5]
// A 10-workload map is measured alongside as the machine's ceiling. --baseline also serves the web/dist committed at GIT-REF and measures both builds in the
// same run, alternating, so that the machine's load (shared cores) hits both alike.
// BENCH_TOP=1 prints the trace's heaviest events; BENCH_SHOT=file.png saves a screenshot
// taken while the camera moves.
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { readFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { launchBrowser } from "./harness.mjs";

const { values: opts, positionals } = parseArgs({ allowPositionals: true, options: { baseline: { type: "string" }, rounds: { type: "string", default: "5" } } });
const workloads = Number(positionals[0] ?? 1000);
const edgeCount = Number(positionals[1] ?? 5000);
const rounds = Number(opts.rounds);
const repo = path.resolve(import.meta.dirname, "../..");

// A deterministic synthetic graph: 25 namespaces, each workload calling a few others.
function graph(workloads, edgeCount) {
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
    const p50 = 200 + rnd() * 2000, slow = rnd() < 0.03;
    edges.push({
      src: s.id, dst: d.id, port: 8080, direction: "internal", flows: opened, bytes_client_to_server: Math.floor(rnd() * 1e8),
      bytes_server_to_client: Math.floor(rnd() * 1e9), opened, closed: opened, refused: failed, timeout: 0, reset: 0, retransmits: 0,
      rtt_p50_us: p50, rtt_p99_us: slow ? p50 * 40 : p50 * 3,
      peak_bytes_per_minute: 0, failure_rate: failed / opened, retransmit_rate: 0,
      health: failed / opened >= 0.2 ? "failing" : failed / opened >= 0.01 ? "degraded" : "healthy",
    });
  }
  return { nodes, edges };
}

function answersFor(g) {
  return {
    "/api/v1/deps": { from: "2026-01-01T00:00:00Z", to: "2026-01-01T01:00:00Z", ...g },
    "/api/v1/nodes": { namespaces: [...new Set(g.nodes.map((n) => n.namespace))].sort(), nodes: g.nodes },
    "/console/settings.json": { mode: "live" },
  };
}
const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };

// serve serves one build of the console with the synthetic answers.
async function serve(dist, answers) {
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
  return { server, url: `http://127.0.0.1:${server.address().port}/?view=map&range=1h` };
}

// The small map measures the machine's ceiling under the same load: a frame that draws almost
// nothing still costs the compositing of the page.
const big = answersFor(graph(workloads, edgeCount));
const variants = [
  { name: "current", ...(await serve(path.join(repo, "web/dist"), big)) },
  { name: "current, 10 workloads / 20 edges (ceiling)", ...(await serve(path.join(repo, "web/dist"), answersFor(graph(10, 20)))) },
];
let baselineDir;
if (opts.baseline) {
  baselineDir = mkdtempSync(path.join(tmpdir(), "flowscope-bench-"));
  const tar = execFileSync("git", ["-C", repo, "archive", opts.baseline, "web/dist"]);
  execFileSync("tar", ["-x", "-C", baselineDir], { input: tar });
  variants.unshift({ name: `baseline ${opts.baseline}`, ...(await serve(path.join(baselineDir, "web/dist"), big)) });
}

const browser = await launchBrowser();

// load opens the console and returns the page and navigation start → map drawn with data
// (Sigma renders synchronously on refresh).
async function load(url) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 850 } });
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.loaded, null, { timeout: 60_000 });
  const ms = await page.evaluate(() => Number(document.body.dataset.loaded) - performance.timeOrigin);
  return { page, ms };
}

// panZoom runs four one-second camera animations (zoom in, pan, zoom out, pan back, as a wheel
// zoom or an inertial drag moves the camera) under a trace and counts DrawFrame events.
async function panZoom(page, shotFile) {
  await page.waitForTimeout(300);
  const categories = ["devtools.timeline", "disabled-by-default-devtools.timeline.frame"];
  if (process.env.BENCH_TOP) categories.push("gpu", "cc", "viz");
  await browser.startTracing(page, { categories });
  const moving = page.evaluate(async () => {
    const sg = window.flowscope.map.sigma;
    const cam = sg.getCamera();
    for (const s of [{ ratio: 0.3 }, { x: 0.8, y: 0.3 }, { ratio: 1.2 }, { x: 0.5, y: 0.5, ratio: 1 }]) {
      await cam.animate(s, { duration: 1000, easing: "linear" });
    }
    return { hideEdgesOnMove: sg.getSetting("hideEdgesOnMove"), motionScale: window.flowscope.map.motion?.scale };
  });
  if (shotFile) {
    await page.waitForTimeout(1500);
    await page.screenshot({ path: shotFile });
  }
  const settings = await moving;
  const trace = JSON.parse((await browser.stopTracing()).toString());
  const events = trace.traceEvents ?? trace;
  if (process.env.BENCH_TOP) {
    const tot = {};
    for (const e of events) if (e.ph === "X" && e.dur) tot[`${e.name}@${e.pid}/${e.tid}`] = (tot[`${e.name}@${e.pid}/${e.tid}`] ?? 0) + e.dur / 1000;
    console.log(Object.entries(tot).sort((a, b) => b[1] - a[1]).slice(0, 15));
  }
  const ts = events.filter((e) => e.name === "DrawFrame").map((e) => e.ts).sort((a, b) => a - b);
  const span = (ts[ts.length - 1] - ts[0]) / 1e6;
  return { fps: (ts.length - 1) / span, edgesWhileMoving: !settings.hideEdgesOnMove, motionScale: settings.motionScale };
}

const results = new Map(variants.map((v) => [v.name, { load: [], fps: [], edgesWhileMoving: undefined }]));
for (let round = 0; round < rounds; round++) {
  for (const v of variants) {
    const r = results.get(v.name);
    const { page, ms } = await load(v.url);
    r.load.push(ms);
    const drawn = await page.evaluate(() => ({ nodes: window.flowscope.map.graph.order, edges: window.flowscope.map.graph.size }));
    r.drawn = drawn;
    const shot = round === 0 && process.env.BENCH_SHOT ? process.env.BENCH_SHOT.replace(/\.png$/, `-${v.name.split(" ")[0]}.png`) : undefined;
    const f = await panZoom(page, shot);
    r.fps.push(f.fps);
    r.edgesWhileMoving = f.edgesWhileMoving;
    (r.motionScales ??= []).push(f.motionScale);
    await page.close();
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const round1 = (x) => Math.round(x * 10) / 10;
const out = { workloads, edges: edgeCount, rounds, loadavg_1m: round1(loadavg()[0]), variants: {} };
for (const [name, r] of results) {
  out.variants[name] = {
    drawn: r.drawn,
    load_ms: { median: Math.round(median(r.load)), min: Math.round(Math.min(...r.load)), max: Math.round(Math.max(...r.load)) },
    panzoom_fps: { median: round1(median(r.fps)), min: round1(Math.min(...r.fps)), max: round1(Math.max(...r.fps)), edges_drawn_while_moving: r.edgesWhileMoving, motion_resolution_reached: r.motionScales },
  };
}
console.log(JSON.stringify(out, null, 1));
await browser.close();
for (const v of variants) v.server.close();
if (baselineDir) rmSync(baselineDir, { recursive: true, force: true });
