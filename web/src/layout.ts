// A deterministic, stable layout: each namespace (group) gets a cell of a grid in sorted
// order, each workload a slot on a sunflower spiral inside its group's cell, kept for the
// page's life. Refreshing the data never moves a node that was already placed.

export interface Point {
  x: number;
  y: number;
}

const golden = Math.PI * (3 - Math.sqrt(5));
const nodeGap = 1; // graph units between neighbouring workloads

export class Layout {
  private slots = new Map<string, Map<string, number>>(); // group → id → slot
  private groups: string[] = [];
  private cell = 6; // side of a group's cell, grown (rarely) to fit the largest group

  // register gives id a slot in its group (once); call it for every node before position.
  register(group: string, id: string) {
    let g = this.slots.get(group);
    if (!g) {
      g = new Map();
      this.slots.set(group, g);
      this.groups = [...this.slots.keys()].sort();
    }
    let slot = g.get(id);
    if (slot === undefined) {
      slot = g.size;
      g.set(id, slot);
      const need = 2 * this.radiusOf(g.size) + 2 * nodeGap;
      if (need > this.cell) this.cell = Math.ceil(need * 1.25);
    }
  }

  position(group: string, id: string): Point {
    const slot = this.slots.get(group)?.get(id) ?? 0;
    const c = this.center(group);
    const r = nodeGap * Math.sqrt(slot + 0.5) * 0.9;
    return { x: c.x + r * Math.cos(slot * golden), y: c.y + r * Math.sin(slot * golden) };
  }

  radiusOf(n: number): number {
    return nodeGap * Math.sqrt(n + 0.5) * 0.9 + nodeGap;
  }

  groupRadius(group: string): number {
    return this.radiusOf(this.slots.get(group)?.size ?? 1);
  }

  center(group: string): Point {
    const i = Math.max(0, this.groups.indexOf(group));
    const cols = Math.max(1, Math.ceil(Math.sqrt(this.groups.length)));
    return { x: (i % cols) * this.cell, y: -Math.floor(i / cols) * this.cell };
  }

  // bbox covers every cell, so the camera's frame changes only when the grid grows.
  bbox(): { x: [number, number]; y: [number, number] } {
    const cols = Math.max(1, Math.ceil(Math.sqrt(this.groups.length)));
    const rows = Math.max(1, Math.ceil(this.groups.length / cols));
    const h = this.cell / 2;
    return { x: [-h, (cols - 1) * this.cell + h], y: [-(rows - 1) * this.cell - h, h] };
  }

  allGroups(): string[] {
    return this.groups;
  }
}

// groupOf names the group a node is drawn in: its namespace, or a pseudo-namespace.
export function groupOf(n: { id: string; kind: string; namespace?: string }): string {
  if (n.namespace) return n.namespace;
  if (n.kind === "unattributed") return "(unattributed)";
  if (n.kind === "network") return "(networks)";
  return "(hosts)";
}
