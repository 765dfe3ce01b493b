// The flowscope console: a single page whose whole state is in the URL.
import "./style.css";
import { get, settings as loadSettings, type Deps, type Settings } from "./api";
import { drawnEdgeHTML, edgeHTML, edgeId, workloadHTML } from "./details";
import { esc } from "./format";
import { healthColour, legendTitle } from "./health";
import { ServiceMap, type DrawnEdge } from "./map";
import { readState, timeParams, writeState, type State, type View } from "./state";
import { renderAvailability, renderPathways, renderSegmentation, renderUnattributed } from "./views";

const $ = <T extends HTMLElement = HTMLElement>(q: string) => document.querySelector(q) as T;

let state: State = readState(location.search);
let settings: Settings = { mode: "live" };
let map: ServiceMap | undefined;
let lastDeps: Deps | undefined;
let refreshTimer: number | undefined;
const reruns = new Map<View, () => Promise<void>>();

function showError(e: unknown) {
  const el = $("#error");
  el.textContent = e instanceof Error ? e.message : String(e);
  el.hidden = false;
}

function clearError() {
  $("#error").hidden = true;
}

function setState(patch: Partial<State>, reload = true) {
  state = { ...state, ...patch };
  history.replaceState(null, "", writeState(state));
  if (reload) void refresh();
}

function time() {
  return timeParams(state);
}

// toLocalInput and fromLocalInput convert RFC 3339 (UTC) to datetime-local values (shown as UTC).
const toLocalInput = (s: string) => (s ? s.replace(/Z$/, "").slice(0, 16) : "");
const fromLocalInput = (s: string) => (s ? new Date(s + ":00Z").toISOString().replace(/\.000Z$/, "Z") : "");

function syncControls() {
  $<HTMLSelectElement>("#range").value = state.range;
  $("#absolute").hidden = state.range !== "abs";
  $<HTMLInputElement>("#from").value = toLocalInput(state.from);
  $<HTMLInputElement>("#to").value = toLocalInput(state.to);
  $<HTMLInputElement>("#q").value = state.q;
  $<HTMLInputElement>("#port").value = state.port;
  $<HTMLInputElement>("#live").disabled = state.range === "abs";
  for (const a of document.querySelectorAll<HTMLAnchorElement>("#views a")) {
    a.classList.toggle("active", a.dataset.view === state.view);
  }
  for (const v of ["map", "pathways", "segmentation", "availability", "unattributed"]) {
    $("#view-" + v).hidden = v !== state.view;
  }
}

async function refreshNamespaces() {
  const r = await get<{ namespaces: string[] }>("nodes", {});
  const sel = $<HTMLSelectElement>("#ns");
  const opts = ['<option value="">all namespaces</option>'].concat(r.namespaces.map((n) => `<option>${esc(n)}</option>`));
  if (state.ns && !r.namespaces.includes(state.ns)) opts.push(`<option>${esc(state.ns)}</option>`);
  sel.innerHTML = opts.join("");
  sel.value = state.ns;
}

function renderGroups(deps: Deps) {
  const counts = new Map<string, number>();
  for (const n of deps.nodes) {
    const g = n.namespace ?? (n.kind === "unattributed" ? "(unattributed)" : n.kind === "network" ? "(networks)" : "(hosts)");
    counts.set(g, (counts.get(g) ?? 0) + 1);
  }
  const collapsed = new Set(state.collapsed);
  $("#groups").innerHTML =
    "<h4>Groups</h4>" +
    [...counts.keys()]
      .sort()
      .map((g) => `<label><input type="checkbox" data-group="${esc(g)}" ${collapsed.has(g) ? "" : "checked"}> ${esc(g)} (${counts.get(g)})</label>`)
      .join("");
  const unattr = deps.edges.filter((e) => e.src.startsWith("unattributed:") || e.dst.startsWith("unattributed:")).length;
  $("#counts").innerHTML = `<p data-testid="map-counts" data-nodes="${deps.nodes.length}" data-edges="${deps.edges.length}">${deps.nodes.length} nodes, ${deps.edges.length} edges` + (unattr ? `, <a href="#" data-goto="unattributed">${unattr} with an unattributed end</a>` : "") + "</p>";
}

