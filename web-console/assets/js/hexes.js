// Supply and demand per H3 cell, counted on the server
// (`GET /v1/admin/console/hexes`): green where free couriers wait, red
// where orders wait for one. The resolution follows the zoom so a cell is
// always a few dozen pixels across.

import { worldX, worldY } from "./view.js";

/** The H3 resolution for a zoom level (edges of 30–90 px at 57° N). */
export function resolutionFor(zoom) {
  if (zoom < 10.5) return 5;
  if (zoom < 11.5) return 6;
  if (zoom < 12.5) return 7;
  if (zoom < 13.5) return 8;
  return 9;
}

export class HexLayer {
  constructor() {
    this.resolution = 0;
    this.cells = [];
  }

  /** Takes a `HexMap`, projecting each outline once. */
  load(map) {
    this.resolution = map.resolution;
    this.cells = map.cells.map((c) => ({
      cell: c.cell,
      supply: c.supply,
      demand: c.demand,
      wx: c.outline.map((p) => worldX(p[0])),
      wy: c.outline.map((p) => worldY(p[1])),
    }));
  }

  draw(ctx, view) {
    const s = view.scale;
    const ox = view.width / 2 - view.cx * s;
    const oy = view.height / 2 - view.cy * s;
    const max = this.cells.reduce((m, c) => Math.max(m, c.supply, c.demand), 1);
    ctx.lineWidth = 1;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const c of this.cells) {
      ctx.beginPath();
      let cx = 0;
      let cy = 0;
      for (let k = 0; k < c.wx.length; k++) {
        const x = c.wx[k] * s + ox;
        const y = c.wy[k] * s + oy;
        cx += x;
        cy += y;
        if (k === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      }
      ctx.closePath();
      cx /= c.wx.length;
      cy /= c.wx.length;
      if (cx < -100 || cy < -100 || cx > view.width + 100 || cy > view.height + 100) continue;
      const balance = c.supply - c.demand;
      const strength = 0.12 + 0.45 * (Math.max(c.supply, c.demand) / max);
      ctx.fillStyle = balance >= 0 ? `rgba(27,158,75,${strength})` : `rgba(217,48,37,${strength})`;
      ctx.fill();
      ctx.strokeStyle = "rgba(60,70,80,0.35)";
      ctx.stroke();
      ctx.fillStyle = "#1d232b";
      const label = c.demand > 0 ? `${c.supply}/${c.demand}` : `${c.supply}`;
      ctx.fillText(label, cx, cy);
    }
  }
}
