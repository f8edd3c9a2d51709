// Couriers as the tracking socket's `area` frames tell them: one slot per
// courier in typed arrays (world position, status, fix time), updated in
// place by each frame, so 10,000 couriers cost no allocation per update
// and a draw is one pass per status colour.

import { worldX, worldY } from "./view.js";

export const STATUSES = ["available", "busy", "offline"];
const COLOURS = ["#1b9e4b", "#1f5fd1", "#9aa0a6"];
const INITIAL = 1024;

export class Fleet {
  constructor() {
    this.index = new Map();
    this.ids = [];
    this.size = 0;
    this.allocate(INITIAL);
  }

  allocate(capacity) {
    const grow = (old, Type) => {
      const next = new Type(capacity);
      if (old) next.set(old.subarray(0, this.size));
      return next;
    };
    this.wx = grow(this.wx, Float64Array);
    this.wy = grow(this.wy, Float64Array);
    this.lng = grow(this.lng, Float64Array);
    this.lat = grow(this.lat, Float64Array);
    this.ts = grow(this.ts, Float64Array);
    this.status = grow(this.status, Uint8Array);
    this.capacity = capacity;
  }

  /** Forgets everyone (a new area subscription sends a fresh snapshot). */
  clear() {
    this.index.clear();
    this.ids = [];
    this.size = 0;
  }

  /** Applies one `drivers` frame's entries. */
  apply(drivers) {
    for (const d of drivers) {
      let i = this.index.get(d.driver_id);
      if (i === undefined) {
        if (this.size === this.capacity) this.allocate(this.capacity * 2);
        i = this.size++;
        this.index.set(d.driver_id, i);
        this.ids[i] = d.driver_id;
      }
      this.lng[i] = d.lng;
      this.lat[i] = d.lat;
      this.wx[i] = worldX(d.lng);
      this.wy[i] = worldY(d.lat);
      this.ts[i] = d.ts;
      this.status[i] = Math.max(0, STATUSES.indexOf(d.status));
    }
  }

  /** [lng, lat] of a courier, or null. */
  position(id) {
    const i = this.index.get(id);
    return i === undefined ? null : [this.lng[i], this.lat[i]];
  }

  statusOf(id) {
    const i = this.index.get(id);
    return i === undefined ? null : STATUSES[this.status[i]];
  }

  /** Couriers per status. */
  counts() {
    const counts = [0, 0, 0];
    for (let i = 0; i < this.size; i++) counts[this.status[i]]++;
    return counts;
  }

  /** Couriers inside the view. */
  visible(view) {
    let n = 0;
    const s = view.scale;
    const ox = view.width / 2 - view.cx * s;
    const oy = view.height / 2 - view.cy * s;
    for (let i = 0; i < this.size; i++) {
      const x = this.wx[i] * s + ox;
      const y = this.wy[i] * s + oy;
      if (x >= 0 && y >= 0 && x <= view.width && y <= view.height) n++;
    }
    return n;
  }

  /** Draws every courier in the view: one fill colour at a time. */
  draw(ctx, view, selected) {
    const s = view.scale;
    const ox = view.width / 2 - view.cx * s;
    const oy = view.height / 2 - view.cy * s;
    const r = view.zoom >= 14 ? 3.5 : view.zoom >= 12 ? 2.5 : 1.5;
    const side = r * 2;
    for (let st = STATUSES.length - 1; st >= 0; st--) {
      ctx.fillStyle = COLOURS[st];
      for (let i = 0; i < this.size; i++) {
        if (this.status[i] !== st) continue;
        const x = this.wx[i] * s + ox;
        const y = this.wy[i] * s + oy;
        if (x < -side || y < -side || x > view.width + side || y > view.height + side) continue;
        ctx.fillRect(x - r, y - r, side, side);
      }
    }
    const i = selected ? this.index.get(selected) : undefined;
    if (i !== undefined) {
      ctx.strokeStyle = "#d93025";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(this.wx[i] * s + ox, this.wy[i] * s + oy, r + 5, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }

  /** The courier nearest to screen point (x, y) within `radius` pixels. */
  nearest(view, x, y, radius) {
    const s = view.scale;
    const ox = view.width / 2 - view.cx * s;
    const oy = view.height / 2 - view.cy * s;
    let best = null;
    let bestD = radius * radius;
    for (let i = 0; i < this.size; i++) {
      const dx = this.wx[i] * s + ox - x;
      const dy = this.wy[i] * s + oy - y;
      const d = dx * dx + dy * dy;
      if (d <= bestD) {
        bestD = d;
        best = this.ids[i];
      }
    }
    return best;
  }

  /** Screen positions of every courier in the view (for tests and benchmarks). */
  snapshot() {
    const out = {};
    for (let i = 0; i < this.size; i++) out[this.ids[i]] = [this.lng[i], this.lat[i], STATUSES[this.status[i]]];
    return out;
  }
}
