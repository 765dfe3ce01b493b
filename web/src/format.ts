// Number formatting and small DOM helpers shared by the views.

export function bytes(n: number): string {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
}

export function micros(us?: number): string {
  if (us === undefined || us === null) return "–";
  return us >= 1000 ? (us / 1000).toFixed(1) + " ms" : us + " µs";
}

export function pct(f: number): string {
  return (100 * f).toFixed(f > 0 && f < 0.001 ? 2 : 1) + " %";
}

export function esc(s: unknown): string {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

// num renders a number with its raw value kept in data-value (tests compare it with the API).
export function num(field: string, value: number, shown?: string): string {
  return `<span data-field="${esc(field)}" data-value="${value}">${esc(shown ?? value.toLocaleString("en"))}</span>`;
}

export function badge(health: string): string {
  return `<span class="health ${esc(health)}">${esc(health)}</span>`;
}

export function table(head: string[], rows: string[][], testid: string): string {
  if (rows.length === 0) return `<p class="empty" data-testid="${esc(testid)}">Nothing in this time range.</p>`;
  const th = head.map((h) => `<th>${esc(h)}</th>`).join("");
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("");
  return `<table data-testid="${esc(testid)}"><thead><tr>${th}</tr></thead><tbody>${tr}</tbody></table>`;
}

export function endpointName(e: { kind: string; namespace?: string; workload?: string; network?: string; node?: string; service?: string; reason?: string; addr: string }): string {
  switch (e.kind) {
    case "unattributed":
      return `unattributed:${e.reason ?? "?"} (${e.addr})`;
    case "network":
      return `network/${e.network}`;
    case "node":
      return `node/${e.node}`;
    case "service":
      return `${e.namespace}/svc/${e.service}`;
  }
  return e.namespace ? `${e.namespace}/${e.workload}` : (e.workload ?? e.addr);
}
