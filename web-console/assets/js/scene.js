// Drawing. Two canvases: `base` holds what changes with the view or a
// board poll (roads from their cache, hexagons, restaurants, orders from
// restaurant to door), redrawn only then; `fleet` holds what moves
// (couriers, their lines to their next stop, the selected courier's
// breadcrumbs), redrawn on the next animation frame after a courier frame.

import { worldX, worldY } from "./view.js";

/** Above this many couriers in view and below this zoom, cells replace dots. */
export const DOTS_LIMIT = 2000;
export const DOTS_ZOOM = 13;

export class Scene {
  constructor(baseCanvas, fleetCanvas, layers) {
    this.base = baseCanvas;
    this.fleetCanvas = fleetCanvas;
    this.layers = layers;
    this.ratio = window.devicePixelRatio || 1;
    this.baseDirty = true;
    this.fleetDirty = true;
    this.track = null;
    this.show = { roads: true, hexes: false, orders: true };
    this.hexMode = false;
    /** Couriers in view above which cells replace dots (the benchmark lifts it). */
    this.dotsLimit = DOTS_LIMIT;
  }

  resize(view) {
    const r = this.base.parentElement.getBoundingClientRect();
    for (const c of [this.base, this.fleetCanvas]) {
      c.width = Math.round(r.width * this.ratio);
      c.height = Math.round(r.height * this.ratio);
    }
    view.resize(r.width, r.height);
    this.baseDirty = this.fleetDirty = true;
  }

  /** Cells instead of dots: many couriers in view, zoomed out. */
  updateMode(view) {
    const hexMode = view.zoom < DOTS_ZOOM && this.layers.fleet.visible(view) > this.dotsLimit;
    if (hexMode !== this.hexMode) {
      this.hexMode = hexMode;
      this.baseDirty = this.fleetDirty = true;
    }
    return hexMode;
  }

  drawBase(view, state, requestRedraw) {
    const ctx = this.base.getContext("2d");
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.clearRect(0, 0, view.width, view.height);
    if (this.show.roads) this.layers.roads.draw(ctx, view, this.ratio, requestRedraw);
    if (this.show.hexes || this.hexMode) this.layers.hexes.draw(ctx, view);
    const s = view.scale;
    const ox = view.width / 2 - view.cx * s;
    const oy = view.height / 2 - view.cy * s;
    const px = (lng) => worldX(lng) * s + ox;
    const py = (lat) => worldY(lat) * s + oy;
    if (this.show.orders) {
      ctx.setLineDash([4, 4]);
      ctx.lineWidth = 1.2;
      for (const o of state.board.orders) {
        const selected = state.selected?.kind === "order" && state.selected.id === o.order_id;
        ctx.strokeStyle = selected ? "#d93025" : "rgba(120,60,160,0.55)";
        ctx.beginPath();
        ctx.moveTo(px(o.pickup.lng), py(o.pickup.lat));
        ctx.lineTo(px(o.dropoff.lng), py(o.dropoff.lat));
        ctx.stroke();
      }
      ctx.setLineDash([]);
      for (const o of state.board.orders) {
        ctx.fillStyle = "#7b3fa0";
        ctx.beginPath();
        ctx.arc(px(o.dropoff.lng), py(o.dropoff.lat), 3.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.fillStyle = "#e8710a";
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1;
    for (const r of state.board.restaurants) {
      const x = px(r.location.lng);
      const y = py(r.location.lat);
      if (x < -8 || y < -8 || x > view.width + 8 || y > view.height + 8) continue;
      ctx.fillRect(x - 4, y - 4, 8, 8);
      ctx.strokeRect(x - 4, y - 4, 8, 8);
    }
    this.baseDirty = false;
  }

  drawFleet(view, state) {
    const ctx = this.fleetCanvas.getContext("2d");
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.clearRect(0, 0, view.width, view.height);
    const fleet = this.layers.fleet;
    const s = view.scale;
    const ox = view.width / 2 - view.cx * s;
    const oy = view.height / 2 - view.cy * s;
    if (this.track && this.track.length > 1) {
      ctx.strokeStyle = "rgba(217,48,37,0.8)";
      ctx.lineWidth = 2;
      ctx.beginPath();
      this.track.forEach(([lng, lat], k) => {
        const x = worldX(lng) * s + ox;
        const y = worldY(lat) * s + oy;
        if (k === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();
    }
    if (this.show.orders) {
      // Assignment lines: courier to its next stop.
      ctx.strokeStyle = "rgba(31,95,209,0.7)";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (const o of state.board.orders) {
        if (!o.driver_id) continue;
        const p = fleet.position(o.driver_id);
        if (!p) continue;
        const stop = o.status === "picked_up" ? o.dropoff : o.pickup;
        ctx.moveTo(worldX(p[0]) * s + ox, worldY(p[1]) * s + oy);
        ctx.lineTo(worldX(stop.lng) * s + ox, worldY(stop.lat) * s + oy);
      }
      ctx.stroke();
    }
    if (!this.hexMode) {
      const selected = state.selected?.kind === "courier" ? state.selected.id : null;
      fleet.draw(ctx, view, selected);
    }
    this.fleetDirty = false;
  }
}
