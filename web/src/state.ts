// The view state lives in the URL's query, so any view can be shared and restored.

export type View = "map" | "pathways" | "segmentation" | "availability" | "unattributed";

export interface State {
  view: View;
  range: string; // "5m" … "7d", or "abs" with from/to
  from: string; // RFC 3339 (absolute ranges)
  to: string;
  ns: string; // "" = all namespaces
  q: string; // name filter
  port: string;
  edge: string; // selected edge: src|dst|port|service|direction
  node: string; // selected workload id
  collapsed: string[]; // collapsed namespaces
}

const views: View[] = ["map", "pathways", "segmentation", "availability", "unattributed"];
export const ranges = ["5m", "15m", "1h", "6h", "24h", "7d"];

export function readState(search: string): State {
  const p = new URLSearchParams(search);
  const view = p.get("view") as View;
  const range = p.get("range") ?? "15m";
  return {
    view: views.includes(view) ? view : "map",
    range: range === "abs" || ranges.includes(range) ? range : "15m",
    from: p.get("from") ?? "",
    to: p.get("to") ?? "",
    ns: p.get("ns") ?? "",
    q: p.get("q") ?? "",
    port: p.get("port") ?? "",
    edge: p.get("edge") ?? "",
    node: p.get("node") ?? "",
    collapsed: (p.get("collapsed") ?? "").split(",").filter((s) => s !== ""),
  };
}

export function writeState(s: State): string {
  const p = new URLSearchParams();
  p.set("view", s.view);
  p.set("range", s.range);
  if (s.range === "abs") {
    p.set("from", s.from);
    p.set("to", s.to);
  }
  for (const k of ["ns", "q", "port", "edge", "node"] as const) {
    if (s[k]) p.set(k, s[k]);
  }
  if (s.collapsed.length) p.set("collapsed", [...s.collapsed].sort().join(","));
  return "?" + p.toString();
}

// timeParams are the API's from/to for the state's range.
export function timeParams(s: State): { from: string; to: string } {
  if (s.range === "abs" && s.from && s.to) return { from: s.from, to: s.to };
  return { from: "-" + (s.range === "7d" ? "168h" : s.range), to: "now" };
}
