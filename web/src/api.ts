// Typed access to flowscope's JSON API (docs/api.md). Every failure becomes an ApiError with
// a message fit to show: the console never fails silently.

export interface Counters {
  flows: number;
  bytes_client_to_server: number;
  bytes_server_to_client: number;
  opened: number;
  closed: number;
  refused: number;
  timeout: number;
  reset: number;
  retransmits: number;
  peak_bytes_per_minute: number;
}

export interface EdgeKey {
  src: string;
  dst: string;
  service?: string;
  port: number;
  direction: string;
}

export interface GraphEdge extends EdgeKey, Counters {
  failure_rate: number;
  retransmit_rate: number;
  rtt_p50_us?: number;
  rtt_p99_us?: number;
  health: "healthy" | "degraded" | "failing" | "idle";
}

export interface GraphNode {
  id: string;
  kind: string;
  namespace?: string;
  name: string;
  workload_kind?: string;
}

export interface Deps {
  from: string;
  to: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface Endpoint {
  addr: string;
  port: number;
  kind: string;
  namespace?: string;
  workload?: string;
  pod?: string;
  node?: string;
  service?: string;
  network?: string;
  reason?: string;
}

export interface Conn {
  start: string;
  end: string;
  client: Endpoint;
  server: Endpoint;
  bytes_client_to_server: number;
  bytes_server_to_client: number;
  retransmits: number;
  client_srtt_us?: number;
  outcome: string;
}

export interface EdgeDetail {
  edge: GraphEdge;
  series: Array<Counters & { time: string }>;
  flows: Conn[];
}

export interface WorkloadDetail {
  node: GraphNode;
  out: GraphEdge[];
  in: GraphEdge[];
}

export interface Violation {
  client: Endpoint;
  server: Endpoint;
  port: number;
  flows: number;
  bytes: number;
  first: string;
  last: string;
  rule: string;
  reason: string;
}

export interface Settings {
  mode: string;
  note?: string;
  expect?: Array<{ from: string; to: string; port: number }>;
  policy?: string;
  events?: Array<{ at: string; what: string }>;
}

export class ApiError extends Error {}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(`cannot reach the flowscope server (${(e as Error).message})`);
  }
  let body: unknown;
  const text = await res.text();
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(`${path.split("?")[0]}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const msg = (body as { error?: string }).error ?? `HTTP ${res.status}`;
    throw new ApiError(`${path.split("?")[0]}: ${msg}`);
  }
  return body as T;
}

export function get<T>(route: string, params: Record<string, string | number | undefined>): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== "") q.set(k, String(v));
  }
  return request<T>(`/api/v1/${route}?${q}`);
}

export function post<T>(route: string, params: Record<string, string | undefined>, body: unknown): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== "") q.set(k, v);
  }
  return request<T>(`/api/v1/${route}?${q}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

export function settings(): Promise<Settings> {
  return request<Settings>("/console/settings.json");
}

export function edgeParams(k: EdgeKey): Record<string, string> {
  const p: Record<string, string> = { src: k.src, dst: k.dst, port: String(k.port), direction: k.direction };
  if (k.service) p.service = k.service;
  return p;
}
