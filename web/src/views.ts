// The answer views: pathway validation, segmentation, availability, unattributed traffic.
import { parseAllDocuments, stringify } from "yaml";
import { get, post, type Counters, type EdgeKey, type GraphEdge, type Settings, type Violation } from "./api";
import { badge, bytes, endpointName, esc, micros, pct, table } from "./format";
import { edgeHealth } from "./health";

type Time = { from: string; to: string };

interface PathsAnswer {
  baseline_from: string;
  baseline_to: string;
  expected: Array<{ from: string; to: string; port: number; status: string; counters: Counters; failure_rate: number }>;
  changes: Array<{ edge: EdgeKey; change: string; baseline: Counters; current: Counters; failure_rate: number }>;
}

function expectYAML(s: Settings): string {
  if (!s.expect?.length) return "# expected paths, one per item:\n# - from: namespace/client\n#   to: namespace/server\n#   port: 8080\n";
  return "# expected paths (the demo's dependencies before its scripted failure)\n" + stringify(s.expect);
}

function parseYAML(text: string): unknown[] {
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`YAML: ${d.errors[0].message}`);
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

export function renderPathways(el: HTMLElement, s: Settings, time: () => Time, fail: (e: unknown) => void): () => Promise<void> {
  el.innerHTML = `<div class="form">
  <p>Expected paths are checked over the selected time range; <em>changes</em> lists dependencies that were healthy in the
  baseline (the same length just before) and vanished or started failing.</p>
  <textarea id="expect" rows="10" spellcheck="false" aria-label="expected paths (YAML)">${esc(expectYAML(s))}</textarea>
  <button id="check">Check paths</button></div><div id="paths-out"></div>`;
  const run = async () => {
    try {
      const docs = parseYAML((el.querySelector("#expect") as HTMLTextAreaElement).value);
      const expect = (docs.flat() as Array<Record<string, unknown>>).map((e) => ({ from: e.from, to: e.to, port: e.port }));
      const r = await post<PathsAnswer>("paths/check", time(), { expect });
      const order: Record<string, number> = { missing: 0, failing: 1, degraded: 2, healthy: 3 };
      const exp = [...r.expected].sort((a, b) => order[a.status] - order[b.status]);
      el.querySelector("#paths-out")!.innerHTML =
        `<h3>Changes against the baseline (${esc(r.baseline_from)} – ${esc(r.baseline_to)})</h3>` +
        table(
          ["edge", "change", "baseline connections", "now connections", "failure rate now"],
          r.changes.map((c) => [esc(`${c.edge.src} → ${c.edge.dst}:${c.edge.port}`), badge(c.change), String(c.baseline.opened), String(c.current.opened), pct(c.failure_rate)]),
          "path-changes",
        ) +
        `<h3>Expected paths</h3>` +
        table(
          ["from", "to", "port", "status", "connections", "failure rate"],
          exp.map((e) => [esc(e.from), esc(e.to), String(e.port), badge(e.status), String(e.counters.opened), pct(e.failure_rate)]),
          "path-expected",
        );
    } catch (e) {
      fail(e);
    }
  };
  el.querySelector("#check")!.addEventListener("click", run);
  return run;
}

function violationRows(vs: Violation[]): string[][] {
  return vs.map((v) => [esc(endpointName(v.client)), esc(endpointName(v.server)), String(v.port), String(v.flows), bytes(v.bytes), esc(v.reason)]);
}

const violationHead = ["client", "server", "port", "flows", "bytes", "reason"];

// policyBody turns pasted YAML (an allow-list and/or NetworkPolicies) into the API's body.
function policyBody(text: string): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const policies: unknown[] = [];
  for (const d of parseYAML(text)) {
    const items = Array.isArray(d) ? d : (d as { kind?: string; items?: unknown[] }).kind === "List" ? (d as { items: unknown[] }).items : [d];
    for (const it of items as Array<Record<string, unknown>>) {
      if (it.kind === "NetworkPolicy") policies.push(it);
      else if ("rules" in it) body.allow = it;
      else throw new Error("each YAML document must be an allow-list (default, rules) or a NetworkPolicy");
    }
  }
  if (policies.length) body.policies = policies;
  return body;
}