// prefetched is the first deps answer, requested while Sigma sets up WebGL (main).
let prefetched: Promise<Deps> | undefined;

const fetchDeps = () => get<Deps>("deps", { ...time(), namespace: state.ns, rtt: "1" });

async function refreshMap() {
  const deps = await (prefetched ?? fetchDeps());
  prefetched = undefined;
  lastDeps = deps;
  map!.update(deps, { q: state.q, port: state.port, collapsed: state.collapsed });
  renderGroups(deps);
  document.body.dataset.loaded = String(Date.now());
  await refreshSelection();
}

async function refreshSelection() {
  const el = $("#details");
  if (state.edge) {
    map!.select({ edge: drawnKeyOf(state.edge) });
    el.innerHTML = await edgeHTML(state.edge, time());
  } else if (state.node) {
    map!.select({ node: state.node });
    el.innerHTML = await workloadHTML(state.node, time());
  } else {
    map!.select({});
    el.innerHTML = '<p class="hint">Click a workload or an edge for details.</p>';
  }
}

// drawnKeyOf finds the drawn edge that carries an API edge id.
function drawnKeyOf(id: string): string | undefined {
  for (const [k, d] of map!.drawn) if (d.edges.some((e) => edgeId(e) === id)) return k;
  return undefined;
}

async function refresh() {
  syncControls();
  clearError();
  try {
    switch (state.view) {
      case "map":
        await refreshMap();
        break;
      case "availability":
        await renderAvailability($("#view-availability"), time(), state.ns);
        break;
      case "unattributed":
        await renderUnattributed($("#view-unattributed"), time());
        break;
      case "pathways":
        if (!reruns.has("pathways")) reruns.set("pathways", renderPathways($("#view-pathways"), settings, time, showError));
        await reruns.get("pathways")!();
        break;
      case "segmentation":
        if (!reruns.has("segmentation")) reruns.set("segmentation", renderSegmentation($("#view-segmentation"), settings, time, () => state.ns, showError));
        await reruns.get("segmentation")!();
        break;
    }
  } catch (e) {
    showError(e);
  }
  scheduleRefresh();
}

function scheduleRefresh() {
  window.clearTimeout(refreshTimer);
  const live = $<HTMLInputElement>("#live").checked && state.range !== "abs";
  if (live && (state.view === "map" || state.view === "availability" || state.view === "unattributed")) {
    refreshTimer = window.setTimeout(() => void refresh(), 10_000);
  }
}

function selectDrawn(d: DrawnEdge) {
  if (d.edges.length === 1) {
    setState({ edge: edgeId(d.edges[0]), node: "" }, false);
    void refreshSelection().catch(showError);
    return;
  }
  map!.select({ edge: d.src + "\u2192" + d.dst });
  $("#details").innerHTML = drawnEdgeHTML(d);
}

