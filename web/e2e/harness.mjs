// Shared set-up of the console's end-to-end tests: a real `flowscope standalone --demo` and
// Debian's Chromium driven by playwright-core.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const artifacts = path.resolve(import.meta.dirname, "artifacts");

export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
];

// launchBrowser starts Chromium; FLOWSCOPE_CHROMIUM_GL=swiftshader keeps GPU compositing
// (WebGL and compositing both on SwiftShader) instead of --disable-gpu's software compositor.
export async function launchBrowser() {
  let args = chromiumArgs;
  if (process.env.FLOWSCOPE_CHROMIUM_GL === "swiftshader") {
    args = args.filter((a) => a !== "--disable-gpu").concat(["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]);
  }
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args });
}

// startStandalone runs the binary named by FLOWSCOPE_BIN and resolves with its console URL.
export async function startStandalone(extra = []) {
  const bin = process.env.FLOWSCOPE_BIN;
  if (!bin) throw new Error("set FLOWSCOPE_BIN to a built flowscope binary");
  const dir = mkdtempSync(path.join(tmpdir(), "flowscope-e2e-"));
  const ready = path.join(dir, "ready");
  const child = spawn(bin, ["standalone", "--demo", "--listen", "127.0.0.1:0", "--data-dir", path.join(dir, "data"), "--ready-file", ready, "--log-level", "warn", ...extra], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  child.stdout.on("data", () => {});
  const deadline = Date.now() + 90_000;
  while (!existsSync(ready)) {
    if (child.exitCode !== null) throw new Error(`standalone exited ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`standalone not ready in 90 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const url = readFileSync(ready, "utf8").trim();
  const stop = async () => {
    child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
    rmSync(dir, { recursive: true, force: true });
  };
  return { url, stop, stderr: () => stderr };
}

export async function api(base, route, params = {}) {
  const q = new URLSearchParams(params);
  const res = await fetch(new URL(`/api/v1/${route}?${q}`, base));
  const body = await res.json();
  if (!res.ok) throw new Error(`${route}: ${res.status} ${body.error}`);
  return body;
}

// waitLoaded waits until the page has drawn data newer than `after`.
export async function waitLoaded(page, after = 0) {
  await page.waitForFunction((t) => Number(document.body.dataset.loaded ?? 0) > t, after, { timeout: 20_000 });
}

export async function shot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, name + ".png") });
}

// minuteRange returns an absolute [from, to) that ends two minutes ago on a minute boundary
// (minutes the store has written), as RFC 3339.
export function minuteRange(minutes, endAgo = 2) {
  const to = Math.floor(Date.now() / 60_000) * 60_000 - endAgo * 60_000;
  const iso = (ms) => new Date(ms).toISOString().replace(/\.000Z$/, "Z");
  return { from: iso(to - minutes * 60_000), to: iso(to) };
}

// drawnPairs turns API edges into the set of drawn src→dst pairs.
export function drawnPairs(edges) {
  return new Set(edges.filter((e) => e.src !== e.dst).map((e) => `${e.src}\u2192${e.dst}`));
}
