// The service map: workloads as nodes grouped by namespace (collapsible), edges sized by
// volume and coloured by health, drawn by Sigma.js (WebGL) over a graphology graph.
import Graph from "graphology";
import Sigma from "sigma";
import { EdgeArrowProgram } from "sigma/rendering";
import type { Deps, GraphEdge, GraphNode } from "./api";
import { aggregateHealth, healthColour, type Health } from "./health";
import { groupOf, Layout } from "./layout";
import { LineEdgeProgram, MotionQuality, NodeProgram } from "./motion";

// paleColour keeps an edge's health readable while another one is selected.
const paleColour: Record<string, string> = { healthy: "#d3e3d8", degraded: "#f6e2bd", failing: "#f4c6c6", idle: "#ececec" };

const palette = ["#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#2ca02c", "#7f7f7f", "#bcbd22", "#ff7f0e", "#393b79"];

export interface Filters {
  q: string;
  port: string;
  collapsed: string[];
}

// DrawnEdge is one drawn edge: the API edges between the same two drawn nodes.
export interface DrawnEdge {
  src: string;
  dst: string;
  edges: GraphEdge[];
  bytes: number;
  health: Health;
}

export class ServiceMap {
  readonly graph = new Graph({ type: "directed", multi: false });
  readonly sigma: Sigma;
  private layout = new Layout();
  private overlay: HTMLCanvasElement;
  readonly motion: MotionQuality;
  private selected: { node?: string; edge?: string } = {};
  drawn = new Map<string, DrawnEdge>();
  nodes = new Map<string, GraphNode>();

  constructor(
    private container: HTMLElement,
    private onNode: (id: string) => void,
    private onEdge: (e: DrawnEdge) => void,
    private onGroup: (group: string) => void,
  ) {
    this.overlay = document.createElement("canvas");
    this.overlay.className = "groups-overlay";
    container.appendChild(this.overlay);
    this.sigma = new Sigma(this.graph, container, {
      enableEdgeEvents: true,
      allowInvalidContainer: true,
      defaultEdgeType: "arrow",
      nodeProgramClasses: { circle: NodeProgram },
      edgeProgramClasses: { arrow: EdgeArrowProgram, line: LineEdgeProgram },
      renderEdgeLabels: false,
      labelRenderedSizeThreshold: 5,
      labelDensity: 1,
      labelFont: "system-ui, sans-serif",
      zIndex: true,
      nodeReducer: (n, attrs) => this.reduceNode(n, attrs),
      edgeReducer: (e, attrs) => this.reduceEdge(e, attrs),
    });
    this.sigma.on("clickNode", ({ node }) => {
      const a = this.graph.getNodeAttributes(node);
      if (a.groupNode) this.onGroup(a.group as string);
      else this.onNode(node);
    });
    this.sigma.on("clickEdge", ({ edge }) => {
      const d = this.drawn.get(edge);
      if (d) this.onEdge(d);
    });
    this.sigma.on("afterRender", () => this.drawGroups());
    this.motion = new MotionQuality(this.sigma);
  }

  select(sel: { node?: string; edge?: string }) {
    this.selected = sel;
    this.sigma.refresh({ skipIndexation: true });
  }

  private reduceNode(n: string, attrs: Record<string, unknown>) {
    const s = this.selected;
    if (s.node && n !== s.node && !this.graph.areNeighbors(n, s.node)) {
      return { ...attrs, color: "#e4e4e4", label: "", zIndex: 0 };
    }
    if (s.edge) {
      const d = this.drawn.get(s.edge);
      if (d && n !== d.src && n !== d.dst) return { ...attrs, color: "#e4e4e4", zIndex: 0 };
    }
    if (n === s.node) return { ...attrs, highlighted: true, zIndex: 2 };
    return attrs;
  }

  private reduceEdge(e: string, attrs: Record<string, unknown>) {
    const s = this.selected;
    if (s.edge && e !== s.edge) return { ...attrs, color: paleColour[attrs.health as string] ?? "#ececec", zIndex: 0 };
    if (s.edge === e) return { ...attrs, size: (attrs.size as number) + 2, zIndex: 2 };
    if (s.node && !this.graph.hasExtremity(e, s.node)) return { ...attrs, color: paleColour[attrs.health as string] ?? "#ececec", zIndex: 0 };
    return attrs;
  }