function bind() {
  $("#views").addEventListener("click", (ev) => {
    const a = (ev.target as HTMLElement).closest("a");
    if (!a) return;
    ev.preventDefault();
    setState({ view: a.dataset.view as View });
  });
  $("#range").addEventListener("change", () => {
    const v = $<HTMLSelectElement>("#range").value;
    if (v === "abs") {
      const now = new Date();
      const from = state.from || new Date(now.getTime() - 3600e3).toISOString().replace(/\.\d+Z$/, "Z");
      const to = state.to || now.toISOString().replace(/\.\d+Z$/, "Z");
      setState({ range: v, from, to });
    } else setState({ range: v, from: "", to: "" });
  });
  $("#apply-range").addEventListener("click", () => {
    setState({ range: "abs", from: fromLocalInput($<HTMLInputElement>("#from").value), to: fromLocalInput($<HTMLInputElement>("#to").value) });
  });
  $("#live").addEventListener("change", scheduleRefresh);
  $("#note").addEventListener("click", (ev) => {
    const a = (ev.target as HTMLElement).closest("a[data-from]") as HTMLAnchorElement | null;
    if (!a) return;
    ev.preventDefault();
    setState({ range: "abs", from: a.dataset.from!, to: a.dataset.to! });
  });
  let typing: number | undefined;
  const onFilter = () => {
    window.clearTimeout(typing);
    typing = window.setTimeout(() => {
      setState({ q: $<HTMLInputElement>("#q").value, port: $<HTMLInputElement>("#port").value }, false);
      if (lastDeps) map!.update(lastDeps, { q: state.q, port: state.port, collapsed: state.collapsed });
    }, 200);
  };
  $("#q").addEventListener("input", onFilter);
  $("#port").addEventListener("input", onFilter);
  $("#ns").addEventListener("change", () => setState({ ns: $<HTMLSelectElement>("#ns").value, edge: "", node: "" }));
  $("#groups").addEventListener("change", (ev) => {
    const g = (ev.target as HTMLInputElement).dataset.group!;
    const c = new Set(state.collapsed);
    if ((ev.target as HTMLInputElement).checked) c.delete(g);
    else c.add(g);
    setState({ collapsed: [...c] }, false);
    if (lastDeps) map!.update(lastDeps, { q: state.q, port: state.port, collapsed: state.collapsed });
  });
  document.body.addEventListener("click", (ev) => {
    const a = (ev.target as HTMLElement).closest("a[data-edge], a[data-goto]") as HTMLAnchorElement | null;
    if (!a) return;
    ev.preventDefault();
    if (a.dataset.goto) return setState({ view: a.dataset.goto as View });
    setState({ view: "map", edge: a.dataset.edge!, node: "" }, state.view !== "map");
    if (state.view === "map") void refreshSelection().catch(showError);
  });
  $("#legend").innerHTML =
    Object.entries(healthColour)
      .map(([h, c]) => `<span><i style="background:${c}"></i>${h}</span>`)
      .join("") + `<p class="legend-note">${esc(legendTitle)}</p>`;
}

// renderNote shows the server's note and its scripted events, each a link to its first minutes.
function renderNote() {
  const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
  const events = (settings.events ?? []).map((e) => {
    const at = Date.parse(e.at);
    return ` · <a href="#" data-testid="event" data-from="${iso(at)}" data-to="${iso(at + 120_000)}">${esc(e.what)} at ${esc(iso(at).slice(11, 16))} UTC</a>`;
  });
  $("#note").innerHTML = esc(settings.note ?? "") + events.join("");
}

async function main() {
  bind();
  syncControls();
  // The API calls start first: creating the map compiles Sigma's shaders, which takes a few
  // hundred milliseconds when WebGL runs in software, and the answers arrive meanwhile.
  const settingsP = loadSettings();
  const namespacesP = refreshNamespaces();
  if (state.view === "map") prefetched = fetchDeps();
  prefetched?.catch(() => {}); // refreshMap reports its error
  map = new ServiceMap(
    $("#graph"),
    (id) => {
      setState({ node: id, edge: "" }, false);
      void refreshSelection().catch(showError);
    },
    selectDrawn,
    (group) => {
      setState({ collapsed: state.collapsed.filter((g) => g !== group) }, false);
      if (lastDeps) map!.update(lastDeps, { q: state.q, port: state.port, collapsed: state.collapsed });
      renderGroups(lastDeps!);
    },
  );
  (window as unknown as { flowscope: unknown }).flowscope = { map, state: () => state, refresh };
  try {
    settings = await settingsP;
    renderNote();
    await namespacesP;
  } catch (e) {
    showError(e);
  }
  await refresh();
}

void main();
