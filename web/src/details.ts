// The details panel: an edge's numbers and recent flows, a workload's dependencies.
import { edgeParams, get, type EdgeDetail, type GraphEdge, type WorkloadDetail } from "./api";
import { badge, bytes, endpointName, esc, micros, num, pct, table } from "./format";
import { edgeHealth, healthReasons } from "./health";
import type { DrawnEdge } from "./map";

export function edgeId(e: GraphEdge): string {
  return [e.src, e.dst, e.port, e.service ?? "", e.direction].join("|");
}

export function parseEdgeId(s: string) {
  const [src, dst, port, service, direction] = s.split("|");
  return { src, dst, port: Number(port), service: service || undefined, direction: direction || "internal" };
}

function label(e: { src: string; dst: string; port: number; service?: string }): string {
  return `${e.src} → ${e.dst}:${e.port}` + (e.service ? ` via ${e.service}` : "");
}

// drawnEdgeHTML lists the API edges behind a drawn edge (several ports, or a collapsed group).
export function drawnEdgeHTML(d: DrawnEdge): string {
  const rows = d.edges.map((e) => [
    `<a href="#" data-edge="${esc(edgeId(e))}">${esc(label(e))}</a>`,
    bytes(e.bytes_client_to_server + e.bytes_server_to_client),
    String(e.opened),
    badge(edgeHealth(e)),
  ]);
  return `<h3>${esc(d.src)} → ${esc(d.dst)}</h3>` + table(["edge", "bytes", "connections", "health"], rows, "drawn-edges");
}

export async function edgeHTML(id: string, time: { from: string; to: string }): Promise<string> {
  const k = parseEdgeId(id);
  const d = await get<EdgeDetail>("edge", { ...edgeParams(k), ...time, limit: 20 });
  const e = d.edge;
  const failed = e.refused + e.timeout + e.reset;
  const flows = d.flows.map((f) => [
    esc(f.end.replace("T", " ").replace(/\.\d+Z$/, "Z")),
    esc(endpointName(f.client)),
    esc(`${f.server.addr}:${f.server.port}`),
    esc(bytes(f.bytes_client_to_server)) + " / " + esc(bytes(f.bytes_server_to_client)),
    esc(f.outcome),
  ]);
  return `<div data-testid="edge-details" data-edge="${esc(id)}">
  <h3>${esc(label(e))} ${badge(edgeHealth(e))}</h3>
  ${healthReasons(e).length ? `<p class="reasons" data-testid="health-reasons">${esc(healthReasons(e).join("; "))}</p>` : ""}
  <dl class="kv">
    <dt>bytes client → server</dt><dd>${num("bytes_client_to_server", e.bytes_client_to_server, bytes(e.bytes_client_to_server))}</dd>
    <dt>bytes server → client</dt><dd>${num("bytes_server_to_client", e.bytes_server_to_client, bytes(e.bytes_server_to_client))}</dd>
    <dt>connections opened</dt><dd>${num("opened", e.opened)}</dd>
    <dt>connections closed</dt><dd>${num("closed", e.closed)}</dd>
    <dt>failed</dt><dd>${num("failed", failed)} (${pct(e.failure_rate)})</dd>
    <dt>· refused</dt><dd>${num("refused", e.refused)}</dd>
    <dt>· timed out</dt><dd>${num("timeout", e.timeout)}</dd>
    <dt>· reset</dt><dd>${num("reset", e.reset)}</dd>
    <dt>RTT p50 / p99</dt><dd>${num("rtt_p50_us", e.rtt_p50_us ?? -1, micros(e.rtt_p50_us))} / ${num("rtt_p99_us", e.rtt_p99_us ?? -1, micros(e.rtt_p99_us))}</dd>
    <dt>retransmits</dt><dd>${num("retransmits", e.retransmits)} (${pct(e.retransmit_rate)} of flows)</dd>
    <dt>port</dt><dd>${num("port", e.port, String(e.port))} ${e.service ? "via " + esc(e.service) : ""} (${esc(e.direction)})</dd>
  </dl>
  <h4>Recent flows</h4>
  ${table(["end", "client", "server", "bytes →/←", "outcome"], flows, "recent-flows")}
</div>`;
}

function depRows(edges: GraphEdge[], peer: (e: GraphEdge) => string): string[][] {
  return edges.map((e) => [
    `<a href="#" data-edge="${esc(edgeId(e))}">${esc(peer(e))}</a>`,
    String(e.port),
    bytes(e.bytes_client_to_server + e.bytes_server_to_client),
    String(e.opened),
    badge(edgeHealth(e)),
  ]);
}

export async function workloadHTML(id: string, time: { from: string; to: string }): Promise<string> {
  const d = await get<WorkloadDetail>("workload", { id, ...time });
  const head = ["peer", "port", "bytes", "connections", "health"];
  return `<div data-testid="workload-details" data-node="${esc(id)}">
  <h3>${esc(id)}</h3>
  <p>${esc(d.node.kind)}${d.node.workload_kind ? " · " + esc(d.node.workload_kind) : ""}</p>
  <h4>Outbound dependencies (${d.out.length})</h4>
  ${table(head, depRows(d.out, (e) => e.dst + (e.service ? ` (via ${e.service})` : "")), "deps-out")}
  <h4>Inbound dependencies (${d.in.length})</h4>
  ${table(head, depRows(d.in, (e) => e.src), "deps-in")}
</div>`;
}
