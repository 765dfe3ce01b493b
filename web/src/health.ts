// Edge health as the map colours it: the API's classification by failures and retransmits
// (docs/api.md), made worse by a slow RTT. RTT thresholds are fixed, plus one relative to the
// edge's own typical RTT (its median), so that a tail far above what the edge usually sees
// shows even on a fast network.
import type { GraphEdge } from "./api";
import { micros, pct } from "./format";

export type Health = "healthy" | "degraded" | "failing" | "idle";

export const healthColour: Record<Health, string> = {
  healthy: "#4e8f6a",
  degraded: "#e69b00",
  failing: "#d62728",
  idle: "#b0b0b0",
};

export const rtt = {
  degradedP99Us: 100_000, // p99 ≥ 100 ms
  failingP99Us: 1_000_000, // p99 ≥ 1 s
  tailRatio: 10, // p99 ≥ 10 × p50 …
  tailMinUs: 10_000, // … and ≥ 10 ms (loopback medians are tens of µs)
};

// legendHTML explains the colours (shown beside the map).
export const legendTitle =
  "degraded: ≥ 1 % of connections failed, ≥ 5 % retransmits, or RTT p99 ≥ 100 ms or ≥ 10× the edge's p50 (and ≥ 10 ms); " +
  "failing: ≥ 20 % failed or RTT p99 ≥ 1 s; idle: no connection ended";

const rank: Record<Health, number> = { idle: 0, healthy: 1, degraded: 2, failing: 3 };

function worst(a: Health, b: Health): Health {
  return rank[b] > rank[a] ? b : a;
}

// rttHealth classifies an edge's RTT percentiles alone (healthy when unknown).
export function rttHealth(e: Pick<GraphEdge, "rtt_p50_us" | "rtt_p99_us">): Health {
  const p99 = e.rtt_p99_us ?? 0;
  const p50 = e.rtt_p50_us ?? 0;
  if (p99 >= rtt.failingP99Us) return "failing";
  if (p99 >= rtt.degradedP99Us || (p50 > 0 && p99 >= rtt.tailMinUs && p99 >= rtt.tailRatio * p50)) return "degraded";
  return "healthy";
}

// edgeHealth combines the API's health with the RTT's: an idle edge with a slow RTT (only
// long-lived connections, none ended) is shown degraded.
export function edgeHealth(e: GraphEdge): Health {
  const r = rttHealth(e);
  return e.health === "idle" && r === "healthy" ? "idle" : worst(e.health, r);
}

// aggregateHealth classifies the sum of several edges as docs/api.md classifies one, and
// takes the worst RTT of its members (percentiles do not add).
export function aggregateHealth(edges: GraphEdge[]): Health {
  if (edges.length === 1) return edgeHealth(edges[0]);
  let closed = 0, failed = 0, flows = 0, retrans = 0;
  let r: Health = "healthy";
  for (const e of edges) {
    closed += e.closed;
    failed += e.refused + e.timeout + e.reset;
    flows += e.flows;
    retrans += e.retransmits;
    r = worst(r, rttHealth(e));
  }
  const retransmitting = flows > 0 && retrans / flows >= 0.05;
  let h: Health;
  if (closed === 0) h = retransmitting ? "degraded" : "idle";
  else if (failed / closed >= 0.2) h = "failing";
  else if (failed / closed >= 0.01 || retransmitting) h = "degraded";
  else h = "healthy";
  return h === "idle" && r === "healthy" ? "idle" : worst(h, r);
}

// healthReasons says why an edge is not healthy, for the details panel.
export function healthReasons(e: GraphEdge): string[] {
  const out: string[] = [];
  if (e.failure_rate >= 0.01) out.push(`${pct(e.failure_rate)} of connections failed`);
  if (e.retransmit_rate >= 0.05) out.push(`retransmits on ${pct(e.retransmit_rate)} of flows`);
  const p99 = e.rtt_p99_us ?? 0, p50 = e.rtt_p50_us ?? 0;
  if (p99 >= rtt.degradedP99Us) out.push(`RTT p99 ${micros(p99)}`);
  else if (rttHealth(e) === "degraded") out.push(`RTT p99 ${micros(p99)} is ${Math.round(p99 / p50)}× its p50`);
  return out;
}