export function renderSegmentation(el: HTMLElement, s: Settings, time: () => Time, ns: () => string, fail: (e: unknown) => void): () => Promise<void> {
  el.innerHTML = `<div class="cols">
  <div class="form"><h3>Audit: declared policy</h3>
    <textarea id="policy" rows="12" spellcheck="false" aria-label="declared policy (YAML)">${esc(s.policy ?? "default: deny\nrules: []\n")}</textarea>
    <button id="audit">Audit flows</button><div id="audit-out"></div></div>
  <div class="form"><h3>Recommended NetworkPolicies</h3>
    <button id="recommend">Recommend from observed flows</button> <button id="copy" disabled>Copy YAML</button>
    <pre id="recommend-out" data-testid="recommended-yaml"></pre>
    <h3>What if: paste NetworkPolicies</h3>
    <textarea id="whatif" rows="8" spellcheck="false" aria-label="proposed NetworkPolicies (YAML)"></textarea>
    <button id="run-whatif">What would they block?</button><div id="whatif-out"></div></div></div>`;
  const $ = (q: string) => el.querySelector(q) as HTMLElement;
  const audit = async () => {
    try {
      const body = policyBody(($("#policy") as HTMLTextAreaElement).value);
      const r = await post<{ total: number; violations: Violation[] }>("policy/audit", { ...time(), namespace: ns() }, body);
      $("#audit-out").innerHTML = `<p data-testid="violation-total">${r.total} violation group(s)</p>` + table(violationHead, violationRows(r.violations), "violations");
    } catch (e) {
      fail(e);
    }
  };
  $("#audit").addEventListener("click", audit);
  $("#recommend").addEventListener("click", async () => {
    try {
      const r = await get<{ policies: unknown[]; skipped: string[] }>("policy/recommend", { ...time(), namespace: ns() });
      $("#recommend-out").textContent = r.policies.map((p) => stringify(p)).join("---\n") + (r.skipped?.length ? `# skipped (no shared labels): ${r.skipped.join(", ")}\n` : "");
      ($("#copy") as HTMLButtonElement).disabled = false;
    } catch (e) {
      fail(e);
    }
  });
  $("#copy").addEventListener("click", () => void navigator.clipboard?.writeText($("#recommend-out").textContent ?? ""));
  $("#run-whatif").addEventListener("click", async () => {
    try {
      const body = policyBody(($("#whatif") as HTMLTextAreaElement).value);
      if (!body.policies) throw new Error("paste at least one NetworkPolicy");
      const r = await post<{ total: number; blocked: Violation[]; allowed_flows: number }>("policy/whatif", { ...time(), namespace: ns() }, body);
      $("#whatif-out").innerHTML = `<p data-testid="whatif-total">${r.total} group(s) blocked, ${r.allowed_flows} flows allowed</p>` + table(violationHead, violationRows(r.blocked), "whatif-blocked");
    } catch (e) {
      fail(e);
    }
  });
  return audit;
}

interface Group {
  name: string;
  zone?: string;
  out: Counters;
  in: Counters;
  failure_rate: number;
  retransmit_rate: number;
  rtt_p99_us?: number;
  health: string;
}

export async function renderAvailability(el: HTMLElement, time: Time, ns: string) {
  const r = await get<{ edges: GraphEdge[]; nodes: Group[] }>("health", { ...time, namespace: ns, limit: 25 });
  el.innerHTML =
    `<h3>Worst edges</h3>` +
    table(
      ["edge", "health", "failed (refused/timeout/reset)", "failure rate", "retransmits", "RTT p50", "RTT p99"],
      r.edges.map((e) => [esc(`${e.src} → ${e.dst}:${e.port}`), badge(edgeHealth(e)), `${e.refused + e.timeout + e.reset} (${e.refused}/${e.timeout}/${e.reset})`, pct(e.failure_rate), String(e.retransmits), micros(e.rtt_p50_us), micros(e.rtt_p99_us)]),
      "worst-edges",
    ) +
    `<h3>Nodes</h3>` +
    table(
      ["node", "zone", "health", "failure rate", "retransmit rate", "RTT p99", "bytes out"],
      [...r.nodes].sort((a, b) => b.failure_rate - a.failure_rate).map((g) => [esc(g.name), esc(g.zone ?? ""), badge(g.health), pct(g.failure_rate), pct(g.retransmit_rate), micros(g.rtt_p99_us), bytes(g.out.bytes_client_to_server + g.out.bytes_server_to_client)]),
      "worst-nodes",
    );
}

const reasonText: Record<string, string> = {
  "no-owner": "nobody claimed the address at that time",
  gap: "the address's ownership history has a gap at that time",
  conflict: "two owners claimed the address at that time",
  stale: "older than the ownership horizon",
  external: "outside the cluster and in no named network",
};

export async function renderUnattributed(el: HTMLElement, time: Time) {
  const [r, deps] = await Promise.all([
    get<{ reasons: Array<{ reason: string; side: string; flows: number; bytes: number }> }>("unattributed", time),
    get<{ edges: GraphEdge[] }>("deps", time),
  ]);
  const edges = deps.edges.filter((e) => e.src.startsWith("unattributed:") || e.dst.startsWith("unattributed:"));
  el.innerHTML =
    `<p>Flows whose end could not be named are kept and shown with the reason, never dropped or guessed.</p>` +
    table(["reason", "side", "flows", "bytes", "meaning"], r.reasons.map((x) => [esc(x.reason), esc(x.side), String(x.flows), bytes(x.bytes), esc(reasonText[x.reason] ?? "")]), "unattributed-reasons") +
    `<h3>Edges with an unattributed end</h3>` +
    table(["edge", "connections", "bytes", "health"], edges.map((e) => [esc(`${e.src} → ${e.dst}:${e.port}`), String(e.opened), bytes(e.bytes_client_to_server + e.bytes_server_to_client), badge(e.health)]), "unattributed-edges");
}
