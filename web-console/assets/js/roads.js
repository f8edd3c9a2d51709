// The road layer: the server's road graph (`GET /v1/admin/console/roads`),
// projected once to world coordinates and drawn into an offscreen canvas
// only when the view's zoom or extent changes; every other frame copies
// that bitmap, shifted by the pan since it was drawn.

import { worldX, worldY } from "./view.js";

/** Stroke per rank (0 major … 3 service and links). */
const STYLES = [
  { color: "#f2b04a", width: 2.6, minZoom: 0 },
  { color: "#c9cdd3", width: 1.8, minZoom: 10 },
  { color: "#d6d9de", width: 1.1, minZoom: 12 },
  { color: "#e0e2e6", width: 0.8, minZoom: 14 },
];
/** A redraw after zooming waits for this long without another change. */
const SETTLE_MS = 120;

export class RoadLayer {
  constructor() {
    this.canvas = document.createElement("canvas");
    this.segments = new Uint32Array(0);
    this.wx = new Float64Array(0);
    this.wy = new Float64Array(0);
    this.bbox = null;
    /** The view the cache was drawn at: {cx, cy, zoom, width, height}. */
    this.drawnAt = null;
    this.settleTimer = 0;
    this.redraws = 0;
  }

  /** Takes a `RoadMap`. */
  load(map) {
    const n = map.nodes.length / 2;
    this.wx = new Float64Array(n);
    this.wy = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      this.wx[i] = worldX(map.nodes[2 * i] / map.scale);
      this.wy[i] = worldY(map.nodes[2 * i + 1] / map.scale);
    }
    this.segments = Uint32Array.from(map.segments);
    this.bbox = map.bbox;
    this.drawnAt = null;
  }

  get segmentCount() {
    return this.segments.length / 3;
  }

  /** Redraws the cache for `view` (all segments, one path per rank). */
  render(view, pixelRatio) {
    const c = this.canvas;
    c.width = Math.round(view.width * pixelRatio);
    c.height = Math.round(view.height * pixelRatio);
    const ctx = c.getContext("2d");
    ctx.setTransform(pixelRatio, 0, 0, pixelRatio, 0, 0);
    ctx.clearRect(0, 0, view.width, view.height);
    ctx.lineCap = "round";
    const s = view.scale;
    const ox = view.width / 2 - view.cx * s;
    const oy = view.height / 2 - view.cy * s;
    const { wx, wy, segments } = this;
    for (let rank = STYLES.length - 1; rank >= 0; rank--) {
      const style = STYLES[rank];
      if (view.zoom < style.minZoom) continue;
      ctx.beginPath();
      for (let i = 0; i < segments.length; i += 3) {
        if (segments[i + 2] !== rank) continue;
        const a = segments[i];
        const b = segments[i + 1];
        const x0 = wx[a] * s + ox;
        const y0 = wy[a] * s + oy;
        const x1 = wx[b] * s + ox;
        const y1 = wy[b] * s + oy;
        if ((x0 < 0 && x1 < 0) || (y0 < 0 && y1 < 0)) continue;
        if ((x0 > view.width && x1 > view.width) || (y0 > view.height && y1 > view.height)) continue;
        ctx.moveTo(x0, y0);
        ctx.lineTo(x1, y1);
      }
      ctx.strokeStyle = style.color;
      ctx.lineWidth = Math.max(0.5, style.width * Math.min(1.6, 2 ** ((view.zoom - 13) / 3)));
      ctx.stroke();
    }
    this.drawnAt = { cx: view.cx, cy: view.cy, zoom: view.zoom, width: view.width, height: view.height };
    this.redraws++;
  }

  /**
   * Draws the cached bitmap for `view` onto `ctx`, shifted and scaled to
   * the view; when the cache was drawn for another view it is redrawn
   * once the view has settled, and `requestRedraw` is called.
   */
  draw(ctx, view, pixelRatio, requestRedraw) {
    if (this.segmentCount === 0) return;
    const d = this.drawnAt;
    const same = d && d.zoom === view.zoom && d.width === view.width && d.height === view.height;
    if (!d) {
      this.render(view, pixelRatio);
    } else if (!same || d.cx !== view.cx || d.cy !== view.cy) {
      clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => {
        this.render(view, pixelRatio);
        requestRedraw();
      }, SETTLE_MS);
    }
    const drawn = this.drawnAt;
    const k = 2 ** (view.zoom - drawn.zoom);
    // Where the cache's top-left corner lands now.
    const x = view.width / 2 + ((drawn.cx - view.cx) * view.scale) - (drawn.width / 2) * k;
    const y = view.height / 2 + ((drawn.cy - view.cy) * view.scale) - (drawn.height / 2) * k;
    ctx.drawImage(this.canvas, x, y, drawn.width * k, drawn.height * k);
  }
}