  // update redraws the map from a deps answer; positions of known nodes never change.
  update(deps: Deps, f: Filters) {
    const collapsed = new Set(f.collapsed);
    const q = f.q.trim().toLowerCase();
    const port = f.port.trim() ? Number(f.port) : undefined;
    this.nodes = new Map(deps.nodes.map((n) => [n.id, n]));
    const drawnId = (id: string): string => {
      const n = this.nodes.get(id) ?? { id, kind: "unknown", name: id };
      const g = groupOf(n);
      return collapsed.has(g) ? "group:" + g : id;
    };
    const edges = deps.edges.filter((e) => {
      if (port !== undefined && e.port !== port) return false;
      if (q && !e.src.toLowerCase().includes(q) && !e.dst.toLowerCase().includes(q)) return false;
      return true;
    });
    const drawn = new Map<string, DrawnEdge>();
    for (const e of edges) {
      const s = drawnId(e.src);
      const d = drawnId(e.dst);
      if (s === d) continue;
      const key = s + "\u2192" + d;
      let de = drawn.get(key);
      if (!de) {
        de = { src: s, dst: d, edges: [], bytes: 0, health: "idle" };
        drawn.set(key, de);
      }
      de.edges.push(e);
      de.bytes += e.bytes_client_to_server + e.bytes_server_to_client;
    }
    for (const de of drawn.values()) de.health = aggregateHealth(de.edges);
    const wanted = new Set<string>();
    for (const de of drawn.values()) {
      wanted.add(de.src);
      wanted.add(de.dst);
    }
    if (!q && port === undefined) for (const n of deps.nodes) wanted.add(drawnId(n.id));
    this.sync(wanted, drawn);
    this.drawn = drawn;
    // Large maps hide labels while the camera moves (edges and nodes stay, see motion.ts).
    this.sigma.setSetting("hideLabelsOnMove", drawn.size > 1000);
    this.sigma.setCustomBBox(this.layout.bbox());
    this.sigma.refresh();
  }

  private sync(wanted: Set<string>, drawn: Map<string, DrawnEdge>) {
    const g = this.graph;
    g.forEachNode((n) => {
      if (!wanted.has(n)) g.dropNode(n);
    });
    const ids = [...wanted].sort();
    const groupOfId = (id: string) => (id.startsWith("group:") ? id.slice(6) : groupOf(this.nodes.get(id) ?? { id, kind: "unknown" }));
    for (const id of ids) if (!id.startsWith("group:")) this.layout.register(groupOfId(id), id);
    for (const n of this.nodes.values()) this.layout.register(groupOf(n), n.id);
    const groups = this.layout.allGroups();
    for (const id of ids) {
      const isGroup = id.startsWith("group:");
      const group = groupOfId(id);
      const pos = isGroup ? this.layout.center(group) : this.layout.position(group, id);
      const n = this.nodes.get(id);
      const colour = n?.kind === "unattributed" ? "#555555" : palette[Math.max(0, groups.indexOf(group)) % palette.length];
      const attrs = {
        ...pos,
        label: isGroup ? `${group} (collapsed)` : id,
        size: isGroup ? 14 : n?.kind === "service" ? 4 : 6,
        color: colour,
        group,
        groupNode: isGroup,
      };
      if (g.hasNode(id)) g.mergeNodeAttributes(id, attrs);
      else g.addNode(id, attrs);
    }
    g.forEachEdge((e) => {
      if (!drawn.has(e)) g.dropEdge(e);
    });
    let maxBytes = 1;
    for (const d of drawn.values()) maxBytes = Math.max(maxBytes, d.bytes);
    // Busy maps draw thinner edges, healthy ones translucent, so that failures stand out.
    const busy = drawn.size > 500;
    const maxSize = busy ? 2 : 5;
    for (const [key, d] of drawn) {
      const attrs = {
        size: (busy ? 0.5 : 1) + maxSize * Math.sqrt(Math.log1p(d.bytes) / Math.log1p(maxBytes)),
        color: busy && d.health === "healthy" ? "#bcd5c5" : healthColour[d.health],
        // Busy maps draw plain bands: arrow heads cost several times more per pixel in
        // software-rendered WebGL and are unreadable at that density (details give direction).
        type: busy ? "line" : "arrow",
        health: d.health,
        zIndex: d.health === "failing" ? 2 : d.health === "degraded" ? 1 : 0,
      };
      if (g.hasEdge(key)) g.mergeEdgeAttributes(key, attrs);
      else g.addDirectedEdgeWithKey(key, d.src, d.dst, attrs);
    }
  }

  // drawGroups outlines each namespace and names it, under the WebGL layers.
  private drawGroups() {
    const c = this.overlay;
    const { width, height } = this.container.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(width * dpr)) {
      c.width = Math.round(width * dpr);
      c.height = Math.round(height * dpr);
      c.style.width = width + "px";
      c.style.height = height + "px";
    }
    const ctx = c.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    for (const group of this.layout.allGroups()) {
      const center = this.layout.center(group);
      const p = this.sigma.graphToViewport(center);
      const edge = this.sigma.graphToViewport({ x: center.x + this.layout.groupRadius(group), y: center.y });
      const r = Math.abs(edge.x - p.x);
      ctx.beginPath();
      ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
      ctx.fillStyle = "rgba(120,140,170,0.06)";
      ctx.fill();
      ctx.strokeStyle = "rgba(120,140,170,0.35)";
      ctx.stroke();
      ctx.fillStyle = "#345";
      ctx.fillText(group, p.x - r * 0.7, p.y - r - 4);
    }
  }

  // viewportOf returns where a drawn node is on screen (tests and the benchmark click it).
  viewportOf(id: string): { x: number; y: number } | undefined {
    if (!this.graph.hasNode(id)) return undefined;
    const a = this.graph.getNodeAttributes(id);
    return this.sigma.graphToViewport({ x: a.x as number, y: a.y as number });
  }
}
