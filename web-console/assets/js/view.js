// The map's view: Web Mercator world coordinates (256 units across the
// world at zoom 0), a centre and a zoom. Positions are projected to world
// coordinates once when they arrive; drawing only shifts and scales them.

const TILE = 256;
export const MIN_ZOOM = 3;
export const MAX_ZOOM = 19;

/** World x of a longitude (zoom 0). */
export function worldX(lng) {
  return ((lng + 180) / 360) * TILE;
}

/** World y of a latitude (zoom 0). */
export function worldY(lat) {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * TILE;
}

function lngOf(x) {
  return (x / TILE) * 360 - 180;
}

function latOf(y) {
  const n = Math.PI - (2 * Math.PI * y) / TILE;
  return (180 / Math.PI) * Math.atan(Math.sinh(n));
}

export class View {
  constructor() {
    this.cx = worldX(11.97);
    this.cy = worldY(57.7);
    this.zoom = 12;
    this.width = 1;
    this.height = 1;
    /** Bumped on every change, so layers know when to redraw. */
    this.version = 0;
  }

  /** Pixels per world unit. */
  get scale() {
    return 2 ** this.zoom;
  }

  resize(width, height) {
    this.width = width;
    this.height = height;
    this.version++;
  }

  /** Screen x, y of world x, y. */
  sx(wx) {
    return (wx - this.cx) * this.scale + this.width / 2;
  }

  sy(wy) {
    return (wy - this.cy) * this.scale + this.height / 2;
  }

  /** [lng, lat] under a screen point. */
  lngLatAt(x, y) {
    return [
      lngOf(this.cx + (x - this.width / 2) / this.scale),
      latOf(this.cy + (y - this.height / 2) / this.scale),
    ];
  }

  pan(dx, dy) {
    this.cx -= dx / this.scale;
    this.cy -= dy / this.scale;
    this.version++;
  }

  /** Zooms by `delta` levels keeping the point under (x, y) in place. */
  zoomAt(delta, x, y) {
    const zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.zoom + delta));
    const wx = this.cx + (x - this.width / 2) / this.scale;
    const wy = this.cy + (y - this.height / 2) / this.scale;
    this.zoom = zoom;
    this.cx = wx - (x - this.width / 2) / this.scale;
    this.cy = wy - (y - this.height / 2) / this.scale;
    this.version++;
  }

  /** Shows `[min_lng, min_lat, max_lng, max_lat]` whole. */
  fit(bbox) {
    const [x0, x1] = [worldX(bbox[0]), worldX(bbox[2])];
    const [y0, y1] = [worldY(bbox[3]), worldY(bbox[1])];
    this.cx = (x0 + x1) / 2;
    this.cy = (y0 + y1) / 2;
    const fits = Math.min(this.width / Math.max(x1 - x0, 1e-9), this.height / Math.max(y1 - y0, 1e-9));
    this.zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, Math.log2(fits)));
    this.version++;
  }

  /** The visible area grown by `margin` of its size on each side, as a bbox. */
  bbox(margin = 0) {
    const mx = this.width * margin;
    const my = this.height * margin;
    const [w, n] = this.lngLatAt(-mx, -my);
    const [e, s] = this.lngLatAt(this.width + mx, this.height + my);
    return [
      Math.max(-180, w),
      Math.max(-85, s),
      Math.min(180, e),
      Math.min(85, n),
    ];
  }
}
