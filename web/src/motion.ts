// Cheaper frames while the camera moves. Without a GPU (Chromium rasterises WebGL with
// SwiftShader and reads every WebGL canvas back for software compositing), a frame of a
// 1,000-workload map costs what its pixels cost. While a pan or zoom runs, the map therefore
// renders at a lower resolution (adapted to the frame time), skips Sigma's picking pass
// (hit-testing is not possible while moving anyway) and hides the hover layers; 150 ms after
// the camera stops it renders once at full quality, picking included. Edges and nodes stay
// drawn throughout.
import type Sigma from "sigma";
import { EdgeLineProgram, type EdgeRectangleProgram, NodeCircleProgram } from "sigma/rendering";
import type { RenderParams } from "sigma/types";

// moving is read by the programs below; one map per page.
let moving = false;

// motionScale multiplies the device pixel ratio that Sigma reads when it sizes its canvases
// (Sigma has no setting for it). Only this module changes it.
let motionScale = 1;
const ratioProperty = Object.getOwnPropertyDescriptor(window, "devicePixelRatio") ?? Object.getOwnPropertyDescriptor(Window.prototype, "devicePixelRatio");
if (ratioProperty?.get && ratioProperty.configurable !== false) {
  const real = ratioProperty.get;
  Object.defineProperty(window, "devicePixelRatio", { configurable: true, get: () => (real.call(window) as number) * motionScale });
}

// Sigma's programs draw twice per frame: on screen and into the picking framebuffer. The
// classes below skip the picking pass while the camera moves.
type Renderable = { new (...args: never[]): object };

function atRestPicking<B extends Renderable>(Base: B) {
  return class extends (Base as unknown as typeof EdgeRectangleProgram) {
    render(params: RenderParams) {
      if (!moving || !this.pickProgram) return super.render(params);
      if (this.hasNothingToRender()) return;
      this.normalProgram.gl.viewport(0, 0, params.width * params.pixelRatio, params.height * params.pixelRatio);
      this.bindProgram(this.normalProgram);
      this.renderProgram(params, this.normalProgram);
      this.unbindProgram(this.normalProgram);
    }
  } as unknown as B;
}

// LineEdgeProgram draws an edge as a 1-pixel line (gl.LINES; no arrow head, whose clamped
// geometry costs several times more per pixel in software): the program of busy maps.
export const LineEdgeProgram = atRestPicking(EdgeLineProgram);
export const NodeProgram = atRestPicking(NodeCircleProgram);

// Resolution levels while moving, as multiples of the device pixel ratio. The level adapts to
// the frame time (dynamic resolution): below 30 frames/s it steps down, above 50 it steps up,
// and the next motion starts where the last one ended. A machine with a GPU keeps 1.
const levels = [1, 0.5, 0.35, 0.25];
const slowMs = 1000 / 30;
const fastMs = 1000 / 50;
const framesPerDecision = 6;

// MotionQuality switches a Sigma renderer to motion quality while its camera moves.
export class MotionQuality {
  private timer: number | undefined;
  private level = 1;
  private frames: number[] = [];
  private readonly hoverLayers: HTMLElement[];

  constructor(
    private sigma: Sigma,
    private settleMs = 150,
  ) {
    const c = sigma.getCanvases();
    // Edge labels are never drawn: their (cleared, empty) layer costs a composite per frame.
    if (c.edgeLabels) c.edgeLabels.style.display = "none";
    this.hoverLayers = [c.hovers, c.hoverNodes].filter(Boolean);
    sigma.on("beforeRender", () => this.onRender());
  }

  get moving() {
    return moving;
  }

  // scale is the resolution the next motion starts at (the benchmark reports it).
  get scale() {
    return levels[this.level];
  }

  private cameraMoving(): boolean {
    const m = this.sigma.getMouseCaptor();
    return this.sigma.getCamera().isAnimated() || m.isMoving || m.draggedEvents > 0 || m.currentWheelDirection !== 0;
  }

  private onRender() {
    if (!this.cameraMoving()) return;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.settle(), this.settleMs);
    if (moving) return this.adapt();
    moving = true;
    this.frames = [];
    const labels = this.sigma.getSetting("hideLabelsOnMove") ? [this.sigma.getCanvases().labels] : [];
    for (const l of [...this.hoverLayers, ...labels]) l.style.visibility = "hidden";
    this.apply();
  }

  private apply() {
    motionScale = levels[this.level];
    this.sigma.resize(true);
  }

  // adapt steps the resolution by the mean interval of the last frames.
  private adapt() {
    this.frames.push(performance.now());
    if (this.frames.length <= framesPerDecision) return;
    const mean = (this.frames[framesPerDecision] - this.frames[0]) / framesPerDecision;
    this.frames = [];
    const next = mean > slowMs ? Math.min(this.level + 1, levels.length - 1) : mean < fastMs ? Math.max(this.level - 1, 0) : this.level;
    if (next === this.level) return;
    this.level = next;
    this.apply();
  }

  private settle() {
    if (this.cameraMoving()) {
      this.timer = window.setTimeout(() => this.settle(), this.settleMs);
      return;
    }
    moving = false;
    motionScale = 1;
    for (const l of Object.values(this.sigma.getCanvases())) if (l.style.display !== "none") l.style.visibility = "";
    this.sigma.resize(true);
    this.sigma.scheduleRender();
  }
}
